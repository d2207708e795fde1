"""One-token tilt: closed-form normalizer, prefix-only hints, batch == streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference_impl.mixing import make_toy_model
from reference_impl.ngram import NGramBackoff
from reference_impl.predictor import run_stream
from reference_impl.tilt import TiltPredictor, copy_hints, tilt_logprobs


def _naive_hints(x):
    out = []
    for t in range(len(x)):
        h = -1
        if t >= 1:
            for s in range(t - 2, -1, -1):
                if x[s] == x[t - 1]:
                    h = x[s + 1]
                    break
        out.append(h)
    return np.array(out)


def test_copy_hint_is_successor_of_previous_occurrence():
    x = np.array([5, 7, 1, 5, 2, 5, 9])
    # t=4: x_3=5 last seen at 0 -> hint x_1=7; t=6: x_5=5 last seen at 3 -> hint x_4=2
    assert copy_hints(x).tolist() == [-1, -1, -1, -1, 7, -1, 2]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=60))
def test_vectorised_hints_equal_naive(tokens):
    x = np.array(tokens, dtype=np.int64)
    assert copy_hints(x).tolist() == _naive_hints(tokens).tolist()


def test_hint_never_depends_on_the_scored_token_or_later():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 80)
    h = copy_hints(x)
    for t in range(80):
        y = x.copy()
        y[t:] = (y[t:] + 1) % 5
        assert copy_hints(y)[t] == h[t]


def test_closed_form_normalizer_equals_explicit_renormalization():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 11))
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    hints = np.array([3, -1, 0, 10])
    beta = 1.7
    out = tilt_logprobs(logp, hints, beta)
    for r in range(4):
        w = np.exp(logp[r]).copy()
        if hints[r] >= 0:
            w[hints[r]] *= math.exp(beta)
            z = 1 + math.exp(logp[r, hints[r]]) * (math.exp(beta) - 1)
            assert w.sum() == pytest.approx(z, rel=1e-13)
        assert np.allclose(np.exp(out[r]), w / w.sum(), rtol=0, atol=1e-15)


@pytest.mark.parametrize("vocab,n", [(260, 200), (8192, 30)])
def test_tilted_rows_sum_to_one(vocab, n):
    rng = np.random.default_rng(2)
    x = rng.integers(0, vocab, n)
    x[n // 2:] = x[: n - n // 2]
    tp = TiltPredictor(NGramBackoff(vocab, order=3), beta=2.0)
    rows = tp.stream_logprobs(x)
    assert np.abs(np.exp(rows).sum(axis=1) - 1).max() < 1e-12


@pytest.mark.parametrize("base", ["ngram", "toy"])
def test_batch_equals_streaming(base):
    vocab = 40
    rng = np.random.default_rng(3)
    x = rng.integers(0, vocab, 90)
    x[45:] = x[:45]
    make = (lambda: NGramBackoff(vocab, order=3)) if base == "ngram" else (lambda: make_toy_model(vocab))
    batch = TiltPredictor(make(), beta=1.2).stream_logprobs(x)
    stream = run_stream(TiltPredictor(make(), beta=1.2), x)
    assert np.abs(batch - stream).max() <= 1e-9


def test_tilt_raises_hinted_token_by_exactly_beta_minus_log_z():
    base = NGramBackoff(6, order=2)
    tp = TiltPredictor(NGramBackoff(6, order=2), beta=1.0)
    for tok in [1, 2, 1]:
        base.observe(tok)
        tp.observe(tok)
    p = np.exp(base.next_logprobs())
    q = tp.next_logprobs()
    z = 1 + p[2] * (math.e - 1)  # hint: 2 followed the earlier 1
    assert q[2] == pytest.approx(math.log(p[2]) + 1.0 - math.log(z), abs=1e-14)
    assert q[0] == pytest.approx(math.log(p[0]) - math.log(z), abs=1e-14)


def test_non_finite_beta_rejected():
    with pytest.raises(ValueError):
        TiltPredictor(NGramBackoff(5), beta=float("inf"))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=50), st.floats(-3.0, 3.0))
def test_batch_equals_streaming_property(tokens, beta):
    x = np.array(tokens, dtype=np.int64)
    batch = TiltPredictor(NGramBackoff(10, order=2), beta=beta).stream_logprobs(x)
    stream = run_stream(TiltPredictor(NGramBackoff(10, order=2), beta=beta), x)
    assert batch.shape == (len(tokens), 10)
    assert np.abs(batch - stream).max(initial=0.0) <= 1e-9
    assert np.abs(np.exp(batch).sum(axis=1) - 1).max(initial=0.0) <= 1e-12
