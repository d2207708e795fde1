"""Model shape/causality, quantise -> compress -> decompress round trip, and the neural predictor."""

import numpy as np
import pytest
import torch

from reference_impl.model import GPT, GPTConfig, count_parameters
from reference_impl.neural import NeuralPredictor, window_start
from reference_impl.predictor import BatchPredictor, StreamingPredictor, run_stream
from reference_impl.quantize import (COMPRESSORS, dequantize_state_dict, deserialize_artifact, quantize_state_dict,
                                     quantize_tensor_per_row, serialize_artifact)


def _model(seed=0, vocab=64, d=64, layers=2):
    torch.manual_seed(seed)
    m = GPT(GPTConfig(vocab_size=vocab, num_layers=layers, model_dim=d, num_heads=4, num_kv_heads=2))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return m.eval()


def test_forward_logits_is_causal_and_soft_capped():
    m = _model()
    x = torch.randint(4, 64, (2, 24))
    y = x.clone()
    y[:, 12:] = torch.randint(4, 64, (2, 12))
    with torch.no_grad():
        a, b = m.forward_logits(x), m.forward_logits(y)
    assert a.shape == (2, 24, 64) and a.dtype == torch.float32
    assert torch.allclose(a[:, :12], b[:, :12], atol=1e-5) and not torch.allclose(a[:, 12:], b[:, 12:])
    assert a.abs().max() < 30.0
    loss = m(x[:, :-1], x[:, 1:])
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_baseline_size_builds():
    m = GPT(GPTConfig())  # 9 x 512, vocab 1024, 8 heads / 4 kv heads, MLP x2, tied embeddings
    assert m.blocks[0].attn.c_k.weight.shape == (256, 512)  # grouped-query: 4 kv heads of dim 64
    assert count_parameters(m) == 17_059_912


@pytest.mark.parametrize("scheme, levels", [("int8", 127), ("int6", 31)])
@pytest.mark.parametrize("method", COMPRESSORS)
def test_quantise_compress_round_trip(scheme, levels, method):
    m = _model(d=64)
    sd = m.state_dict()
    obj = quantize_state_dict(sd, scheme, keep_float_max_numel=4096)
    assert obj["quantized"], "the MLP matrices (64x128) must be quantised"
    blob = serialize_artifact(obj, method)
    back = deserialize_artifact(blob, method)
    restored = dequantize_state_dict(back)
    assert set(restored) == set(sd)
    for name, t in sd.items():
        r = restored[name]
        assert r.shape == t.shape and r.dtype == t.dtype
        if name in obj["quantized"]:
            q = back["quantized"][name]
            assert q.dtype == torch.int8 and int(q.abs().max()) <= levels
            step = back["scales"][name].float()[:, None]
            assert ((r - t).abs() <= step / 2 + 1e-6).float().mean() > 0.999
        elif "q_gain" in name or "scale" in name or "resid_mix" in name or "skip_weights" in name:
            assert torch.equal(r, t)  # control tensors stay fp32
        else:
            assert torch.allclose(r, t, atol=2e-3, rtol=2e-3)  # fp16 passthrough
    assert serialize_artifact(obj, method) == blob  # deterministic bytes


def test_per_row_quantisation_clips_outliers():
    w = torch.ones(3, 1000)
    w[0, 0] = 1e4
    q, scale = quantize_tensor_per_row(w, 127)
    assert q.dtype == torch.int8 and scale.dtype == torch.float16
    assert float(scale[0]) < 1e4 / 127  # the outlier is clipped at the percentile, not the max


def test_neural_predictor_stream_equals_streaming_protocol():
    m = _model(vocab=48, d=32)
    pred = NeuralPredictor(m, seq_len=8, stride=4)
    assert isinstance(pred, StreamingPredictor) and isinstance(pred, BatchPredictor)
    tokens = np.random.default_rng(0).integers(4, 48, size=21)
    batch = pred.stream_logprobs(tokens)
    pred.reset()
    streamed = run_stream(pred, tokens)
    assert batch.shape == (21, 48) and batch.dtype == np.float64
    np.testing.assert_allclose(np.exp(batch).sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(batch, streamed, atol=1e-5)
    # causal: changing tokens[t:] leaves rows 0..t unchanged
    other = tokens.copy()
    other[10:] = 5
    np.testing.assert_allclose(pred.stream_logprobs(other)[:11], batch[:11], atol=1e-6)


def test_window_start_matches_v3_schedule():
    L, S = 8, 4
    assert [window_start(t, L, S) for t in range(16)] == [0] * 8 + [4] * 4 + [8] * 4
