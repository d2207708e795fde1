"""Mixtures with prefix-only weights: normalized, batch == streaming, weight updates from scored tokens."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference_impl.mixing import (BayesMixture, LinearMixture, LogLinearMixture, PrefixModelPredictor,
                                   make_toy_model, toy_model_logits)
from reference_impl.ngram import NGramBackoff
from reference_impl.predictor import run_stream


def _components(vocab: int):
    return [NGramBackoff(vocab, order=3), make_toy_model(vocab)]


MIXERS = {
    "linear-fixed": lambda v: LinearMixture(_components(v), weights=[0.3, 0.7]),
    "linear-entropy": lambda v: LinearMixture(_components(v), gate="entropy"),
    "linear-confidence": lambda v: LinearMixture(_components(v), gate="confidence", temperature=0.5),
    "loglinear": lambda v: LogLinearMixture(_components(v), weights=[0.6, 0.7]),
    "bayes": lambda v: BayesMixture(_components(v), share=0.0),
    "fixed-share": lambda v: BayesMixture(_components(v), share=0.05),
}


def _stream(vocab, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, n)
    x[n // 2:] = x[: n - n // 2]
    return x


@pytest.mark.parametrize("name", sorted(MIXERS))
@pytest.mark.parametrize("vocab,n", [(260, 80), (8192, 12)])
def test_rows_sum_to_one(name, vocab, n):
    rows = MIXERS[name](vocab).stream_logprobs(_stream(vocab, n, 0))
    assert rows.shape == (n, vocab)
    assert np.abs(np.exp(rows).sum(axis=1) - 1).max() < 1e-12


@pytest.mark.parametrize("name", sorted(MIXERS))
def test_batch_equals_streaming(name):
    x = _stream(30, 70, 1)
    assert np.abs(MIXERS[name](30).stream_logprobs(x) - run_stream(MIXERS[name](30), x)).max() <= 1e-9


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 11), min_size=1, max_size=40), st.floats(0.0, 0.5))
def test_fixed_share_batch_equals_streaming_property(tokens, share):
    x = np.array(tokens, dtype=np.int64)
    mk = lambda: BayesMixture([NGramBackoff(12, order=2), make_toy_model(12)], share=share)  # noqa: E731
    assert np.abs(mk().stream_logprobs(x) - run_stream(mk(), x)).max() <= 1e-9


def test_fixed_weight_linear_mixture_is_the_convex_combination():
    a, b = NGramBackoff(8, order=2), make_toy_model(8)
    mix = LinearMixture([NGramBackoff(8, order=2), make_toy_model(8)], weights=[1, 3])
    expected = 0.25 * np.exp(a.next_logprobs()) + 0.75 * np.exp(b.next_logprobs())
    assert np.allclose(np.exp(mix.next_logprobs()), expected, rtol=0, atol=1e-15)


def test_bayes_weights_are_the_posterior_of_scored_tokens():
    comps = [NGramBackoff(8, order=2), make_toy_model(8)]
    twins = [NGramBackoff(8, order=2), make_toy_model(8)]
    mix = BayesMixture(comps, share=0.0)
    logw = np.log([0.5, 0.5])
    for tok in [1, 4, 1, 4, 1]:
        rows = np.stack([c.next_logprobs() for c in twins])
        expected = np.log(np.exp(logw[:, None] + rows).sum(axis=0))
        assert np.allclose(mix.next_logprobs(), expected, atol=1e-12)
        mix.observe(tok)
        logw = logw + rows[:, tok]
        logw -= np.log(np.exp(logw).sum())
        for c in twins:
            c.observe(tok)


def test_entropy_gate_prefers_the_sharper_component():
    sharp = PrefixModelPredictor(lambda p: np.array([10.0, 0, 0, 0]), 4)
    flat = PrefixModelPredictor(lambda p: np.zeros(4), 4)
    mix = LinearMixture([sharp, flat], gate="entropy")
    p = np.exp(mix.next_logprobs())
    h_sharp = -(np.exp(sharp.next_logprobs()) * sharp.next_logprobs()).sum()
    w_sharp = 1 / (1 + math.exp(h_sharp - math.log(4)))
    assert p[0] == pytest.approx(w_sharp * np.exp(sharp.next_logprobs())[0] + (1 - w_sharp) * 0.25, abs=1e-12)


def test_invalid_mixtures_rejected():
    with pytest.raises(ValueError):
        LinearMixture([NGramBackoff(5), NGramBackoff(6)])
    with pytest.raises(ValueError):
        LinearMixture([NGramBackoff(5)], gate="oracle")
    with pytest.raises(ValueError):
        BayesMixture([NGramBackoff(5)], share=1.0)
    with pytest.raises(ValueError):
        LogLinearMixture([NGramBackoff(5), NGramBackoff(5)], weights=[0, 0])


def test_prefix_model_rejects_wrong_logit_shape():
    m = PrefixModelPredictor(lambda p: np.zeros(3), 4)
    with pytest.raises(ValueError):
        m.next_logprobs()


def test_toy_model_is_deterministic():
    f, g = toy_model_logits(50, seed=3), toy_model_logits(50, seed=3)
    assert np.array_equal(f(np.array([4])), g(np.array([4])))
