"""Byte PPM-D by sorting: the numpy fallback used when numba (for `ppm_kernel`) is not installed.

Context sets are nested (every earlier occurrence of an order-(k+1) context is also an occurrence of its
order-k suffix), so the symbols excluded at order k are exactly those seen in the order-(k+1) context, and
each order can be applied to the positions no higher order resolved. Counts are ranks in a sort of
(gram, start): the order-k context of position i is the k-gram starting at i-k and the (context, symbol)
pair is the (k+1)-gram there, so one sort per gram length serves two orders, and once each length's counts
are written back by start, every per-order read is a shifted slice. The excluded count at order k is a
sum, over the few symbols of the order-(k+1) context, of order-k pair counts found by one binary search
each.

One path for every size it accepts: about 130 bytes of memory per input byte and one int64 word per start
packing rank, distinct count and group id, which limits inputs to 2**27 bytes (134 MB). Longer inputs need
the trie kernel (numba). The earlier partitioned path for long inputs was removed: it was 3-4x slower.
"""

from __future__ import annotations

import numpy as np

MAX_SORT_ORDER = 12
MAX_SORT_INPUT = 1 << 27  # 2 * 27 + 9 bits fit the packed int64 word

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


def sort_logprobs(x: np.ndarray, order: int, exclusion: bool, max_elems: int = 1 << 22) -> np.ndarray:
    """PPM-D natural-log probabilities of the bytes `x` (uint8, non-empty) by the single-sort method."""
    n = len(x)
    if order > MAX_SORT_ORDER:
        raise ValueError(f"the numpy PPM path supports order <= {MAX_SORT_ORDER}, got {order}")
    if n > MAX_SORT_INPUT:
        raise ValueError(f"the numpy PPM path handles at most {MAX_SORT_INPUT:,} bytes, got {n:,}: install numba "
                         "for the trie kernel, which has no such limit")
    return _fast_grams(x, order, exclusion, max_elems)
