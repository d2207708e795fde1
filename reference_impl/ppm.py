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
exactly those seen in the order-(k+1) context. Per order, counts are ranks in a sort of
(context id, position); the excluded count at order k is a sum, over the few symbols of the
order-(k+1) context, of order-k pair counts found by binary search; orders are then applied from the
top down to the positions no higher order has resolved. Inputs up to `max_chunk` bytes use one sort per
gram length (the order-k pair at i is the (k+1)-gram at i-k); longer inputs process orders >= 1 in
partitions keyed by the previous byte (every context of order >= 1 ends with it), which bounds memory.
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


_SENTINEL = 256  # pads the byte array so every level keeps all n + 1 starts (no filtering pass)
_RADIX = 257


class _GramLevel:
    """All g-grams data[j:j+g] (sentinel-padded past the end), sorted by (gram, start).

    The pair (order-k context, symbol) at position i is the (k+1)-gram starting at i-k, and the order-k
    context is the k-gram starting there, so one sort per gram length serves both roles. Sort values are
    (gram key << bits) | start with gram key = (previous level's group id) * 257 + next byte, so the
    next level is built from this one in sorted order without scattering. Grams that reach into the
    padding are distinct from every real gram and come after all real starts of their context, so they
    change no count that is read. Per-start values are written once, packed as
    rank | u << bits | group id << (bits + 9).
    """

    __slots__ = ("start", "gid", "gnew", "rank", "sorted", "packed", "first_start", "first_sym")

    def __init__(self, arrp: np.ndarray, n: int, g: int, prev: "_GramLevel | None", bits: int):
        if prev is None:  # g == 0: the empty gram at every start 0..n
            self.start = np.arange(n + 1, dtype=np.int64)
            self.gid = np.zeros(n + 1, dtype=np.int64)
            self.gnew = self.start == 0
            self.rank = self.start
            self.sorted = self.start
            return
        st = prev.start
        sv = np.sort(((prev.gid * _RADIX + arrp[st + (g - 1)]) << bits) | st)
        self.start = sv & ((1 << bits) - 1)
        self.gnew = _group_starts(sv >> bits)
        self.gid = np.cumsum(self.gnew) - 1
        self.rank = np.arange(len(sv)) - np.flatnonzero(self.gnew)[self.gid]
        self.sorted = sv

    def finish(self, arrp: np.ndarray, n: int, g: int, nxt: "_GramLevel | None", bits: int) -> None:
        """u (distinct next bytes seen before each start), first-occurrence lists, packed per-start values."""
        m = len(self.start)
        if nxt is not None:
            first_at = np.zeros(n + 1, dtype=bool)
            first_at[nxt.start[nxt.rank == 0]] = True
            f = first_at[self.start]
        else:
            f = np.zeros(m, dtype=bool)
        run = np.cumsum(f) - f
        gs = np.flatnonzero(self.gnew)
        u = run - run[gs][self.gid]
        ends = np.append(gs[1:], m)
        cum = np.concatenate(([0], np.cumsum(f)))
        per_ctx = cum[ends] - cum[gs]
        self.first_start = np.cumsum(per_ctx) - per_ctx
        self.first_sym = arrp[self.start[f] + g]
        packed = np.empty(n + 1, dtype=np.int64)
        packed[self.start] = self.rank | (u << bits) | (self.gid << (bits + 9))
        self.packed = packed
        self.start = self.gid = self.gnew = self.rank = None  # free what the combine does not use


def _fast_grams(arr: np.ndarray, order: int, exclusion: bool, max_elems: int) -> np.ndarray:
    n = len(arr)
    bits = max(n.bit_length(), 1)  # starts 0..n fit in `bits` bits
    mask = (1 << bits) - 1
    arrp = np.concatenate([arr, np.full(order + 2, _SENTINEL, dtype=np.int64)])
    levels = [_GramLevel(arrp, n, 0, None, bits)]
    for g in range(1, min(order + 1, n) + 1):
        levels.append(_GramLevel(arrp, n, g, levels[-1], bits))
    for g, lev in enumerate(levels):
        lev.finish(arrp, n, g, levels[g + 1] if g + 1 < len(levels) else None, bits)
    top = min(order, len(levels) - 2)  # highest order with at least one pair
    logp = np.zeros(n, dtype=np.float64)
    alive = np.arange(n, dtype=np.int64)  # positions no order has resolved yet, ascending
    for k in range(top, -1, -1):
        i = alive[np.searchsorted(alive, k):]
        j = i - k  # start of the order-k context
        pk = levels[k].packed[j]
        nk = pk & mask
        u = (pk >> bits) & 511
        ck = levels[k + 1].packed[j] & mask
        u1 = np.zeros(len(j), dtype=np.int64)
        m = np.zeros(len(j), dtype=np.int64)
        if exclusion and k < top:
            has_up = j > 0
            u1[has_up] = (levels[k + 1].packed[j[has_up] - 1] >> bits) & 511
            need = np.flatnonzero((u1 > 0) & (u1 < u))
            if len(need):
                up_ids = levels[k + 1].packed[j[need] - 1] >> (bits + 9)
                m[need] = _gram_excluded(levels[k + 1], j[need], pk[need] >> (bits + 9), up_ids, u1[need],
                                         bits, max_elems)
        n_eff = nk - m
        u_eff = u - u1
        hit = ck > 0
        h = np.flatnonzero(hit)
        e = np.flatnonzero(~hit & (n_eff > 0) & (u_eff > 0))
        logp[i[h]] += np.log((2 * ck[h] - 1) / (2.0 * n_eff[h]))
        logp[i[e]] += np.log(u_eff[e] / (2.0 * n_eff[e]))
        done = np.zeros(n, dtype=bool)
        done[i[h]] = True
        alive = alive[~done[alive]]
    u0 = (levels[0].packed[alive] >> bits) & 511
    logp[alive] -= np.log(256.0 - (u0 if exclusion else 0))
    return logp


def _gram_excluded(up: _GramLevel, js: np.ndarray, low_ids: np.ndarray, up_ids: np.ndarray, cnt: np.ndarray,
                   bits: int, max_elems: int) -> np.ndarray:
    """m_k at context starts `js` (ascending): order-k counts summed over the order-(k+1) symbols.

    The order-(k+1) context starts one byte earlier (id `up_ids`); its symbols before the position are
    the first `cnt` entries of its first-occurrence list. Each symbol's order-k count is a range count
    in the (k+1)-gram sort, i.e. `up.sorted`.
    """
    out = np.zeros(len(js), dtype=np.int64)
    start = up.first_start[up_ids]
    bounds = np.cumsum(cnt)
    mask = (1 << bits) - 1
    lo = 0
    while lo < len(js):
        base = bounds[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(bounds, base + max_elems, side="right")), lo + 1)
        c = cnt[lo:hi]
        total = int(c.sum())
        if total:
            rep = np.repeat(np.arange(lo, hi), c)
            offs = np.arange(total) - np.repeat(np.cumsum(c) - c, c)
            sym = up.first_sym[start[rep] + offs]
            j = js[rep]
            # Sorted query values keep the binary searches cache-friendly; the start embedded in
            # each value maps it back to its row (rows have distinct starts, in ascending order).
            q = np.sort(((low_ids[rep] * _RADIX + sym) << bits) | j)
            qj = q & mask
            got = np.searchsorted(up.sorted, q) - np.searchsorted(up.sorted, q - qj)
            out += np.bincount(np.searchsorted(js, qj), weights=got, minlength=len(js)).astype(np.int64)
        lo = hi
    return out


def byte_ppm_logprobs_fast(
    data: bytes, order: int = 5, exclusion: bool = True, max_chunk: int = 1 << 22,
    max_elems: int = 1 << 22, progress: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Vectorised PPM-D; equal to `byte_ppm_logprobs_reference` to float rounding (~1e-12)."""
    raw = _check(data, order)
    if order > MAX_FAST_ORDER:
        raise ValueError(f"vectorised PPM supports order <= {MAX_FAST_ORDER}, got {order}")
    n = len(raw)
    logp = np.zeros(n, dtype=np.float64)
    if n == 0:
        return logp
    arr = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
    big = n + 1  # composite keys are (id * 256 + byte) * big + position: < 2**63 for n < ~1.9e8
    if 256 * big * big >= 2**63:
        raise ValueError("input too long for int64 composite keys (> ~190 MB)")
    if n <= max_chunk and 2 * n.bit_length() + 9 <= 63:
        return _fast_grams(arr, order, exclusion, max_elems)
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
