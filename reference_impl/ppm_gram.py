"""Byte PPM-D with entries found by hashing the byte grams themselves, so lookups can be prefetched.

Why a second kernel beside `ppm_kernel`: that trie reaches every entry through pointers (lists, suffix
links), so each byte costs a chain of dependent cache misses, and on this class of machine one miss is
~170-300 ns while eight independent ones overlap to ~22 ns each. Here the entry of every (context, symbol)
pair is found by hashing its gram, the k+1 bytes ending at the symbol, which depend only on the input:
the table slots and records that position i+D will read are prefetched D positions early, and the
pointer chains that remain are the context lists walked on escapes (u and the exclusion sum).

The arithmetic is the trie kernel's (and the oracle's), operation for operation: bit-identical results.
Orders up to 6 (a gram of at most 7 bytes plus its length fits one int64 key); `ppm.byte_ppm_logprobs_fast`
sends higher orders to the list trie.

State per entry (one per distinct gram of length 1..K+1, plus the root):
    rec[e] = (KLO, KHI, CNT, NXT, DOWN, HEAD) int32: the gram key (low 31 bits, the rest), its count, the next entry of the same
             context, the entry of the gram one byte shorter on the left (the suffix), and the first entry
             of the context this gram spells one order up — the trie kernel's fields plus the key
    table  = open-addressing slots (int32 entry ids, -1 empty, linear probing), at most half full
so 24 + 8 = 32 bytes per entry (random bytes, the worst case at order 5: 6 entries, 192 B per input byte).
"""

from __future__ import annotations

import math

import numpy as np

from reference_impl.ppm_kernel import HAVE_NUMBA, MAX_INPUT, check_budget, count_and_advance

MAX_GRAM_ORDER = 6
KLO, KHI, CNT, NXT, DOWN, HEAD = 0, 1, 2, 3, 4, 5
FIELDS = 6
ENTRY_BYTES = FIELDS * 4 + 8  # the record plus two table slots
_GOLD = 0x9E3779B97F4A7C15
_PREFETCH_DISTANCE = 12  # positions ahead for table slots; records at half that


def _prefetch_py(arr, i):  # uncompiled stand-in: a hint only, so doing nothing is correct
    return None


prefetch = _prefetch_py
if HAVE_NUMBA:  # pragma: no branch
    try:
        from llvmlite import ir
        from numba import types
        from numba.core import cgutils
        from numba.extending import intrinsic

        @intrinsic
        def _prefetch_intrinsic(typingctx, arr, idx):
            """llvm.prefetch(read, high locality) of &arr[idx]: starts the cache miss without waiting for it."""
            sig = types.void(arr, idx)

            def codegen(context, builder, signature, args):
                aryty = signature.args[0]
                ary = context.make_array(aryty)(context, builder, args[0])
                i0 = context.cast(builder, args[1], signature.args[1], types.intp)
                index = [i0] + [ir.Constant(i0.type, 0)] * (aryty.ndim - 1)  # row start
                ptr = cgutils.get_item_pointer(context, builder, aryty, ary, index, wraparound=False)
                i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
                i32 = ir.IntType(32)
                fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), i32, i32, i32])
                fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
                builder.call(fn, [i8p, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
                return context.get_dummy_value()

            return sig, codegen

        prefetch = _prefetch_intrinsic
    except Exception:  # noqa: BLE001 - no intrinsic support: run without prefetching (same results)
        import numba

        prefetch = numba.njit(inline="always")(_prefetch_py)


def _slot(key, shift):
    return np.int64((np.uint64(key) * np.uint64(_GOLD)) >> np.uint64(shift))


def _find(rec, table, mask, shift, key):
    lo = key & 0x7FFFFFFF
    hi = key >> 31
    s = _slot(key, shift)
    e = table[s]
    while e >= 0:
        if rec[e, KLO] == lo and rec[e, KHI] == hi:
            return e
        s = (s + 1) & mask
        e = table[s]
    return -1


def _insert(table, mask, shift, key, e):
    s = _slot(key, shift)
    while table[s] >= 0:
        s = (s + 1) & mask
    table[s] = e


def _key(rec, e):
    return (np.int64(rec[e, KHI]) << 31) | np.int64(rec[e, KLO])


def _rehash(rec, used, table, shift):
    """Insert entries 1..used-1 into an empty table (after it was enlarged)."""
    mask = len(table) - 1
    for e in range(1, used):
        _insert(table, mask, shift, _key(rec, e), e)


def _grams(x, i, order, g):
    """Packed last order+1 bytes ending at i, updated from the previous value g."""
    return ((g << 8) | np.int64(x[i])) & ((np.int64(1) << (8 * (order + 1))) - 1)


def _run(x, start, stop, out, order, exclusion, rec, table, shift, ctx, state):
    """Score and count bytes start..stop-1; stop early (returning the position) when the record array
    is full or the table would pass half full. state = [entries used, rolling gram at start-1]."""
    mask = len(table) - 1
    cap = min(rec.shape[0], len(table) // 2)
    n_used = state[0]
    g = state[1]
    ek = np.empty(order + 1, dtype=np.int64)
    keys = np.empty(order + 1, dtype=np.int64)
    n = len(x)
    D = _PREFETCH_DISTANCE
    # Rolling gram of the prefetch front (position i + D), rebuilt from scratch at each call.
    gf = np.int64(0)
    for j in range(max(0, start + D - order), min(n, start + D)):
        gf = _grams(x, j, order, gf)
    for i in range(start, stop):
        if n_used + order + 1 > cap:
            state[0] = n_used
            state[1] = g
            return i
        # Prefetch: table slots for the grams ending at i + D, records for those ending at i + D/2.
        j = i + D
        if j < n:
            gf = _grams(x, j, order, gf)
            for L in range(3, min(order, j) + 2):
                kf = (gf & ((np.int64(1) << (8 * L)) - 1)) | (np.int64(L) << 56)
                prefetch(table, _slot(kf, shift))
        j = i + D // 2
        if j < n and j >= 2:
            gh = np.int64(0)
            for q in range(max(0, j - order), j + 1):
                gh = (gh << 8) | np.int64(x[q])
            for L in range(3, min(order, j) + 2):
                kf = (gh & ((np.int64(1) << (8 * L)) - 1)) | (np.int64(L) << 56)
                e = table[_slot(kf, shift)]
                if e >= 0:
                    prefetch(rec, e)
        g = _grams(x, i, order, g)
        xi = x[i]
        top = min(order, i)
        # Pair entries (gram of length k+1 ending at i) from the top down; nested, so the first found
        # is the hit order and every lower one exists too.
        hit_k = -1
        for k in range(top, -1, -1):
            L = k + 1
            key = (g & ((np.int64(1) << (8 * L)) - 1)) | (np.int64(L) << 56)
            keys[k] = key
            e = _find(rec, table, mask, shift, key) if hit_k < 0 else rec[ek[k + 1], DOWN]
            ek[k] = e
            if e >= 0 and hit_k < 0:
                hit_k = k
        logp = 0.0
        m = 0
        u_above = 0
        for k in range(top, hit_k, -1):
            c = ctx[k]
            nk = i if k == 0 else rec[c, CNT] - 1
            if nk == 0:
                continue  # unseen context
            # One walk of the context's list: u, and (exclusion) the next order's excluded count, the
            # sum of the suffix entries' counts (their loads overlap the walk).
            u = 0
            m_next = 0
            e = rec[c, HEAD]
            if exclusion and k > 0:
                while e >= 0:
                    u += 1
                    m_next += rec[rec[e, DOWN], CNT]
                    e = rec[e, NXT]
            else:
                while e >= 0:
                    u += 1
                    e = rec[e, NXT]
            u_eff = u - u_above
            if u_eff > 0:
                logp += math.log(u_eff / (2 * (nk - m)))
            if exclusion:
                m = m_next
                u_above = u
        if hit_k >= 0:
            c = ctx[hit_k]
            nk = i if hit_k == 0 else rec[c, CNT] - 1
            logp += math.log((2 * rec[ek[hit_k], CNT] - 1) / (2 * (nk - m)))
        else:
            logp -= math.log(256 - u_above)
        out[i] = logp
        for k in range(hit_k + 1, top + 1):
            c = ctx[k]
            e = n_used
            n_used += 1
            key = keys[k]
            rec[e, KLO] = key & 0x7FFFFFFF
            rec[e, KHI] = key >> 31
            rec[e, CNT] = 0
            rec[e, HEAD] = -1
            rec[e, DOWN] = ek[k - 1] if k > 0 else -1
            rec[e, NXT] = rec[c, HEAD]
            rec[c, HEAD] = e
            _insert(table, mask, shift, key, e)
            ek[k] = e
        count_and_advance(rec, ek, ctx, top, order, CNT)
    state[0] = n_used
    state[1] = g
    return stop


_NAMES = ("_slot", "_find", "_insert", "_key", "_grams", "_rehash", "_run")
_built: dict = {}


def _kernels(compiled: bool) -> dict:
    """The kernel functions, compiled (numba, with the prefetch intrinsic) or plain Python (prefetch a no-op).

    Each set gets its own globals, so the two can be used side by side in one process (tests do).
    """
    if compiled not in _built:
        import types as pytypes

        env = dict(globals())
        env["prefetch"] = prefetch if compiled else _prefetch_py
        jit = None
        if compiled:
            import numba

            jit = numba.njit(nogil=True, boundscheck=False)
        fns = {}
        for name in _NAMES:
            f = globals()[name]
            f = pytypes.FunctionType(f.__code__, env, name, f.__defaults__)
            fns[name] = jit(f) if jit else f
            env[name] = fns[name]  # later functions call the earlier ones in the same mode
        _built[compiled] = fns
    return _built[compiled]


def gram_logprobs(data: bytes, order: int, exclusion: bool, compiled: bool = True, step: int = 1 << 24,
                  progress=None, stats: dict | None = None, capacity: int | None = None,
                  max_state_bytes: int | None = None) -> np.ndarray:
    """PPM-D natural-log probability of each byte (orders 0..6), bit-identical to the oracle.

    Growing the state past `max_state_bytes` (default: `ppm_kernel.memory_budget()`) raises MemoryError.
    """
    if order > MAX_GRAM_ORDER:
        raise ValueError(f"gram-hash PPM supports order <= {MAX_GRAM_ORDER}, got {order}")
    n = len(data)
    if n > MAX_INPUT:
        raise ValueError(f"gram-hash PPM handles at most {MAX_INPUT:,} bytes, got {n:,}")
    if compiled and not HAVE_NUMBA:
        raise RuntimeError("numba is not installed")
    kern = _kernels(compiled)
    x = np.frombuffer(data, dtype=np.uint8)
    out = np.empty(n, dtype=np.float64)
    cap = capacity or int(min((order + 1) * n + 2, max(1 << 16, n // 4)))
    rec = np.empty((cap, FIELDS), dtype=np.int32)
    rec[0] = (0, 0, 0, -1, -1, -1)  # the root: key 0 (length 0) is never looked up
    lg = max(4, (2 * cap - 1).bit_length())
    table = np.full(1 << lg, -1, dtype=np.int32)
    ctx = np.zeros(order + 1, dtype=np.int64)
    state = np.array([1, 0], dtype=np.int64)
    i = 0
    while i < n:
        stop = min(n, i + step)
        with np.errstate(over="ignore"):  # uncompiled: the hash's uint64 product wraps, as compiled
            i = kern["_run"](x, i, stop, out, order, exclusion, rec, table, 64 - lg, ctx, state)
        if i < stop:
            used = int(state[0])
            grow_rec = used + order + 1 > rec.shape[0]
            rows = min(rec.shape[0] * 2, used + (order + 1) * (n - i) + 1) if grow_rec else rec.shape[0]
            grow_table = used + order + 1 > len(table) // 2
            slots = len(table) * (2 if grow_table else 1)
            # Peak during the growth: old and new records (or tables) both alive.
            check_budget((rec.shape[0] * grow_rec + rows) * FIELDS * 4 + (len(table) * grow_table + slots) * 4,
                         max_state_bytes)
            if grow_rec:
                new = np.empty((rows, FIELDS), dtype=np.int32)
                new[:used] = rec[:used]
                rec = new
            if grow_table:
                lg += 1
                table = np.full(1 << lg, -1, dtype=np.int32)
                with np.errstate(over="ignore"):
                    kern["_rehash"](rec, used, table, 64 - lg)
        elif progress is not None:
            progress(f"byte PPM: {i:,}/{n:,} bytes, {int(state[0]):,} entries")
    if stats is not None:
        used = int(state[0])
        stats.update(entries=used, capacity=rec.shape[0], state_bytes=rec.nbytes + table.nbytes,
                     bytes_in_use=used * FIELDS * 4 + table.nbytes)
    return out
