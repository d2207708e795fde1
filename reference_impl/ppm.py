"""Byte-level PPM-D, exact and score-first, in two implementations that must agree to 1e-9.

Why two: the sequential dict version is short enough to read against the definition below and serves as
the oracle; the vectorised numpy version is what a reviewer runs over a whole validation set.

Definition (bit-reproducible). For the byte at position i, orders k = min(K, i) .. 0 are tried with
context = the previous k bytes; unseen contexts are skipped. In a context with counts c(s), total n and
u distinct symbols, a seen symbol gets (2c(s)-1)/(2n) and the escape gets u/(2n). With exclusion,
symbols offered at a higher order are removed from c, n and u at lower orders, and a context whose
symbols are all excluded is skipped like an unseen one. After order 0, order -1 is uniform over the 256
(minus excluded) bytes. After scoring, the byte is counted in the contexts of every order 0..min(K, i).

Only the exclusion variant is normalised. Without exclusion, lower orders still give mass to symbols
that a higher order already offered; that mass is wasted, and `byte_ppm_distributions` reports the
resulting sub-unit sums instead of hiding them.

How the fast version avoids a per-byte loop: context sets are nested (every earlier occurrence of an
order-(k+1) context is also an occurrence of its order-k suffix), so the symbols excluded at order k are
exactly those seen in the order-(k+1) context, and a position's orders can be applied from the top down
to the positions no higher order has resolved. Counts are ranks in a sort of (gram, start): the order-k
context of position i is the k-gram starting at i-k and the (context, symbol) pair is the (k+1)-gram
there, so one sort per gram length serves two orders, and once each length's counts are written back by
start, every per-order read is a shifted slice. The excluded count at order k is a sum, over the few
symbols of the order-(k+1) context, of order-k pair counts found by one binary search each. Inputs up to
`max_chunk` bytes take this path (about 130 bytes of memory per input byte); longer inputs process
orders >= 1 in partitions keyed by the previous byte (every context of order >= 1 ends with it), with
two sorts per order, which is slower.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

MAX_FAST_ORDER = 12


def _check(data: bytes, order: int) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"byte PPM needs bytes, got {type(data).__name__}")
    if not isinstance(order, int) or order < 0:
        raise ValueError(f"PPM order must be a non-negative int, got {order!r}")
    return bytes(data)


# --------------------------------------------------------------------------------------------------
# Sequential oracle
# --------------------------------------------------------------------------------------------------


def _ppm_step(
    tables: list[dict[bytes, dict[int, int]]],
    history: bytes,
    i: int,
    order: int,
    exclusion: bool,
    on_symbol: Callable[[int, float], None] | None,
) -> tuple[float, set[int]]:
    """Walk the orders for byte i of `history`; call on_symbol(s, logp) for every symbol offered.

    Returns (log of the escape product reaching order -1, the excluded set at order -1).
    """
    log_escape = 0.0
    excluded: set[int] = set()
    for k in range(min(order, i), -1, -1):
        counts = tables[k].get(history[i - k:i])
        if not counts:
            continue
        active = {s: c for s, c in counts.items() if s not in excluded} if exclusion else counts
        if not active:
            continue
        n = sum(active.values())
        if on_symbol is not None:
            for s, c in active.items():
                on_symbol(s, log_escape + math.log((2 * c - 1) / (2 * n)))
        log_escape += math.log(len(active) / (2 * n))
        if exclusion:
            excluded.update(active)
    return log_escape, excluded


def _ppm_update(tables: list[dict[bytes, dict[int, int]]], history: bytes, i: int, order: int, x: int) -> None:
    for k in range(min(order, i) + 1):
        counts = tables[k].setdefault(history[i - k:i], {})
        counts[x] = counts.get(x, 0) + 1


def byte_ppm_logprobs_reference(data: bytes, order: int = 5, exclusion: bool = True) -> np.ndarray:
    """Plain per-byte PPM-D (the oracle): natural-log probability of each byte, float64."""
    data = _check(data, order)
    tables: list[dict[bytes, dict[int, int]]] = [{} for _ in range(order + 1)]
    out = np.empty(len(data), dtype=np.float64)
    for i, x in enumerate(data):
        logp = 0.0
        excluded: set[int] = set()
        found = False
        for k in range(min(order, i), -1, -1):
            counts = tables[k].get(data[i - k:i])
            if not counts:
                continue
            active = {s: c for s, c in counts.items() if s not in excluded} if exclusion else counts
            if not active:
                continue
            n = sum(active.values())
            if x in active:
                logp += math.log((2 * active[x] - 1) / (2 * n))
                found = True
                break
            logp += math.log(len(active) / (2 * n))
            if exclusion:
                excluded.update(active)
        if not found:
            logp -= math.log(256 - len(excluded))
        out[i] = logp
        _ppm_update(tables, data, i, order, x)
    return out


def byte_ppm_distributions(data: bytes, order: int = 5, exclusion: bool = True) -> np.ndarray:
    """Full next-byte distribution (probabilities, not logs) before each byte: shape [len(data), 256].

    A symbol's probability is the mass at the first order that offers it; mass that lower orders give
    to it again (no-exclusion variant) is wasted, so rows of that variant sum to less than 1.
    """
    data = _check(data, order)
    tables: list[dict[bytes, dict[int, int]]] = [{} for _ in range(order + 1)]
    out = np.zeros((len(data), 256), dtype=np.float64)
    for i, x in enumerate(data):
        row = out[i]
        offered: set[int] = set()

        def on_symbol(s: int, lp: float, row: np.ndarray = row, offered: set[int] = offered) -> None:
            if s not in offered:
                offered.add(s)
                row[s] = math.exp(lp)

        log_escape, excluded = _ppm_step(tables, data, i, order, exclusion, on_symbol)
        rest = [s for s in range(256) if s not in offered]
        # Order -1: uniform over the bytes not excluded; without exclusion that is all 256, of which
        # the already-offered ones are wasted.
        share = math.exp(log_escape) / (256 - len(excluded))
        row[rest] = share
        _ppm_update(tables, data, i, order, x)
    return out


# --------------------------------------------------------------------------------------------------
# Vectorised implementation
# --------------------------------------------------------------------------------------------------


def _group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the first element of each run of equal keys."""
    new = np.empty(len(sorted_keys), dtype=bool)
    new[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
    return new


class _Level:
    """Counts of one order over a set of positions (ascending), all >= the order.

    Sorting is done on values `key * big + position` rather than with argsort: numpy's value sort is
    several times faster, and the position embedded in each value gives the permutation back through
    `loc` (global position -> local index).
    """

    __slots__ = ("pos", "ctx", "n", "c", "u", "pair_sorted", "first_start", "first_sym")

    def __init__(self, data: np.ndarray, pos: np.ndarray, k: int, prev_ctx: np.ndarray | None, big: int,
                 loc: np.ndarray):
        self.pos = pos
        m = len(pos)
        loc[pos] = np.arange(m)
        if k == 0 or prev_ctx is None:
            ctx = np.zeros(m, dtype=np.int64)
            n = np.arange(m, dtype=np.int64)
            ctx_order = np.arange(m, dtype=np.int64)
            n_ctx = 1
        else:
            # Context id of order k = dense id of (order k-1 id, byte k back); rank by position inside it.
            sk = np.sort((prev_ctx * 256 + data[pos - k]) * big + pos)
            ctx_order = loc[sk % big]
            new = _group_starts(sk // big)
            gid = np.cumsum(new) - 1
            n_ctx = int(gid[-1]) + 1
            ctx = np.empty(m, dtype=np.int64)
            ctx[ctx_order] = gid
            n = np.empty(m, dtype=np.int64)
            n[ctx_order] = np.arange(m) - np.flatnonzero(new)[gid]
        sp = np.sort((ctx * 256 + data[pos]) * big + pos)
        pair_order = loc[sp % big]
        pnew = _group_starts(sp // big)
        c = np.empty(m, dtype=np.int64)
        c[pair_order] = np.arange(m) - np.flatnonzero(pnew)[np.cumsum(pnew) - 1]
        first = c == 0
        # u = distinct symbols seen earlier in the same context: exclusive running count of first
        # occurrences, walked in (context, position) order.
        f_in_ctx = first[ctx_order]
        run = np.cumsum(f_in_ctx) - f_in_ctx
        cnew = _group_starts(ctx[ctx_order])
        base = run[np.flatnonzero(cnew)][np.cumsum(cnew) - 1]
        u = np.empty(m, dtype=np.int64)
        u[ctx_order] = run - base
        self.ctx, self.n, self.c, self.u = ctx, n, c, u
        self.pair_sorted = sp
        # First occurrences in (context, position) order: the symbol set of a context before position
        # p is the first u entries of its run here.
        sel = ctx_order[f_in_ctx]
        per_ctx = np.bincount(ctx[sel], minlength=n_ctx)
        self.first_start = np.cumsum(per_ctx) - per_ctx
        self.first_sym = data[pos[sel]]


def _excluded_counts(
    data: np.ndarray, low: _Level, up: _Level, rows_low: np.ndarray, rows_up: np.ndarray, big: int,
    max_elems: int, loc: np.ndarray,
) -> np.ndarray:
    """Sum over the symbols of each row's order-(k+1) context of their order-k counts (before the row)."""
    out = np.zeros(len(rows_low), dtype=np.int64)
    cnt = up.u[rows_up]
    start = up.first_start[up.ctx[rows_up]]
    bounds = np.cumsum(cnt)
    loc[low.pos[rows_low]] = np.arange(len(rows_low))
    lo = 0
    while lo < len(rows_low):
        # Chunk so that the expanded symbol list stays under max_elems.
        base = bounds[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(bounds, base + max_elems, side="right")), lo + 1)
        c = cnt[lo:hi]
        total = int(c.sum())
        if total:
            rep = np.repeat(np.arange(lo, hi), c)
            offs = np.arange(total) - np.repeat(np.cumsum(c) - c, c)
            sym = up.first_sym[start[rep] + offs]
            r = rows_low[rep]
            # Sorted queries make the binary searches cache-friendly; the position inside each query
            # value says which row it belongs to.
            q = np.sort((low.ctx[r] * 256 + sym) * big + low.pos[r])
            qpos = q % big
            got = np.searchsorted(low.pair_sorted, q) - np.searchsorted(low.pair_sorted, q - qpos)
            out += np.bincount(loc[qpos], weights=got, minlength=len(rows_low)).astype(np.int64)
        lo = hi
    return out


def _combine(
    data: np.ndarray, low: _Level, up: _Level | None, k: int, exclusion: bool,
    found: np.ndarray, logp: np.ndarray, big: int, max_elems: int, loc: np.ndarray,
) -> None:
    """Apply order k to the positions of `low` that no higher order has resolved."""
    pos = low.pos
    todo = ~found[pos]
    u1 = np.zeros(len(pos), dtype=np.int64)
    m = np.zeros(len(pos), dtype=np.int64)
    if exclusion and up is not None and len(up.pos):
        off = len(pos) - len(up.pos)  # up covers the positions >= k+1: a suffix of low's
        u1[off:] = up.u
        need = np.flatnonzero(todo & (u1 > 0) & (u1 < low.u))
        if len(need):
            m[need] = _excluded_counts(data, low, up, need, need - off, big, max_elems, loc)
    n_eff = low.n - m
    u_eff = low.u - u1
    hit = todo & (low.c > 0)
    esc = todo & ~hit & (n_eff > 0) & (u_eff > 0)  # u_eff == 0: every symbol excluded, skip
    h = np.flatnonzero(hit)
    logp[pos[h]] += np.log((2 * low.c[h] - 1) / (2.0 * n_eff[h]))
    found[pos[h]] = True
    e = np.flatnonzero(esc)
    logp[pos[e]] += np.log(u_eff[e] / (2.0 * n_eff[e]))


def _partitions(prev_bytes: np.ndarray, max_chunk: int) -> list[np.ndarray]:
    """Group byte values (of the previous byte) into sets holding at most ~max_chunk positions each."""
    hist = np.bincount(prev_bytes, minlength=256)
    groups: list[list[int]] = []
    cur: list[int] = []
    size = 0
    for b in range(256):
        if hist[b] == 0:
            continue
        if cur and size + hist[b] > max_chunk:
            groups.append(cur)
            cur, size = [], 0
        cur.append(b)
        size += int(hist[b])
    if cur:
        groups.append(cur)
    return [np.array(g, dtype=np.int64) for g in groups]


_SENTINEL = 256  # byte value past the end in chained keys: grams that run off the end match nothing real
_RADIX = 257


class _Grams:
    """Per gram length g: the counts of every start, gathered into one packed int64 per start.

    Lengths are built one at a time by `levels()` and the caller applies each order as soon as its
    lengths exist, then releases them, so about three lengths are held at once.

    Why packed and position-indexed: the combine reads order k at position i from the k-gram and the
    (k+1)-gram starting at i-k and the (k+1)- and (k+2)-grams starting at i-k-1, so with one array per
    length those reads are plain shifted slices. `packed[g][j]` = rank | U << bits | gs << (bits + 9):
    rank = earlier occurrences of the g-gram at j; gs = index of its group's first entry in the sorted
    order (a group id that keeps key order); U = distinct bytes that followed the g-gram before j, stored
    only where the (g+1)-gram at j is new (the only starts whose U the combine reads: escapes, and the
    exclusion sets of the order below).

    With exclusion, for lengths 1..top also: `sorted[g]` the sort values (key << bits | start), and for
    each start where a new (g+1)-gram begins ("birth"), grouped by g-gram and in position order,
    `birth_gs[g]` = gs of the g-gram one byte later (the lower-order context followed by the new byte),
    with `entry[g][j]` the index of start j in that list.
    """

    def __init__(self, x: np.ndarray, order: int, exclusion: bool):
        self.x, self.exclusion = x, exclusion
        n = self.n = len(x)
        bits = self.bits = max((n - 1).bit_length(), 1)
        self.mask = (1 << bits) - 1
        self.sh = bits + 9
        top = self.top = min(order, n - 1)
        self.packed: list = [None] * (top + 2)
        self.sorted: list = [None] * (top + 2)
        self.birth_gs: list = [None] * (top + 2)
        self.entry: list = [None] * (top + 2)
        # Released length-n int64 arrays, reused: a fresh array costs page faults on first touch, which
        # for a random scatter is a sizeable part of the work.
        self._spare: list = []

    def _take(self) -> np.ndarray:
        return self._spare.pop() if self._spare else np.empty(self.n, dtype=np.int64)

    def release(self, k: int) -> None:
        """Order k has been applied: packed k and the exclusion data of length k+1 have no reader left."""
        for arr in (self.packed[k], self.sorted[k + 1]):
            if arr is not None:
                self._spare.append(arr)
        self.packed[k] = None
        self.sorted[k + 1] = self.birth_gs[k + 1] = self.entry[k + 1] = None

    def levels(self):
        """Build lengths 1 .. top+1; after each, yield (g, ascending starts where a new g-gram begins)."""
        x, exclusion, n, bits, top = self.x, self.exclusion, self.n, self.bits, self.top
        ar = np.arange(n, dtype=np.int64)
        ar_sh = ar * ((1 << self.sh) - 1)
        self.packed[0] = ar.copy()  # the empty gram: one group, rank = position
        # Keys are the raw gram bytes while they fit beside the start bits; longer grams chain on the
        # previous length's group id (needs a gather, so it is the fallback).
        raw_max = (62 - bits) // 8
        start, gs, keys, keys_next = (np.empty(n, dtype=np.int64) for _ in range(4))
        diff, vals = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        gnew = np.empty(n, dtype=bool)
        xp = None
        for g in range(1, top + 2):
            if g <= raw_max:
                real = n - g + 1  # starts whose g-gram lies inside the data
                if g == 1:
                    keys_next[:] = x
                else:
                    np.left_shift(keys[:real], 8, out=keys_next[:real])
                    keys_next[:real] |= x[g - 1:]
                keys_next[real:] = (1 << (8 * g)) + np.arange(n - real)  # past the end: unique, never read
                keys, keys_next = keys_next, keys
                v = np.left_shift(keys, bits, out=self._take())
                v |= ar
            else:
                if xp is None:
                    xp = np.full(n + top + 3, _SENTINEL, dtype=np.uint16)
                    xp[:n] = x
                v = np.multiply(gs, _RADIX, out=self._take())
                v += xp[start + (g - 1)]
                v <<= bits
                v |= start
            v.sort()
            np.bitwise_and(v, self.mask, out=start)
            gnew[0] = True
            np.bitwise_xor(v[1:], v[:-1], out=diff[:n - 1])
            np.greater(diff[:n - 1], self.mask, out=gnew[1:])
            np.multiply(ar_sh, gnew, out=vals)
            np.maximum.accumulate(vals, out=vals)  # gs * (2**sh - 1): the max commutes with the factor
            vals += ar  # = gs << sh | (index in the order - gs)
            if g >= raw_max:  # the next length chains on gs
                np.right_shift(vals, self.sh, out=gs)
            packed = self._take()
            packed.put(start, vals, mode="clip")  # start is a permutation: no bounds check needed
            self.packed[g] = packed
            if exclusion and g <= top:
                self.sorted[g] = v
            else:
                self._spare.append(v)
            del v
            births = np.sort(start[gnew])
            self._finish(g - 1, births, exclusion)
            yield g, births

    def _finish(self, g: int, births: np.ndarray, exclusion: bool) -> None:
        """Write U of length g at the starts `births` (ascending) where a new (g+1)-gram begins."""
        bits, mask, sh, n = self.bits, self.mask, self.sh, self.n
        packed = self.packed[g]
        kb = packed[births] >> sh
        kb <<= bits
        kb |= births
        kb.sort()  # births grouped by g-gram, in position order inside each group
        gsb = kb >> bits
        births = kb & mask
        nb = len(kb)
        first = np.empty(nb, dtype=bool)
        first[0] = True
        np.not_equal(gsb[1:], gsb[:-1], out=first[1:])
        ordinal = np.arange(nb, dtype=np.int64)
        ordinal -= np.maximum.accumulate(np.where(first, ordinal, 0))
        ordinal <<= bits
        packed[births] += ordinal  # U at a birth = births before it in its group
        if exclusion and 1 <= g <= self.top:
            entry = np.zeros(n, dtype=np.int32)
            entry[births] = np.arange(nb, dtype=np.int32)
            self.entry[g] = entry
            self.birth_gs[g] = packed[np.minimum(births + 1, n - 1)] >> sh


def _gram_excluded(gr: _Grams, k: int, js: np.ndarray, first: np.ndarray, cnt: np.ndarray, max_elems: int,
                   rowmap: np.ndarray) -> np.ndarray:
    """m_k at context starts `js` (ascending): order-k counts before the row, summed over the order-(k+1) symbols.

    Row r's order-(k+1) symbols are birth entries first[r] .. first[r] + cnt[r] - 1 of length k+1; each
    names the (k+1)-gram group (context + symbol) whose starts before js[r] are counted by one binary
    search in `gr.sorted[k + 1]`.
    """
    bits, mask = gr.bits, gr.mask
    vs, bgs = gr.sorted[k + 1], gr.birth_gs[k + 1]
    rows = len(js)
    out = np.zeros(rows, dtype=np.int64)
    rowmap[js] = np.arange(rows)
    bounds = np.cumsum(cnt)
    lo = 0
    while lo < rows:
        # Chunk so that the expanded symbol list stays under max_elems.
        base = bounds[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(bounds, base + max_elems, side="right")), lo + 1)
        c = cnt[lo:hi]
        total = int(c.sum())
        if total:
            rep = np.repeat(np.arange(lo, hi), c)
            offs = np.arange(total) - np.repeat(np.cumsum(c) - c, c)
            q = bgs[first[rep] + offs]
            q <<= bits
            q |= js[rep]
            q.sort()  # sorted queries keep the binary searches cache-friendly
            gsq = q >> bits
            q &= mask
            got = np.searchsorted(vs, (vs[gsq] & ~mask) | q)
            got -= gsq
            out += np.bincount(rowmap[q], weights=got, minlength=rows).astype(np.int64)
        lo = hi
    return out


def _fast_grams(x: np.ndarray, order: int, exclusion: bool, max_elems: int) -> np.ndarray:
    """Orders applied bottom-up as soon as their lengths exist; probabilities multiplied, one log at the end
    (at most order + 2 factors per byte, so the product is as exact as a sum of logs, ~1e-15).

    Order k < top is applied at the positions i no higher order resolves: i = k (its top order) and the
    i whose (k+2)-gram starting at i-k-1 is new, i.e. whose order-(k+1) count of the byte is zero
    (counts only shrink with the order, so no higher order has it either).
    """
    n = len(x)
    gr = _Grams(x, order, exclusion)
    top = gr.top
    rowmap = np.empty(n, dtype=np.int32)
    prob = np.ones(n, dtype=np.float64)
    for g, births in gr.levels():
        k = g - 2
        if k == -1:
            # Order -1 at the bytes never seen before (uniform over the bytes not excluded).
            u0 = (gr.packed[0][births] >> gr.bits) & 511
            prob[births] /= 256.0 - (u0 if exclusion else 0)
        else:
            rows = births[births <= n - k - 2] + (k + 1)
            _apply_order(gr, k, np.concatenate(([k], rows)), exclusion, max_elems, rowmap, prob)
            gr.release(k)
    _apply_order(gr, top, None, exclusion, max_elems, rowmap, prob)
    return np.log(prob)


def _apply_order(gr: _Grams, k: int, i: np.ndarray | None, exclusion: bool, max_elems: int, rowmap: np.ndarray,
                 prob: np.ndarray) -> None:
    """Multiply order k's factor (hit or escape) into prob at positions i (ascending; None: all i >= k)."""
    n, bits, mask, P = gr.n, gr.bits, gr.mask, gr.packed
    j = slice(0, n - k) if i is None else i - k  # start of the order-k context
    pk = P[k][j]
    ck = P[k + 1][j] & mask
    nk = pk & mask
    u = (pk >> bits) & 511
    hit = ck > 0
    if exclusion and i is not None and k < gr.top:
        pu = P[k + 1][np.maximum(j - 1, 0)]
        u1 = (pu >> bits) & 511  # symbols of the order-(k+1) context, which escaped or was unseen
        if j[0] == 0:
            u1[0] = 0
        need = np.flatnonzero((u1 > 0) & (hit | (u1 < u)))
        if len(need):
            first = gr.entry[k + 1][j[need] - 1] - u1[need]
            nk[need] -= _gram_excluded(gr, k, j[need], first, u1[need], max_elems, rowmap)
        u -= u1
    use = hit | ((u > 0) & (nk > 0))  # u == 0 after exclusion: every symbol excluded, skip
    fac = np.ones(len(nk), dtype=np.float64)
    np.divide(np.where(hit, 2 * ck - 1, u), 2 * nk, out=fac, where=use)
    if i is None:
        prob[k:] *= fac
    else:
        prob[i] *= fac


def byte_ppm_logprobs_fast(
    data: bytes, order: int = 5, exclusion: bool = True, max_chunk: int = 1 << 24,
    max_elems: int = 1 << 22, progress: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Vectorised PPM-D; equal to `byte_ppm_logprobs_reference` to float rounding (~1e-12).

    Up to `max_chunk` bytes one pass over gram lengths (about 130 bytes of memory per input byte, so
    ~2.2 GB at the default 16.7 MB); longer inputs take the partitioned path (slower, see the module doc).
    """
    raw = _check(data, order)
    if order > MAX_FAST_ORDER:
        raise ValueError(f"vectorised PPM supports order <= {MAX_FAST_ORDER}, got {order}")
    n = len(raw)
    logp = np.zeros(n, dtype=np.float64)
    if n == 0:
        return logp
    if n <= max_chunk and 2 * n.bit_length() + 9 <= 63:
        return _fast_grams(np.frombuffer(raw, dtype=np.uint8), order, exclusion, max_elems)
    arr = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
    big = n + 1  # composite keys are (id * 256 + byte) * big + position: < 2**63 for n < ~1.9e8
    if 256 * big * big >= 2**63:
        raise ValueError("input too long for int64 composite keys (> ~190 MB)")
    found = np.zeros(n, dtype=bool)
    loc = np.zeros(n, dtype=np.int64)  # scratch: global position -> index in the current array
    # Orders >= 1, partitioned by the previous byte.
    if order >= 1 and n > 1:
        parts = _partitions(arr[:-1], max_chunk)
        for pi, byte_set in enumerate(parts):
            pos = np.flatnonzero(np.isin(arr[:-1], byte_set)) + 1
            levels: list[_Level] = []
            prev_ctx = np.zeros(len(pos), dtype=np.int64)
            for k in range(1, order + 1):
                lpos = pos[np.searchsorted(pos, k):]
                if len(lpos) == 0:
                    break
                prev_ctx = prev_ctx[len(prev_ctx) - len(lpos):]
                lev = _Level(arr, lpos, k, prev_ctx, big, loc)
                levels.append(lev)
                prev_ctx = lev.ctx
            for k in range(len(levels), 0, -1):
                up = levels[k] if k < len(levels) else None
                _combine(arr, levels[k - 1], up, k, exclusion, found, logp, big, max_elems, loc)
            if progress is not None:
                progress(f"orders 1..{order}: partition {pi + 1}/{len(parts)}")
    # Order 0 (one global context), with order 1 rebuilt globally for its exclusion set.
    allpos = np.arange(n, dtype=np.int64)
    low = _Level(arr, allpos, 0, None, big, loc)
    up = _Level(arr, allpos[1:], 1, np.zeros(n - 1, dtype=np.int64), big, loc) if (order >= 1 and n > 1) else None
    _combine(arr, low, up, 0, exclusion, found, logp, big, max_elems, loc)
    rest = np.flatnonzero(~found)
    excl = low.u[rest] if exclusion else 0
    logp[rest] -= np.log(256.0 - excl)
    return logp


def byte_ppm_logprobs(data: bytes, order: int = 5, exclusion: bool = True) -> np.ndarray:
    """Natural-log PPM-D probability of each byte of `data` (float64, length len(data)), score-first."""
    return byte_ppm_logprobs_fast(data, order=order, exclusion=exclusion)


def bits_per_byte(logprobs: np.ndarray) -> float:
    """Code length in bits per byte of a per-byte natural-log probability array."""
    if len(logprobs) == 0:
        return float("nan")
    return float(-np.sum(logprobs) / (math.log(2) * len(logprobs)))
