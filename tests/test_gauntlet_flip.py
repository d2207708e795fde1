"""The flip test's pieces, in process (no sandbox): the memory rewrite run B does after the fork, the
re-drawn stream, the first differing call, the rules' attribution to C1 / C3 and the e-value's
conditions, and the `*_EPOCHS` shrink. The whole fork runs in tests/test_gauntlet_capture.py (slow)."""

from __future__ import annotations

import base64
import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest

SHIMS = Path(__file__).parent.parent / "auditor" / "sandbox" / "shims"
V, N, K = 1024, 4096, 2049


def _streams():
    rng = np.random.default_rng(1)
    a = rng.integers(4, V, size=N + 1).astype(np.int64)
    b = a.copy()
    b[K:] = rng.integers(4, V, size=N + 1 - K)
    return a, b


@pytest.fixture
def flip(monkeypatch):
    fake = types.ModuleType("_gauntlet_hooks")
    fake.emit, fake.STATE = (lambda rec: None), None
    monkeypatch.setitem(sys.modules, "_gauntlet_hooks", fake)
    monkeypatch.syspath_prepend(str(SHIMS))
    mod = importlib.import_module("gauntlet_flip")
    a, b = _streams()
    raw = a.astype("<i4").tobytes()
    index = {}
    for p in range(a.size - 3):
        index.setdefault(raw[4 * p:4 * (p + 4)], p)
    a.flags.writeable = b.flags.writeable = False
    saved = dict(mod.STATE)
    mod.STATE.update(k=K, a=a, b=b, index=index)
    yield mod, a, b
    mod.STATE.clear()
    mod.STATE.update(saved)
    sys.modules.pop("gauntlet_flip", None)
    sys.modules.pop("gauntlet_capture", None)  # imported by the flip module with this test's fake hooks


def test_run_b_rewrites_every_stretch_of_the_stream_from_k_on(flip):
    import torch

    mod, a, b = flip
    val = torch.from_numpy(a.astype(np.uint16)).clone()  # the script's validation tensor (uint16, as loaded)
    view = val[1:]  # a view: rewritten through its base, never twice
    batch = torch.as_tensor(a[K - 64:K + 64]).reshape(2, 64).clone()  # an in-flight batch straddling k
    early = torch.as_tensor(a[:512]).clone()  # wholly before k: nothing to rewrite
    host = a[100:3100].copy()  # a numpy copy of a stretch
    floats = torch.as_tensor(a[:512], dtype=torch.float32)  # not token ids
    grad = torch.as_tensor(a[K:K + 64], dtype=torch.float32).requires_grad_()
    counts = mod._swap_memory()
    assert torch.equal(val.to(torch.int64), torch.as_tensor(b))
    assert torch.equal(view.to(torch.int64), torch.as_tensor(b[1:]))
    assert torch.equal(batch.reshape(-1), torch.as_tensor(b[K - 64:K + 64]))
    assert torch.equal(early, torch.as_tensor(a[:512]))
    assert np.array_equal(host, b[100:3100])
    assert torch.equal(floats, torch.as_tensor(a[:512], dtype=torch.float32)) and grad.requires_grad
    assert np.array_equal(mod.STATE["a"], _streams()[0])  # its own copies stay as they were
    # val: N + 1 - K ids, the batch 64, the numpy copy 3100 - K
    assert counts == {"tensors": 2, "arrays": 1, "elements": (N + 1 - K) + 64 + (3100 - K)}


def test_redrawn_keeps_the_prefix_and_the_bos_positions():
    from auditor.sandbox.synth import SynthData, redrawn

    data = SynthData(Path("."), Path("."), Path("."), 64, [0, 1, 2, 3], 10_001, 1, 1000, 0)
    val = np.random.default_rng(0).integers(4, 64, size=10_001).astype(np.uint16)
    val[::1000] = 1
    out = redrawn(data, val, 5001)
    assert np.array_equal(out[:5001], val[:5001])
    assert np.mean(out[5001:] != val[5001:]) > 0.9
    assert np.all(out[::1000] == 1) and out.min() >= 1 and out.max() < 64
    assert np.array_equal(redrawn(data, val, 5001), out)  # deterministic


def _ev(call, losses, targets):
    lo, tg = np.asarray(losses, "<f4"), np.asarray(targets, "<i4")
    return {"event": "capture", "call": call, "prim": "cross_entropy", "first": 0, "n": lo.size, "total": lo.size,
            "loss": base64.b64encode(lo.tobytes()).decode(), "tgt": base64.b64encode(tg.tobytes()).decode()}


def test_first_differing_call_looks_only_before_k():
    from auditor.sandbox.capture import first_differing_call

    a, _ = _streams()
    ones = np.ones(512)
    calls_a = [_ev(i, ones, a[1 + 512 * i:1 + 512 * (i + 1)]) for i in range(8)]
    after_k = [dict(e) for e in calls_a]
    after_k[5] = _ev(5, ones + 1.0, a[1 + 512 * 5:1 + 512 * 6])  # positions 2561..: all after k
    assert first_differing_call(calls_a, after_k, a, K) is None
    before_k = [dict(e) for e in calls_a]
    before_k[2] = _ev(2, np.where(np.arange(512) == 7, 2.0, 1.0), a[1 + 1024:1 + 1536])
    assert first_differing_call(calls_a, before_k, a, K) == 2


def _ctx(flip=None, capture=None):
    from auditor.core.contract import AuditOptions, RuleContext
    from auditor.core.observations import GauntletObservation

    obs = GauntletObservation([], {}, "cpu", capture=capture, flip=flip)
    return RuleContext(submission=None, options=AuditOptions(gauntlet=True), observations={"gauntlet": obs})


def _flip_result(first_diff, fork_grad=False, trained_at=None, diff_call=None):
    fork = {"position": 1, "phase": "eval", "grad": fork_grad, "captured_calls_before": 0}
    if trained_at is not None:
        fork["val_training"] = {"position": 1, "phase": "eval", "captured_calls_before": trained_at}
    passes = [{"index": 0, "compared": 100, "differing": 0 if first_diff is None else 3,
               "first_diff": first_diff, "max_abs_diff": 0.0 if first_diff is None else 0.2}]
    out = {"k": 4097, "tolerance": 1e-5, "passes": passes, "compared": 100, "first_diff": first_diff,
           "first_pass": None if first_diff is None else 0, "fork": fork, "seconds": 1.0}
    if diff_call is not None:
        out["first_diff_call"] = {"call": diff_call, "phase": "eval"}
    return out


@pytest.mark.parametrize("flip,c1,c3", [
    (_flip_result(None), ["pass"], []),  # causal, no training on validation tokens
    (_flip_result(None, trained_at=4), ["pass"], ["pass"]),  # score-first TTT
    (_flip_result(4096), ["fail"], []),  # a peek at t+1
    (_flip_result(1, fork_grad=True, diff_call=0), [], ["fail"]),  # trained on validation tokens first
    (_flip_result(4000, trained_at=3, diff_call=7), [], ["fail"]),  # SLOT / TTT before the changed score
    (_flip_result(4000, trained_at=9, diff_call=7), ["fail"], []),  # training came after the change
])
def test_the_flip_difference_is_judged_by_c1_or_c3(flip, c1, c3):
    from rules import c1_causal, c3_score_first

    ctx = _ctx(flip=flip)
    assert [f.severity.value for f in c1_causal.flip_findings(ctx)] == c1
    assert [f.severity.value for f in c3_score_first.flip_findings(ctx)] == c3


def test_a_failed_evalue_names_c2_only_when_flip_and_coverage_rule_out_the_rest():
    from rules._flip import evalue_conditions

    cov = {"coverage": {"scored_twice": 0}, "claim": {"matches": True}}
    assert evalue_conditions(_ctx(_flip_result(None), cov))[0] == ["C2"]
    unseen = {"coverage": {"scored_twice": 0}, "claim": {"matches": False}}  # the printed number is no captured pass
    assert evalue_conditions(_ctx(_flip_result(None), unseen))[0] == ["C1", "C2", "C3", "C4"]
    assert evalue_conditions(_ctx(_flip_result(None), unseen), claimed=True)[0] == ["C2"]
    assert evalue_conditions(_ctx(_flip_result(4096), cov))[0] == ["C1", "C2", "C3", "C4"]
    assert evalue_conditions(_ctx(_flip_result(None), {"coverage": {"scored_twice": 9}}))[0] == ["C1", "C2", "C3", "C4"]
    assert evalue_conditions(_ctx(None, cov))[0] == ["C1", "C2", "C3", "C4"]


def test_epoch_and_hash_table_knobs_the_script_reads_are_shrunk():
    from auditor.sandbox.gauntlet import script_shrink_env

    text = ('a = int(os.environ.get("PREQUANT_TTT_EPOCHS", 21))\nb = os.getenv(\'GLOBAL_TTT_EPOCHS\', "3")\n'
            'c = int(os.environ.get("TTT_EPOCHS", 3))\nd = "NOT_READ_EPOCHS"\n'
            'e = int(os.environ.get("NGRAM_EVAL_BUCKETS", 4194304))\nf = int(os.environ.get("NGRAM_BUCKETS", 1 << 22))\n'
            'g = _env_int("NGRAM_EVAL_CHUNK_TOKENS", 262144)\nh = int(os.environ.get("TTT_CHUNK_SIZE", 256))\n')
    # TTT_EPOCHS and NGRAM_BUCKETS are SHRINK_ENV's own; a chunk inside a window is not the stream's
    assert script_shrink_env(text) == {"GLOBAL_TTT_EPOCHS": "1", "NGRAM_EVAL_BUCKETS": "4096",
                                       "NGRAM_EVAL_CHUNK_TOKENS": "8192", "PREQUANT_TTT_EPOCHS": "1",
                                       "TTT_CHUNK_SIZE": "64"}
    assert script_shrink_env(None) == {}


def test_gather_capture_reads_probabilities_and_log_probabilities_but_not_logits(monkeypatch):
    import torch

    sent = []
    fake = types.ModuleType("_gauntlet_hooks")
    fake.emit = sent.append
    monkeypatch.setitem(sys.modules, "_gauntlet_hooks", fake)
    monkeypatch.syspath_prepend(str(SHIMS))
    real_t, real_m = torch.gather, torch.Tensor.gather
    import torch.nn.functional as F

    real_f = {n: getattr(F, n) for n in ("cross_entropy", "nll_loss", "log_softmax")}
    real_ls = (torch.log_softmax, torch.Tensor.log_softmax)
    cap = importlib.import_module("gauntlet_capture")
    try:
        cap.install()
        cap.enable(True)
        logits = torch.randn(16, 300)
        y = torch.randint(0, 300, (16, 1))
        with torch.no_grad():
            p = 0.7 * torch.softmax(logits, -1) + 0.3 / 300  # a normalized mixture
            p.gather(-1, y)
            torch.log(p).gather(-1, y)
            logits.gather(-1, y)  # logits: not a distribution, not captured
            torch.zeros(16, 300).gather(-1, y)  # a zero-initialised head's logits: not captured either
        from auditor.sandbox.capture import decode_calls

        calls = decode_calls(sent)
        assert [c["prim"] for c in calls] == ["probabilities+gather", "log-probabilities+gather"]
        want = -torch.log(p.gather(-1, y)).reshape(-1).numpy()
        for c in calls:
            assert np.allclose(c["loss"], want, atol=1e-5)
    finally:
        cap.enable(False)
        torch.gather, torch.Tensor.gather = real_t, real_m
        torch.log_softmax, torch.Tensor.log_softmax = real_ls
        for n, f in real_f.items():
            setattr(F, n, f)
        cap._real.clear()
        sys.modules.pop("gauntlet_capture", None)


def test_the_records_own_configuration_comes_from_its_readme_and_logs():
    from auditor.analysis.envdefaults import run_configuration
    from auditor.core.model import Figure

    script = ('a = _env_bool("NGRAM_EVAL_ENABLED", False)\nb = int(os.environ.get("NGRAM_EVAL_BUCKETS", 1))\n'
              'c = os.environ.get("PPM_ENABLED", "0")\nd = os.environ.get("DATA_PATH", "x")\n'
              'e = os.environ.get("NGRAM_EVAL_ORDER_MULTS", "")\nf = os.environ.get("TTT_LR", "0.1")\n')
    readme = ("Run:\n```\nNGRAM_EVAL_ENABLED=1 DATA_PATH=/data/x torchrun train_gpt.py\n```\n"
              "| NGRAM_EVAL_BUCKETS | 4,194,304 |\n| NGRAM_EVAL_ORDER_MULTS | 0.3,0.97 |\n")
    logs = {"ppm_enabled": ("True", Figure(1, "train.log", 7, "ppm_enabled: True")),
            "ttt_lr": ("float = float(os.environ.get('TTT_LR'))", Figure(0, "train.log", 9, "x"))}
    got = run_configuration(script, readme, logs)
    assert got == {"NGRAM_EVAL_ENABLED": ("1", "README run command"),
                   "NGRAM_EVAL_BUCKETS": ("4194304", "README settings table"),
                   "PPM_ENABLED": ("1", "logged configuration, train.log:7")}


def test_a_line_of_key_value_pairs_is_logged_configuration_and_a_step_line_is_not():
    from auditor.load.configdump import config_dump

    text = ("model_preset:frontier_lean run_profile:full_8gpu_600s\nstep:1/6 train_loss:6.9 train_time:10ms\n"
            "val_bpb:enabled tokenizer_kind=sentencepiece\nfinal_ngram val_loss:6.93 val_bpb:3.01\n"
            "train_loader:dataset:fineweb10B_sp1024\n  ppm_enabled: True\n")
    got = {k: (v, f.line) for k, (v, f) in config_dump("train.log", text).items()}
    assert got == {"model_preset": ("frontier_lean", 1), "run_profile": ("full_8gpu_600s", 1), "ppm_enabled": ("True", 6)}
