"""Token n-gram backoff: normalization over the full vocabulary and vectorised == sequential."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from reference_impl.ngram import (NGramBackoff, context_bucket, context_buckets_torch, default_buckets,
                                  sequential_gold_logprobs)
from reference_impl.predictor import gold_logprobs, run_stream


def _stream(vocab: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, n)
    if n >= 40:
        x[n // 2: n // 2 + 20] = x[:20]  # repeats so higher orders get counts
    return x


@pytest.mark.parametrize("vocab,n,buckets", [(260, 300, None), (260, 200, 1), (1024, 200, 8), (8192, 40, None)])
def test_every_row_sums_to_one_over_the_full_vocabulary(vocab, n, buckets):
    m = NGramBackoff(vocab, order=5, buckets=buckets, chunk=64)
    rows = m.stream_logprobs(_stream(vocab, n, 1))
    assert rows.shape == (n, vocab)
    assert np.abs(np.exp(rows).sum(axis=1) - 1.0).max() < 1e-12


def test_one_bucket_merges_all_contexts_but_stays_normalized():
    """The #779 failure mode was collisions inflating mass; a full-vocab row per bucket cannot."""
    m = NGramBackoff(16, order=3, buckets=1)
    x = _stream(16, 120, 2)
    rows = run_stream(m, x)
    assert np.abs(np.exp(rows).sum(axis=1) - 1.0).max() < 1e-12


def test_first_position_is_uniform_and_counts_enter_only_after_scoring():
    m = NGramBackoff(10, order=2, alpha=1.0, beta=0.0)
    assert np.allclose(np.exp(m.next_logprobs()), 0.1)
    m.observe(3)
    p = np.exp(m.next_logprobs())
    # order 1 (Dirichlet α=1 over uniform): (1 + 0.1)/(1 + 1) for token 3, 0.05 for the rest;
    # order 2 context (3) unseen -> backs off unchanged
    assert p[3] == pytest.approx(0.55)
    assert p[0] == pytest.approx(0.05)


def test_witten_bell_recursion_matches_hand_computation():
    m = NGramBackoff(4, order=1, alpha=0.5, beta=1.0)
    for tok in [0, 0, 1]:
        m.observe(tok)
    lam = 0.5 + 1.0 * 2  # two distinct types seen
    expected = (np.array([2, 1, 0, 0]) + lam * 0.25) / (3 + lam)
    assert np.allclose(np.exp(m.next_logprobs()), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("n", [0, 1, 2, 7])
def test_short_streams(n):
    m = NGramBackoff(9, order=5, buckets=4)
    x = _stream(9, n, 3)
    assert m.stream_logprobs(x).shape == (n, 9)
    assert np.array_equal(m.gold_logprobs(x), sequential_gold_logprobs(x, 9, 5, 4))


def test_hash_paths_agree():
    x = torch.as_tensor(_stream(300, 50, 4))
    vec = context_buckets_torch(x, 5, 64)
    hist = x.tolist()
    for k in range(1, 6):
        assert vec[k - 1].tolist() == [context_bucket(hist[:t], k, 64) for t in range(50)]


@pytest.mark.parametrize("kwargs", [dict(buckets=3), dict(order=0), dict(alpha=0.0), dict(beta=-1.0)])
def test_bad_configuration_is_rejected(kwargs):
    with pytest.raises(ValueError):
        NGramBackoff(10, **kwargs)


def test_out_of_vocabulary_tokens_are_rejected():
    m = NGramBackoff(10)
    with pytest.raises(ValueError):
        m.observe(10)
    with pytest.raises(ValueError):
        m.gold_logprobs(np.array([1, 11]))


def test_default_buckets_bound_the_table():
    assert default_buckets(1024) == 4096
    assert default_buckets(8192) == 512
    assert default_buckets(260) * 260 <= 1 << 22


@settings(max_examples=40, deadline=None)
@given(vocab=st.integers(2, 40), order=st.integers(1, 5), log_buckets=st.integers(0, 5),
       alpha=st.floats(0.05, 3.0), beta=st.floats(0.0, 2.0), chunk=st.integers(1, 40),
       data=st.data())
def test_vectorised_paths_equal_the_sequential_loop(vocab, order, log_buckets, alpha, beta, chunk, data):
    tokens = np.array(data.draw(st.lists(st.integers(0, vocab - 1), min_size=0, max_size=120)), dtype=np.int64)
    buckets = 1 << log_buckets
    ref = sequential_gold_logprobs(tokens, vocab, order, buckets, alpha, beta)
    m = NGramBackoff(vocab, order=order, buckets=buckets, alpha=alpha, beta=beta, chunk=chunk)
    rows = m.stream_logprobs(tokens)
    rows_torch = m.stream_logprobs(tokens, backend="torch")
    stream_rows = run_stream(NGramBackoff(vocab, order=order, buckets=buckets, alpha=alpha, beta=beta), tokens)
    assert np.abs(gold_logprobs(rows, tokens) - ref).max(initial=0.0) <= 1e-9
    assert np.abs(rows - stream_rows).max(initial=0.0) <= 1e-9
    assert np.abs(rows_torch - stream_rows).max(initial=0.0) <= 1e-9
    assert np.abs(m.gold_logprobs(tokens, backend="numpy") - ref).max(initial=0.0) <= 1e-9
    assert np.abs(m.gold_logprobs(tokens, backend="torch") - ref).max(initial=0.0) <= 1e-9
    assert np.abs(np.exp(rows).sum(axis=1) - 1.0).max(initial=0.0) <= 1e-9


def test_large_stream_fast_path_uses_threads_and_matches():
    x = _stream(1024, 70_000, 5)
    m = NGramBackoff(1024, order=5)
    fast = m.gold_logprobs(x)
    assert np.abs(fast - m.gold_logprobs(x, backend="torch")).max() <= 1e-9
    assert np.abs(fast[:3000] - sequential_gold_logprobs(x[:3000], 1024, 5)).max() <= 1e-9
    assert math.isclose(float(fast[0]), -math.log(1024))


def test_score_is_the_gold_scorer_shape():
    x = _stream(50, 30, 6)
    m = NGramBackoff(50, order=3)
    assert np.array_equal(m.score(x), m.gold_logprobs(x)[1:])
