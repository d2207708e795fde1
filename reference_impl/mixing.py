"""Mixtures of predictors whose weights depend only on the prefix, so each mixture is itself a predictor
that passes C1-C4.

Why: the rejected mixers chose their weight from the realised token (#1785's `cf = P(observed)` gate) or
mixed a gold-only probability with a full distribution (#779). A mixture is legal when, at every t, it is a
fixed convex (linear) or geometric (log-linear, renormalised) combination of full distributions, with weights
computed from tokens[:t] and the components' own distributions at t. Provided here:

  LinearMixture     p = Σ_i w_i p_i,  w from fixed weights, or gated by each component's entropy or
                    confidence (max probability) at t — both functions of the prefix only;
  LogLinearMixture  log p = Σ_i w_i log p_i − log Σ_v exp(Σ_i w_i log p_i(v));
  BayesMixture      Bayesian / fixed-share weights: after x_t is scored, w_i ← w_i p_i(x_t), normalised,
                    then w ← (1−α) w + α/N (Herbster–Warmuth fixed share; α = 0 is the Bayes posterior).
  PrefixModelPredictor  any callable prefix → next-token logits (a neural model) as a predictor.

Batch paths (`stream_logprobs`) take the components' [len, V] matrices and combine them with array ops;
they equal the streaming protocol (tested).
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Sequence

import numpy as np

from reference_impl.predictor import run_stream


def _log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def _entropy(logp: np.ndarray) -> np.ndarray:
    p = np.exp(logp)
    return -np.sum(np.where(p > 0, p * logp, 0.0), axis=-1)


class _Components:
    """Holds the live components (streaming) and pristine copies (for stateless batch calls)."""

    def __init__(self, components: Sequence):
        if len(components) < 1:
            raise ValueError("need at least one component")
        vocab = {int(c.vocab_size) for c in components}
        if len(vocab) != 1:
            raise ValueError(f"components disagree on vocab_size: {sorted(vocab)}")
        self.vocab_size = vocab.pop()
        self.live = list(components)
        self._fresh = copy.deepcopy(list(components))

    def next_rows(self) -> np.ndarray:
        return np.stack([np.asarray(c.next_logprobs(), dtype=np.float64) for c in self.live])  # [N, V]

    def observe(self, token: int) -> None:
        for c in self.live:
            c.observe(int(token))

    def batch_rows(self, tokens: np.ndarray) -> np.ndarray:
        out = []
        for c in copy.deepcopy(self._fresh):
            out.append(c.stream_logprobs(tokens) if hasattr(c, "stream_logprobs") else run_stream(c, tokens))
        return np.stack([np.asarray(r, dtype=np.float64) for r in out], axis=1)  # [len, N, V]


def _gate_logweights(rows: np.ndarray, gate: str, base: np.ndarray, temperature: float) -> np.ndarray:
    """Log mixture weights [..., N] from component rows [..., N, V] (prefix-only quantities)."""
    logw = np.broadcast_to(np.log(base), rows.shape[:-1]).astype(np.float64)
    if gate == "entropy":  # trust the sharper component more
        logw = logw - _entropy(rows) / temperature
    elif gate == "confidence":
        logw = logw + np.max(rows, axis=-1) / temperature
    elif gate != "fixed":
        raise ValueError(f"unknown gate {gate!r}")
    return _log_softmax(logw, axis=-1)


class LinearMixture:
    def __init__(self, components: Sequence, weights: Sequence[float] | None = None, gate: str = "fixed",
                 temperature: float = 1.0):
        self._c = _Components(components)
        self.vocab_size = self._c.vocab_size
        n = len(self._c.live)
        w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (n,) or (w <= 0).any():
            raise ValueError("weights must be positive, one per component")
        self.weights = w / w.sum()
        self.gate = gate
        self.temperature = float(temperature)
        _gate_logweights(np.zeros((n, 2)), gate, self.weights, self.temperature)  # validates gate

    def _mix(self, rows: np.ndarray) -> np.ndarray:
        logw = _gate_logweights(rows, self.gate, self.weights, self.temperature)
        z = logw[..., None] + rows
        m = np.max(z, axis=-2, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        return (m + np.log(np.sum(np.exp(z - m), axis=-2, keepdims=True)))[..., 0, :]

    def next_logprobs(self) -> np.ndarray:
        return self._mix(self._c.next_rows())

    def observe(self, token: int) -> None:
        self._c.observe(token)

    def stream_logprobs(self, tokens) -> np.ndarray:
        return self._mix(self._c.batch_rows(np.asarray(tokens, dtype=np.int64)))


class LogLinearMixture:
    def __init__(self, components: Sequence, weights: Sequence[float] | None = None):
        self._c = _Components(components)
        self.vocab_size = self._c.vocab_size
        n = len(self._c.live)
        w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (n,) or (w < 0).any() or not w.sum() > 0:
            raise ValueError("weights must be non-negative, one per component, not all zero")
        self.weights = w

    def _mix(self, rows: np.ndarray) -> np.ndarray:
        z = np.einsum("...nv,n->...v", np.where(np.isfinite(rows), rows, -1e300), self.weights)
        return _log_softmax(z, axis=-1)

    def next_logprobs(self) -> np.ndarray:
        return self._mix(self._c.next_rows())

    def observe(self, token: int) -> None:
        self._c.observe(token)

    def stream_logprobs(self, tokens) -> np.ndarray:
        return self._mix(self._c.batch_rows(np.asarray(tokens, dtype=np.int64)))


class BayesMixture:
    """Linear mixture whose weights are updated from scored tokens only (fixed share when share > 0)."""

    def __init__(self, components: Sequence, share: float = 0.01):
        if not 0.0 <= share < 1.0:
            raise ValueError("share must be in [0, 1)")
        self._c = _Components(components)
        self.vocab_size = self._c.vocab_size
        self.share = float(share)
        self._logw = np.full(len(self._c.live), -math.log(len(self._c.live)))
        self._last_rows: np.ndarray | None = None

    @staticmethod
    def _combine(logw: np.ndarray, rows: np.ndarray) -> np.ndarray:
        z = logw[:, None] + rows
        m = np.max(z, axis=0)
        m = np.where(np.isfinite(m), m, 0.0)
        return m + np.log(np.sum(np.exp(z - m), axis=0))

    def _update(self, logw: np.ndarray, rows: np.ndarray, token: int) -> np.ndarray:
        logw = _log_softmax(logw + rows[:, token])
        if self.share > 0:
            n = logw.shape[0]
            logw = np.logaddexp(math.log1p(-self.share) + logw, math.log(self.share) - math.log(n))
        return logw

    def next_logprobs(self) -> np.ndarray:
        self._last_rows = self._c.next_rows()
        return self._combine(self._logw, self._last_rows)

    def observe(self, token: int) -> None:
        rows = self._last_rows if self._last_rows is not None else self._c.next_rows()
        self._logw = self._update(self._logw, rows, int(token))  # uses p_i(x_t) only after x_t was scored
        self._last_rows = None
        self._c.observe(token)

    def stream_logprobs(self, tokens) -> np.ndarray:
        tokens = np.asarray(tokens, dtype=np.int64)
        rows = self._c.batch_rows(tokens)  # [len, N, V]
        out = np.empty((len(tokens), self.vocab_size), dtype=np.float64)
        logw = np.full(rows.shape[1], -math.log(rows.shape[1]))
        for t in range(len(tokens)):  # O(N) per step; the [V]-wide work is the combine below
            out[t] = self._combine(logw, rows[t])
            logw = self._update(logw, rows[t], int(tokens[t]))
        return out


class PrefixModelPredictor:
    """Any callable prefix (int64 array) -> next-token logits [V], e.g. a neural LM, as a predictor."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], vocab_size: int):
        self.fn = fn
        self.vocab_size = int(vocab_size)
        self._history: list[int] = []

    def next_logprobs(self) -> np.ndarray:
        logits = np.asarray(self.fn(np.asarray(self._history, dtype=np.int64)), dtype=np.float64)
        if logits.shape != (self.vocab_size,):
            raise ValueError(f"model returned logits of shape {logits.shape}, expected ({self.vocab_size},)")
        return _log_softmax(logits)

    def observe(self, token: int) -> None:
        self._history.append(int(token))

    def stream_logprobs(self, tokens) -> np.ndarray:
        tokens = np.asarray(tokens, dtype=np.int64)
        return np.stack([_log_softmax(np.asarray(self.fn(tokens[:t]), dtype=np.float64))
                         for t in range(len(tokens))]) if len(tokens) else np.zeros((0, self.vocab_size))


def toy_model_logits(vocab_size: int, seed: int = 0, rank: int = 8, scale: float = 3.0):
    """A deterministic stand-in for a neural model: low-rank bigram logits of the last token."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((vocab_size + 1, rank)) / math.sqrt(rank)
    out = rng.standard_normal((rank, vocab_size)) * scale

    def logits(prefix: np.ndarray) -> np.ndarray:
        last = int(prefix[-1]) if len(prefix) else vocab_size
        return emb[last] @ out

    return logits


def make_toy_model(vocab_size: int) -> PrefixModelPredictor:
    return PrefixModelPredictor(toy_model_logits(vocab_size), vocab_size)


def _ngram(vocab_size: int):
    from reference_impl.ngram import NGramBackoff

    return NGramBackoff(vocab_size, order=4)


def make_linear_entropy(vocab_size: int) -> LinearMixture:
    return LinearMixture([_ngram(vocab_size), make_toy_model(vocab_size)], gate="entropy")


def make_linear_confidence(vocab_size: int) -> LinearMixture:
    return LinearMixture([_ngram(vocab_size), make_toy_model(vocab_size)], gate="confidence")


def make_loglinear(vocab_size: int) -> LogLinearMixture:
    return LogLinearMixture([_ngram(vocab_size), make_toy_model(vocab_size)], weights=[0.6, 0.7])


def make_fixed_share(vocab_size: int) -> BayesMixture:
    return BayesMixture([_ngram(vocab_size), make_toy_model(vocab_size)], share=0.02)
