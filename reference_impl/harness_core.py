"""Primitives shared by the two certification paths (stream/batch predictors and gold-only scorers).

Why separate: `harness_stream` and `harness_gold` both need the target description, the guarded call into
user code and the test streams, and `harness` (entry point, loading, text form) needs both paths.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TRACE_TOL = 1e-9
VOCAB_PARAM_NAMES = {"vocab_size", "vocab", "V", "n_vocab", "vocab_sz"}


class HarnessError(ValueError):
    """The target cannot be certified (wrong shape, bad settings, or it raised): one line, no traceback."""


@dataclass
class Target:
    name: str
    kind: str  # "predictor" or "gold"
    vocab: int
    make: Callable[[], Any] | None = None
    score: Callable[..., Any] | None = None
    has_stream: bool = False
    has_batch: bool = False
    traced: bool = False  # gold: score accepts trace=
    batch: Callable[[np.ndarray], Any] | None = None  # gold: score_batch(streams [B, L]) -> [B, L-1]
    extras: dict = field(default_factory=dict)

    @property
    def shape(self) -> str:
        if self.kind == "gold":
            return "gold" + ("+trace" if self.traced else "") + ("+batch" if self.batch is not None else "")
        return "+".join(s for s, ok in (("stream", self.has_stream), ("batch", self.has_batch)) if ok)


def guard(fn: Callable[[], Any], what: str) -> Any:
    try:
        return fn()
    except HarnessError:
        raise
    except Exception as exc:  # the target is user code: report, never propagate a traceback
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise HarnessError(f"target raised {type(exc).__name__} while {what}: {msg}"[:300]) from None


def params_of(fn: Callable) -> dict[str, inspect.Parameter] | None:
    try:
        return dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None


def random_stream(vocab: int, length: int, seed: int) -> np.ndarray:
    """Zipf-distributed tokens with copied spans, so caches see repeats (uniform noise would leave
    every count at zero and hide count-based leaks)."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1, dtype=np.float64))
    cdf /= cdf[-1]
    perm = rng.permutation(vocab)
    out = np.empty(length, dtype=np.int64)
    t = 0
    while t < length:
        if t >= 8 and rng.random() < 0.4:
            span = min(int(rng.integers(2, 9)), length - t)
            src = int(rng.integers(0, t - span)) if t > span else 0
            out[t:t + span] = out[src:src + span]
            t += span
        else:
            out[t] = perm[min(vocab - 1, int(np.searchsorted(cdf, rng.random(), side="right")))]
            t += 1
    return out


def perturb(tokens: np.ndarray, vocab: int, start: int, stop: int, rng: np.random.Generator) -> np.ndarray:
    """Copy of tokens with every token in [start, stop) replaced by a different one."""
    out = tokens.copy()
    n = max(0, stop - start)
    if n:
        out[start:stop] = (tokens[start:stop] + rng.integers(1, vocab, size=n)) % vocab
    return out


class Prog:
    def __init__(self, progress: Callable[[str], None] | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def step(self, what: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(f"[{self.done}/{self.total}] {what}")


def validate_rows(rows: Any, n: int, vocab: int, what: str) -> np.ndarray:
    arr = np.asarray(rows, dtype=np.float64)
    if arr.shape != (n, vocab):
        raise HarnessError(f"{what} returned shape {arr.shape}, expected {(n, vocab)}")
    if np.isnan(arr).any() or (arr == np.inf).any():
        raise HarnessError(f"{what} returned NaN or +inf log-probabilities")
    return arr
