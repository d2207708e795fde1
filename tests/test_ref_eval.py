"""Evaluation loops: coverage (every target exactly once), equivalences and score-before-train TTT."""

import numpy as np
import pytest
import torch

from reference_impl.evaluate import (document_windows, eval_documents, eval_nonoverlap, eval_sliding,
                                     find_documents, sliding_windows)
from reference_impl.model import GPT, GPTConfig
from reference_impl.ttt import eval_ttt_score_first

V = 64


def _random_model(seed=0):
    torch.manual_seed(seed)
    m = GPT(GPTConfig(vocab_size=V, num_layers=2, model_dim=32, num_heads=4, num_kv_heads=2))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3)
    return m


def _luts():
    base = np.array([0, 0, 0, 0] + [1 + i % 3 for i in range(V - 4)], dtype=np.int16)
    space = np.array([i % 2 == 0 and i >= 4 for i in range(V)])
    boundary = np.array([i < 4 for i in range(V)])
    return base, space, boundary


def _val(n, seed=1):
    rng = np.random.default_rng(seed)
    v = rng.integers(4, V, size=n)
    v[0] = 1
    v[rng.choice(np.arange(5, n), size=n // 20, replace=False)] = 1  # BOS-delimited documents
    return v


def _coverage(windows, total):
    counts = np.zeros(total, dtype=int)
    for s, n, f in windows:
        counts[s + f : s + n] += 1
    return counts


@pytest.mark.parametrize("total, L, S", [(64, 16, 4), (1000, 128, 64), (1000, 128, 128), (1003, 128, 48),
                                         (17, 16, 1), (128, 128, 64)])
def test_v3_sliding_scores_every_target_exactly_once(total, L, S):
    windows = sliding_windows(total, L, S)
    assert (_coverage(windows, total) == 1).all()
    assert len(windows) == 1 + max(0, -(-(total - L) // S))  # ceil((total-(L-S))/S) for total >= L
    for s, n, f in windows:
        assert n <= L and (s == 0 or f == L - S)


def test_v3_window_count_matches_challenge_log():
    # 2026-04-09 A2 logs total_windows=633409 for 40,540,160 targets, L=2048, S=64
    total, L, S = 40_540_160, 2048, 64
    assert -(-(total - (L - S)) // S) == 633409
    assert len(range(0, total, S)) - sum(1 for ws in range(0, total, S) if ws + L - S >= total) == 633409


def test_sliding_with_stride_equal_window_equals_nonoverlap():
    m, luts = _random_model(), _luts()
    val = _val(32 * 8 + 1)
    a = eval_nonoverlap(m, val, 32, luts, return_nll=True)
    b = eval_sliding(m, val, 32, 32, luts, return_nll=True)
    assert a.tokens == b.tokens == 256 and a.bytes == b.bytes
    assert b.loss_sum == pytest.approx(a.loss_sum, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(a.nll, b.nll, rtol=1e-6, atol=1e-6)


def test_sliding_counts_bytes_and_tokens_of_all_targets():
    m, luts = _random_model(), _luts()
    val = _val(32 * 5 + 1)
    r = eval_sliding(m, val, 32, 8, luts, return_nll=True)
    base, space, boundary = luts
    expect = int((base[val[1:]] + (space[val[1:]] & ~boundary[val[:-1]])).sum())
    assert r.tokens == 160 and r.bytes == expect and not np.isnan(r.nll).any()
    assert r.loss_sum == pytest.approx(float(r.nll.sum()))
    # the first window is shared with non-overlapping eval; later targets get more context
    a = eval_nonoverlap(m, val, 32, luts, return_nll=True)
    np.testing.assert_allclose(r.nll[:32], a.nll[:32], rtol=1e-6, atol=1e-6)
    assert not np.allclose(r.nll[32:], a.nll[32:])


def test_documents_cover_each_target_once_without_crossing_boundaries():
    val = _val(32 * 6 + 1, seed=4)
    docs = find_documents(val, 1)
    assert docs[0][0] == 0 and sum(n - 1 for _, n in docs) == val.size - 1
    windows = document_windows(val, 1, 16, 8)
    assert (_coverage(windows, val.size - 1) == 1).all()
    starts = {s for s, _ in docs}
    for s, n, f in windows:
        assert all(val[p] != 1 or p == s for p in range(s, s + n))  # no BOS inside the context
    r = eval_documents(_random_model(), val, 1, 16, _luts(), chunk=8, return_nll=True)
    assert r.tokens == val.size - 1 and not np.isnan(r.nll).any()
    assert len(starts) == len(docs)


def test_ttt_scores_each_chunk_before_training_on_it():
    m, luts = _random_model(), _luts()
    val = _val(32 * 8 + 1)
    before = [p.detach().clone() for p in m.parameters()]
    trace = []
    r = eval_ttt_score_first(m, val, 32, 8, luts, chunk_tokens=64, lr=0.05, trace=trace, return_nll=True)
    assert r.tokens == 256 and not np.isnan(r.nll).any()
    scored_at, trained_at = {}, {}
    for step, (kind, c, a, e) in enumerate(trace):
        for p in range(a, e):
            (scored_at if kind == "score" else trained_at).setdefault(p, step)
    assert sorted(scored_at) == list(range(256))
    assert trained_at and all(scored_at[p] < trained_at[p] for p in trained_at)
    assert [k for k, *_ in trace] == ["score", "train"] * 3 + ["score"]  # the last chunk is never trained on
    assert all(torch.equal(p, q) for p, q in zip(before, m.parameters()))  # caller's model untouched
    plain = eval_sliding(m, val, 32, 8, luts)
    assert r.loss_sum != pytest.approx(plain.loss_sum)
    # the first chunk is scored before any update, so it matches plain sliding eval exactly
    first = eval_sliding(m, val, 32, 8, luts, return_nll=True).nll[:64]
    np.testing.assert_allclose(r.nll[:64], first, rtol=1e-6)


def test_ttt_with_zero_learning_rate_equals_sliding():
    m, luts = _random_model(), _luts()
    val = _val(32 * 4 + 1)
    a = eval_ttt_score_first(m, val, 32, 16, luts, chunk_tokens=40, lr=0.0)
    b = eval_sliding(m, val, 32, 16, luts)
    assert (a.tokens, a.bytes) == (b.tokens, b.bytes) and a.loss_sum == pytest.approx(b.loss_sum, rel=1e-9)
