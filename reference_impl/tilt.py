"""One-token exponential tilt toward a prefix-derived hint, with the closed-form normalizer.

Why: the accepted "token-only n-gram tilt" (#1514, from #1145/#1420) boosts a single hinted token h_t:

    p'(v) = p(v) · exp(β · [v = h_t]) / Z,    Z = 1 + p(h_t) · (e^β − 1)

which sums to one exactly because only one term of the sum changes. The rejected variants chose whether to
emit a hint from properties of the realised token x_t; here the hint is computed from tokens[:t] only and
when there is none (h_t = -1) p is returned unchanged.

Hint rule (`copy_hints`): the token that followed the most recent earlier occurrence of x_{t-1} — the
match model of classic compressors. Its index is at most t-1, so it never sees x_t.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from reference_impl.predictor import run_stream


def copy_hints(tokens) -> np.ndarray:
    """h_t for every t (−1 where there is no earlier occurrence of x_{t-1}); vectorised over the stream."""
    x = np.asarray(tokens, dtype=np.int64)
    n = x.shape[0]
    hints = np.full(n, -1, dtype=np.int64)
    if n < 3:
        return hints
    order = np.argsort(x, kind="stable")  # equal tokens grouped, positions ascending
    prev = np.full(n, -1, dtype=np.int64)
    same = x[order[1:]] == x[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]  # previous occurrence of the same token
    j = np.arange(n - 1)  # hint for t = j + 1 looks at x_j
    s = prev[j]
    ok = s >= 0
    hints[1:][ok] = x[s[ok] + 1]
    return hints


def tilt_logprobs(logp: np.ndarray, hints: np.ndarray, beta: float) -> np.ndarray:
    """Apply the tilt row-wise to a [len, V] log-probability matrix (rows with hint −1 unchanged)."""
    out = np.array(logp, dtype=np.float64, copy=True)
    rows = np.nonzero(hints >= 0)[0]
    if rows.size == 0 or beta == 0.0:
        return out
    h = hints[rows]
    p_h = np.exp(out[rows, h])
    log_z = np.log1p(p_h * math.expm1(beta))
    out[rows] -= log_z[:, None]
    out[rows, h] += beta
    return out


class TiltPredictor:
    """Tilted wrapper of any predictor (streaming and, when the base has it, batch)."""

    def __init__(self, base, beta: float = 1.0):
        if not math.isfinite(beta):
            raise ValueError("beta must be finite")
        self.base = base
        self._fresh_base = copy.deepcopy(base)
        self.vocab_size = int(base.vocab_size)
        self.beta = float(beta)
        self._last_pos: dict[int, int] = {}
        self._history: list[int] = []

    def _hint(self) -> int:
        if not self._history:
            return -1
        last = self._history[-1]
        s = self._last_pos.get(last, -1)
        return self._history[s + 1] if s >= 0 else -1

    def next_logprobs(self) -> np.ndarray:
        row = np.asarray(self.base.next_logprobs(), dtype=np.float64)[None, :]
        return tilt_logprobs(row, np.array([self._hint()]), self.beta)[0]

    def observe(self, token: int) -> None:
        self.base.observe(int(token))
        if self._history:  # the previous token's position is now an "earlier occurrence"
            self._last_pos[self._history[-1]] = len(self._history) - 1
        self._history.append(int(token))

    def stream_logprobs(self, tokens) -> np.ndarray:
        tokens = np.asarray(tokens, dtype=np.int64)
        base = copy.deepcopy(self._fresh_base)
        rows = base.stream_logprobs(tokens) if hasattr(base, "stream_logprobs") else run_stream(base, tokens)
        return tilt_logprobs(rows, copy_hints(tokens), self.beta)


def make_tilted_ngram(vocab_size: int, beta: float = 1.5) -> TiltPredictor:
    from reference_impl.ngram import NGramBackoff

    return TiltPredictor(NGramBackoff(vocab_size, order=3), beta=beta)
