"""NEGATIVE CONTROLS — deliberately invalid scorers. Never use these to score anything.

Each reproduces, in miniature, one pattern that got Parameter Golf records rejected under issue #1017, so
the conformance harness can be shown to flag it with the right condition and a reviewer can point a
submitter at a runnable counter-example:

  hashed_target_key_scorer   C2  #779 family: (context, target) hashed into one table, looked up only at
                                 the gold token; over the whole vocabulary the "distribution" sums to far
                                 more than 1.
  TargetGatedMixture         C1  #1785 / #1967: the mixture weight at t is chosen from a property of x_t.
  UpdateBeforeScoreNGram     C3  vectorised path with inclusive prefix counts: position t is scored with
                                 counts that already contain x_t (its streaming path is correct, which is
                                 exactly the trace the harness compares against).
  update_before_score_scorer C3  the same bug in gold-only form (update the cache, then score).
  two_pass_min_scorer        C4  #846 family / #573: pass 1 builds the cache, pass 2 rescores with the
                                 full cache, and the better of the two passes is kept.
"""

from __future__ import annotations

import math

import numpy as np

from reference_impl.ngram import NGramBackoff

_PRIME_CTX = 1_000_003
_PRIME_TGT = 2_654_435_761


def hashed_target_key_scorer(vocab_size: int, buckets: int = 64, order: int = 3, alpha: float = 0.5):
    """C2 control. Score-first and strictly causal, but never normalized over the vocabulary."""
    mask = buckets - 1
    if buckets & mask:
        raise ValueError("buckets must be a power of two")

    def score(tokens: np.ndarray, trace=None) -> np.ndarray:
        toks = [int(t) for t in tokens]
        ctx_counts = np.zeros(buckets, dtype=np.int64)
        full_counts = np.zeros(buckets, dtype=np.int64)
        out = np.empty(len(toks) - 1, dtype=np.float64)
        for t in range(1, len(toks)):
            h = 0
            for j in range(1, order):
                h = (h * _PRIME_CTX + (toks[t - j] + 1 if t - j >= 0 else 0)) & 0xFFFFFFFF
            ctx_key = h & mask
            full_key = (h ^ (toks[t] * _PRIME_TGT)) & mask  # the target is part of the key
            c, f = ctx_counts[ctx_key], full_counts[full_key]
            p_cache = min(f, c) / max(c, 1)
            p = (1 - alpha) / vocab_size + alpha * p_cache if c > 0 else 1.0 / vocab_size
            out[t - 1] = math.log(p) if p > 0 else -math.inf
            ctx_counts[ctx_key] += 1
            full_counts[full_key] += 1
            if trace is not None:  # score-first: the defect is normalization alone
                trace.scored(t)
                trace.consumed(t)
        return out

    return score


class TargetGatedMixture:
    """C1 control (batch-only). Each row is a proper mixture of an n-gram and the uniform distribution, but
    the mixture weight is picked by looking at how likely the n-gram finds the *realised* token."""

    def __init__(self, vocab_size: int, high: float = 0.95, low: float = 0.05, threshold: float | None = None):
        self.vocab_size = int(vocab_size)
        self.ngram = NGramBackoff(vocab_size, order=3)
        self.high, self.low = high, low
        self.threshold = 2.0 / vocab_size if threshold is None else threshold

    def stream_logprobs(self, tokens) -> np.ndarray:
        tokens = np.asarray(tokens, dtype=np.int64)
        base = self.ngram.stream_logprobs(tokens)
        gold = base[np.arange(len(tokens)), tokens]
        lam = np.where(np.exp(gold) > self.threshold, self.high, self.low)[:, None]  # reads x_t
        return np.logaddexp(np.log(lam) + base, np.log1p(-lam) - math.log(self.vocab_size))


class UpdateBeforeScoreNGram(NGramBackoff):
    """C3 control. `next_logprobs/observe` are the correct score-first n-gram; `stream_logprobs` counts the
    chunk *including* the current position (the classic inclusive-cumsum bug of vectorised caches)."""

    def stream_logprobs(self, tokens) -> np.ndarray:
        tokens = np.asarray(tokens, dtype=np.int64)
        padded = np.append(tokens, 0)  # the row after position t sees counts through t
        return super().stream_logprobs(padded)[1:]


def update_before_score_scorer(vocab_size: int, order: int = 3):
    """C3 control, gold-only form: x_t is added to the cache, then scored."""

    def score(tokens: np.ndarray, trace=None) -> np.ndarray:
        model = NGramBackoff(vocab_size, order=order, buckets=64)
        toks = [int(t) for t in tokens]
        out = np.empty(len(toks) - 1, dtype=np.float64)
        for t, tok in enumerate(toks):
            history = toks[:t]
            model.observe(tok)  # update first ...
            if trace is not None:
                trace.consumed(t)
            if t >= 1:
                out[t - 1] = math.log(model.probs_after(history)[tok])  # ... then score
                if trace is not None:
                    trace.scored(t)
        return out

    return score


def two_pass_min_scorer(vocab_size: int, order: int = 3):
    """C4 control: keep the better of a score-first pass and a rescoring pass over the full cache."""

    def score(tokens: np.ndarray, trace=None) -> np.ndarray:
        toks = [int(t) for t in tokens]
        first = NGramBackoff(vocab_size, order=order, buckets=64)
        pass1 = first.gold_logprobs(np.asarray(toks, dtype=np.int64))
        if trace is not None:  # pass 1 is score-first ...
            trace.consumed(0)
            for t in range(1, len(toks)):
                trace.scored(t)
                trace.consumed(t)
        full = NGramBackoff(vocab_size, order=order, buckets=64)
        for tok in toks:
            full.observe(tok)
        pass2 = np.array([math.log(full.probs_after(toks[:t])[tok]) for t, tok in enumerate(toks)])
        if trace is not None:  # ... pass 2 scores every position again with the full cache
            trace.scored(range(1, len(toks)))
        return np.maximum(pass1, pass2)[1:]

    return score


def make_target_gate(vocab_size: int) -> TargetGatedMixture:
    return TargetGatedMixture(vocab_size)


def make_update_before_score(vocab_size: int) -> UpdateBeforeScoreNGram:
    return UpdateBeforeScoreNGram(vocab_size, order=3, buckets=64, chunk=32)


__all__ = ["hashed_target_key_scorer", "TargetGatedMixture", "UpdateBeforeScoreNGram",
           "update_before_score_scorer", "two_pass_min_scorer", "make_target_gate", "make_update_before_score"]
