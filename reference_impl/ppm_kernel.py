"""Byte PPM-D as one sequential pass over a context trie, compiled with numba when it is installed.

Why a sequential kernel: PPM-D's counts are cumulative, so a vectorised formulation has to re-derive every
count by sorting all positions once per gram length (`ppm_sort`), which costs ~130 bytes of memory per
input byte and O(n log n) time. A trie updated byte by byte needs memory only for the distinct contexts
and constant work per byte, but a Python loop over 151 MB is hours; numba (an LLVM JIT maintained by the
numba/Anaconda team, wheels for every supported CPython and numpy) turns the same loop into machine code
without a C toolchain on the user's side. Without numba the caller falls back to the numpy path.

The arithmetic repeats the oracle's operations in the oracle's order (integer counts, one float division
and one log per visited order, summed from the top order down, the order -1 term subtracted last), so the
result is bit-identical to `byte_ppm_logprobs_reference`, not merely close.

State, one record of five int32 per distinct (context, symbol) pair of every order 0..K (records rather
than one array per field: each visit then touches one cache line, not five):

    SYM   the symbol (byte)
    CNT   times the symbol followed the context
    NXT   next entry of the same context (a singly linked list, found symbols moved to the front; the
          order is irrelevant to the result, all sums are integers)
    DOWN  the entry of the same symbol in the context one byte shorter (the suffix), -1 at order 0
    HEAD  first entry of the context "context + symbol" one order higher (-1: none yet)

An entry doubles as the node of the context one order higher that it spells (entry 0 is the root, the
empty context), so a context needs no storage of its own: its total count is the entry's count minus one
(the occurrence that ends at the current byte has not been followed by anything yet), the root's total is
the position. Down links are the suffix links: after byte x the order-(k+1) context is the entry of x at
order k, and the entries to count at the lower orders are reached by following DOWN from the hit.

Memory: 20 bytes per entry; at most K+1 new entries per input byte (random bytes: 120 B per input byte at
order 5), far fewer on text (the benchmark prints the measured figure).

With exclusion, the symbols excluded at order k are exactly those of the order-(k+1) context (contexts are
nested), so the excluded count is the sum over that context's entries of their `down` counts, and the
excluded distinct count is its symbol count.
"""

from __future__ import annotations

import math
import os

import numpy as np

try:  # numba is optional: the numpy path is the fallback
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None
    HAVE_NUMBA = False

SYM, CNT, NXT, DOWN, HEAD = 0, 1, 2, 3, 4  # fields of an entry record (int32 each)
ENTRY_BYTES = 20


def memory_budget() -> int:
    """Bytes of state a PPM pass may grow to: three quarters of physical memory (so an input with far more
    distinct contexts than text, e.g. random bytes, stops with a MemoryError instead of being killed)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 3 // 4)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 40


def check_budget(nbytes: int, budget: int | None) -> None:
    budget = memory_budget() if budget is None else budget
    if nbytes > budget:
        raise MemoryError(f"byte PPM state would grow to {nbytes / 2**30:.1f} GiB, over the budget of "
                          f"{budget / 2**30:.1f} GiB (the input has too many distinct contexts for this machine)")
MAX_INPUT = (1 << 31) - 1  # int32 counts and entry ids


def _count_and_advance_py(rec, ek, ctx, top, order, cnt):
    """After a byte is scored: count it in its context at every order 0..top (`ek[k]` is its entry at
    order k) and make each of those entries the context of the next byte one order up. Shared by the
    trie kernel here and the hashed kernel in ppm_gram.py (`cnt`: the count field of their records)."""
    for k in range(top + 1):
        rec[ek[k], cnt] += 1
    for k in range(min(top + 1, order), 0, -1):
        ctx[k] = ek[k - 1]


if HAVE_NUMBA:
    count_and_advance = numba.njit(inline="always", cache=True, nogil=True, boundscheck=False)(_count_and_advance_py)
else:  # pragma: no cover
    count_and_advance = _count_and_advance_py


def _run(x, start, stop, out, order, exclusion, rec, ctx, used):
    """Score and count bytes start..stop-1; return the first position not done (capacity ran out) or stop.

    `rec[e]` = (sym, cnt, nxt, down, head) of entry e; `ctx[k]` the entry naming the order-k context of
    position `start` (ctx[0] = 0, the root); `used[0]` the number of entries in use. All are updated in
    place, so calls can be chained.
    """
    cap = rec.shape[0]
    n_used = used[0]
    ek = np.empty(order + 1, dtype=np.int64)
    for i in range(start, stop):
        if n_used + order + 1 > cap:
            used[0] = n_used
            return i
        xi = x[i]
        top = min(order, i)
        logp = 0.0
        m = 0  # count excluded at the current order (sum over the context above of this order's counts)
        u_above = 0  # distinct symbols excluded (those of the last context seen above)
        hit = -1
        hit_k = -1
        for k in range(top, -1, -1):
            c = ctx[k]
            n = i if k == 0 else rec[c, CNT] - 1
            if n == 0:
                continue  # unseen context
            e = rec[c, HEAD]
            prev = -1
            u = 0
            while e >= 0:
                if rec[e, SYM] == xi:
                    break
                u += 1
                prev = e
                e = rec[e, NXT]
            if e >= 0:
                logp += math.log((2 * rec[e, CNT] - 1) / (2 * (n - m)))
                if prev >= 0:  # move to front: the next scan of this context finds it first
                    rec[prev, NXT] = rec[e, NXT]
                    rec[e, NXT] = rec[c, HEAD]
                    rec[c, HEAD] = e
                hit = e
                hit_k = k
                break
            u_eff = u - u_above
            if u_eff > 0:
                logp += math.log(u_eff / (2 * (n - m)))
            if exclusion:
                if k > 0:
                    m = 0
                    e = rec[c, HEAD]
                    while e >= 0:
                        m += rec[rec[e, DOWN], CNT]
                        e = rec[e, NXT]
                u_above = u
        if hit < 0:
            logp -= math.log(256 - u_above)
        out[i] = logp
        # Count x at every order 0..top: existing entries from the hit down, new ones above it.
        e = hit
        for k in range(hit_k, -1, -1):
            ek[k] = e
            e = rec[e, DOWN]
        for k in range(hit_k + 1, top + 1):
            c = ctx[k]
            e = n_used
            n_used += 1
            rec[e, SYM] = xi
            rec[e, CNT] = 0
            rec[e, HEAD] = -1
            rec[e, DOWN] = ek[k - 1] if k > 0 else -1
            rec[e, NXT] = rec[c, HEAD]
            rec[c, HEAD] = e
            ek[k] = e
        count_and_advance(rec, ek, ctx, top, order, CNT)
    used[0] = n_used
    return stop


if HAVE_NUMBA:
    _run_compiled = numba.njit(cache=True, nogil=True, boundscheck=False)(_run)
else:  # pragma: no cover
    _run_compiled = None


class TrieState:
    """The entry records of one pass; grown by `grow` when `_run` reports that it ran out of entries."""

    def __init__(self, capacity: int, order: int):
        self.order = order
        self.rec = np.empty((capacity, 5), dtype=np.int32)
        self.rec[0] = (0, 0, -1, -1, -1)  # entry 0: the root (empty context)
        self.ctx = np.zeros(order + 1, dtype=np.int64)
        self.used = np.ones(1, dtype=np.int64)

    @property
    def capacity(self) -> int:
        return len(self.rec)

    def nbytes(self) -> int:
        return self.rec.nbytes

    def grow(self, capacity: int) -> None:
        new = np.empty((capacity, 5), dtype=np.int32)
        new[: len(self.rec)] = self.rec
        self.rec = new

    def args(self):
        return self.rec, self.ctx, self.used


def initial_capacity(n: int, order: int) -> int:
    """Entries to allocate up front: the worst case for short inputs, ~1 per byte for long ones (text needs
    about 0.3-0.6; random bytes up to order+1, reached by growing)."""
    worst = (order + 1) * n + order + 2
    return int(min(worst, max(1 << 16, n + order + 2)))


def trie_logprobs(data: bytes, order: int, exclusion: bool, compiled: bool = True, step: int = 1 << 24,
                  progress=None, stats: dict | None = None, capacity: int | None = None,
                  max_state_bytes: int | None = None) -> np.ndarray:
    """PPM-D natural-log probability of each byte via the trie kernel (see the module doc).

    compiled=False runs the same function as plain Python (slow; for tests where numba is absent).
    `stats`, when given, receives the entry count and state bytes; `capacity` overrides the initial
    number of entries (tests use a tiny one to exercise growth); growing past `max_state_bytes` (default
    `memory_budget()`) raises MemoryError.
    """
    n = len(data)
    if n > MAX_INPUT:
        raise ValueError(f"trie PPM handles at most {MAX_INPUT:,} bytes (int32 counts), got {n:,}")
    run = _run_compiled if compiled else _run
    if run is None:
        raise RuntimeError("numba is not installed")
    x = np.frombuffer(data, dtype=np.uint8)
    out = np.empty(n, dtype=np.float64)
    st = TrieState(capacity or initial_capacity(n, order), order)
    i = 0
    while i < n:
        stop = min(n, i + step)
        i = run(x, i, stop, out, order, exclusion, *st.args())
        if i < stop:
            # Out of entries: grow by half, never past the worst case for the remaining bytes.
            need = int(st.used[0]) + (order + 1) * (n - i) + 1
            new = min(need, max(st.capacity * 3 // 2, st.capacity + (order + 1) * 4096))
            check_budget((st.capacity + new) * ENTRY_BYTES, max_state_bytes)  # old and new live during the copy
            st.grow(new)
        elif progress is not None:
            progress(f"byte PPM: {i:,}/{n:,} bytes, {int(st.used[0]):,} entries")
    if stats is not None:
        stats.update(entries=int(st.used[0]), capacity=st.capacity, state_bytes=st.nbytes())
    return out
