"""Byte-level PPM-D, exact and score-first, in implementations that must agree with the oracle.

Why several: the sequential dict version is short enough to read against the definition below and serves
as the oracle; `byte_ppm_logprobs_fast` is what a reviewer runs over a whole validation set. It has one
path for every input size: a sequential kernel compiled with numba, bit-identical to the oracle, whose
state grows with the distinct contexts only — `ppm_gram` (entries found by hashing their byte grams, so
lookups are prefetched; orders <= 6, 32 bytes per entry) or `ppm_kernel` (a pointer trie, any order, 20
bytes per entry). Where numba is not installed, the numpy single-sort method (`ppm_sort`; equal to
~1e-15, ~130 bytes per input byte, inputs up to 134 MB).

Definition (bit-reproducible). For the byte at position i, orders k = min(K, i) .. 0 are tried with
context = the previous k bytes; unseen contexts are skipped. In a context with counts c(s), total n and
u distinct symbols, a seen symbol gets (2c(s)-1)/(2n) and the escape gets u/(2n). With exclusion,
symbols offered at a higher order are removed from c, n and u at lower orders, and a context whose
symbols are all excluded is skipped like an unseen one. After order 0, order -1 is uniform over the 256
(minus excluded) bytes. After scoring, the byte is counted in the contexts of every order 0..min(K, i).

Only the exclusion variant is normalised. Without exclusion, lower orders still give mass to symbols
that a higher order already offered; that mass is wasted, and `byte_ppm_distributions` reports the
resulting sub-unit sums instead of hiding them.
"""


from __future__ import annotations

import math
from typing import Callable

import numpy as np

from reference_impl import ppm_gram, ppm_kernel, ppm_sort
from reference_impl.bpb import bits_per_byte as bits_per_byte_of

MAX_FAST_ORDER = ppm_sort.MAX_SORT_ORDER  # the numpy path's limit; the trie has none


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
# Fast path: one entry point, one method per installed toolset
# --------------------------------------------------------------------------------------------------


BACKENDS = ("gram", "trie", "sort", "gram-python", "trie-python")


def default_backend(order: int = 5) -> str:
    """'gram' (compiled, prefetching hash kernel) for orders <= 6 when numba is installed, 'trie' (compiled
    list trie, any order) above that, else 'sort' (numpy)."""
    if not ppm_kernel.HAVE_NUMBA:
        return "sort"
    return "gram" if order <= ppm_gram.MAX_GRAM_ORDER else "trie"


def byte_ppm_logprobs_fast(
    data: bytes, order: int = 5, exclusion: bool = True, backend: str | None = None,
    max_elems: int = 1 << 22, progress: Callable[[str], None] | None = None, stats: dict | None = None,
    max_state_bytes: int | None = None,
) -> np.ndarray:
    """PPM-D natural-log probabilities, equal to `byte_ppm_logprobs_reference` (bit-identical except 'sort').

    backend: 'gram' (numba, orders <= 6, any size up to 2 GiB; the fastest), 'trie' (numba, any order,
    20 instead of 32 bytes per entry), 'sort' (numpy, up to 134 MB, order <= 12; ~1e-15), and the two
    kernels uncompiled as 'gram-python' / 'trie-python' (slow; tests where numba is absent).
    None = `default_backend(order)`. `stats` receives the kernel's entry count and state bytes; a kernel
    whose state would pass `max_state_bytes` (default: 3/4 of physical memory) raises MemoryError.
    """
    raw = _check(data, order)
    backend = backend or default_backend(order)
    if backend not in BACKENDS:
        raise ValueError(f"unknown PPM backend {backend!r}; one of {', '.join(BACKENDS)}")
    if len(raw) == 0:
        return np.zeros(0, dtype=np.float64)
    if backend == "sort":
        return ppm_sort.sort_logprobs(np.frombuffer(raw, dtype=np.uint8), order, exclusion, max_elems)
    compiled = not backend.endswith("-python")
    if backend.startswith("gram"):
        return ppm_gram.gram_logprobs(raw, order, exclusion, compiled=compiled, progress=progress, stats=stats,
                                      max_state_bytes=max_state_bytes)
    return ppm_kernel.trie_logprobs(raw, order, exclusion, compiled=compiled, progress=progress, stats=stats,
                                    max_state_bytes=max_state_bytes)


def byte_ppm_logprobs(data: bytes, order: int = 5, exclusion: bool = True) -> np.ndarray:
    """Natural-log PPM-D probability of each byte of `data` (float64, length len(data)), score-first."""
    return byte_ppm_logprobs_fast(data, order=order, exclusion=exclusion)


def bits_per_byte(logprobs: np.ndarray) -> float:
    """Code length in bits per byte of a per-byte natural-log probability array."""
    if len(logprobs) == 0:
        return float("nan")
    return bits_per_byte_of(-float(np.sum(logprobs)), len(logprobs))
