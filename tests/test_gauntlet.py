"""The gauntlet: e-value arithmetic, synthetic data, CPU shims, and whole runs on fixture submissions.

Fixture submissions are built from tests/fixtures/gauntlet/template_train_gpt.py (a tiny CPU record-
style script) with one evaluation variant spliced in from tests/fixtures/gauntlet/variants/.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import lzma
import math
import os
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from auditor.load.loader import load_submission
from auditor.sandbox.gauntlet import ALPHA, evalue_test, run_gauntlet
from auditor.sandbox.synth import expected_vocab, make_data

FIXTURES = Path(__file__).parent / "fixtures" / "gauntlet"
SHIMS = Path(__file__).parent.parent / "auditor" / "sandbox" / "shims"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")


def make_submission(root: Path, variant: str, stub: bool = False) -> Path:
    template = (FIXTURES / "template_train_gpt.py").read_text()
    body = (FIXTURES / "variants" / f"{variant}.py").read_text()
    script = template.replace("\n# @@EVAL@@\n", "\n" + body + "\n")
    folder = root / variant
    folder.mkdir(parents=True)
    if stub:
        packed = base64.b85encode(lzma.compress(script.encode())).decode()
        script = f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{packed}")))\n'
    (folder / "train_gpt.py").write_text(script)
    (folder / "README.md").write_text(f"# fixture {variant}\n")
    return folder


def stage_map(result) -> dict[str, str]:
    return {s.name: s.status for s in result.stages}


def findings_by_rule(obs) -> dict[str, list]:
    """The rules' judgement of one gauntlet observation (the three rules that read it)."""
    from auditor.core.contract import AuditOptions, RuleContext
    from rules import evalue_random_stream, no_network, no_train_data_at_eval

    ctx = RuleContext(submission=None, options=AuditOptions(gauntlet=True), observations={"gauntlet": obs})
    out: dict[str, list] = {}
    for f in (evalue_random_stream.check(ctx) + no_network.dynamic_findings(ctx)
              + no_train_data_at_eval.dynamic_findings(ctx)):
        out.setdefault(f.rule, []).append(f)
    return out


# ------------------------------------------------------------------------------ e-value arithmetic

def test_evalue_uniform_predictor_has_zero_advantage_on_random_positions():
    t = evalue_test(math.log(1020), 65536, 0, 1020, None)
    assert t["advantage_nats"] == pytest.approx(0.0, abs=1e-6)
    assert t["passed"] and t["p_value"] == 1.0
    assert t["bound_nats"] == pytest.approx(math.log(1 / ALPHA))


def test_evalue_bos_positions_count_only_against_the_submission():
    # the BOS targets' loss stays in the total, their ln V' is not credited
    t = evalue_test(math.log(1020), 65536, 8, 1020, None)
    assert t["n_random"] == 65528
    assert t["advantage_nats"] == pytest.approx(-8 * math.log(1020))


def test_evalue_threshold_rounding_and_multiple_lines():
    n, v = 65536, 1020
    lo = math.log(v) - 20.0 / n  # 20 nats of advantage if the value were exact
    exact = evalue_test(lo, n, 0, v, None)
    assert exact["advantage_nats"] == pytest.approx(20.0)
    assert not exact["passed"]
    assert exact["log10_p_value"] == pytest.approx(-20.0 / math.log(10))
    # printed at 4 decimals: up to 0.00005 * 65536 = 3.28 nats are rounding, counted against the test
    rounded = evalue_test(round(lo, 4), n, 0, v, 4)
    assert rounded["rounding_slack"] == 0.00005
    assert rounded["advantage_nats"] < exact["advantage_nats"] + 0.5 * 1e-4 * n - 3.0
    # two tested lines: the bound grows by ln 2 and the p-value doubles
    two = evalue_test(lo, n, 0, v, None, k_tests=2)
    assert two["bound_nats"] == pytest.approx(math.log(2 / ALPHA))
    assert two["log10_p_value"] == pytest.approx((math.log(2) - 20.0) / math.log(10))


def _adaptive_legal_nll(stream: np.ndarray, v: int) -> float:
    """Laplace-smoothed mixture of unigram and bigram counts, updated after each token (causal)."""
    uni = np.ones(v)
    bi = np.ones((v, v)) * 0.1
    total = 0.0
    prev = 0
    for tok in stream:
        p = 0.5 * uni / uni.sum() + 0.5 * bi[prev] / bi[prev].sum()
        total -= math.log(p[tok])
        uni[tok] += 1
        bi[prev, tok] += 1
        prev = tok
    return total


@pytest.mark.parametrize("seed", range(6))
def test_ville_bound_holds_for_an_adaptive_legal_predictor(seed):
    v, n = 64, 4000
    stream = np.random.default_rng(seed).integers(0, v, n)
    nll = _adaptive_legal_nll(stream, v)
    t = evalue_test(nll / n, n, 0, v, None)
    assert t["passed"], t
    assert t["advantage_nats"] < 5.0  # P(A > 5) <= e^-5 for any single seed


def test_rescoring_the_same_stream_breaks_the_bound():
    v, n = 64, 4000
    stream = np.random.default_rng(7).integers(0, v, n)
    counts = np.bincount(stream, minlength=v) + 1.0
    nll = -np.log(counts[stream] / counts.sum()).sum()  # unigram fitted on the tokens it then scores
    t = evalue_test(float(nll) / n, n, 0, v, None)
    assert not t["passed"]
    assert t["advantage_nats"] > 15.0


# ------------------------------------------------------------------------------ synthetic data

def test_synthetic_data_layout_and_validation_stream(tmp_path):
    from reference_impl.data import read_shard
    from reference_impl.tokenizer import load as load_sp

    data = make_data(tmp_path, 1024, seed=3)
    assert data.dataset_dir == tmp_path / "datasets" / "fineweb10B_sp1024"
    assert data.tokenizer_path == tmp_path / "tokenizers" / "fineweb_1024_bpe.model"
    sp = load_sp(str(data.tokenizer_path))
    assert sp.vocab_size() == 1024
    assert data.special_ids == [0, 1, 2, 3]
    assert data.v_prime == 1020
    val = read_shard(str(data.dataset_dir / "fineweb_val_000000.bin")).astype(np.int64)
    assert val.size == (1 << 16) + 1
    bos = np.flatnonzero(val == 1)
    assert bos.tolist() == list(range(0, (1 << 16) + 1, 8192))
    body = np.delete(val, bos)
    assert body.min() >= 4 and body.max() <= 1023
    hist = np.bincount(body, minlength=1024)[4:]
    assert hist.min() > 20 and hist.max() < 120  # uniform: mean 64
    assert data.bos_targets(1 << 16) == 8
    train = np.concatenate([read_shard(str(p)) for p in sorted(data.dataset_dir.glob("fineweb_train_*.bin"))])
    assert train.size == 1 << 18
    assert "The" in sp.decode(train[1:200].tolist()) or "the" in sp.decode(train[1:200].tolist())
    again = make_data(tmp_path / "again", 1024, seed=3)
    assert (again.dataset_dir / "fineweb_val_000000.bin").read_bytes() == \
        (data.dataset_dir / "fineweb_val_000000.bin").read_bytes()


@pytest.mark.parametrize("source,expected", [
    ('vocab_size = int(os.environ.get("VOCAB_SIZE", 8192))', 8192),
    ("vocab_size: int = 4096", 4096),
    ('data_path = "./data/datasets/fineweb10B_sp2048"', 2048),
    ("print('hello')", 1024),
])
def test_expected_vocab_is_read_from_the_text(source, expected):
    assert expected_vocab(source)[0] == expected


# ------------------------------------------------------------------------------ CPU shims (numerics)

def _load_sdpa_shim():
    spec = importlib.util.spec_from_file_location("auditor_sdpa_shim_under_test",
                                                  SHIMS / "fallback" / "auditor_sdpa_shim.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _naive_attention(q, k, v, causal, left=-1):
    import torch

    b, t, h, d = q.shape
    rep = h // k.shape[2]
    k, v = k.repeat_interleave(rep, 2), v.repeat_interleave(rep, 2)
    scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(d)
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    keep = torch.ones(t, t, dtype=torch.bool)
    if causal:
        keep &= j <= i
    if left >= 0:
        keep &= j >= i - left
    scores = scores.masked_fill(~keep, float("-inf"))
    return torch.einsum("bhts,bshd->bthd", scores.softmax(-1), v)


@pytest.mark.parametrize("causal,left", [(True, -1), (False, -1), (True, 3)])
def test_flash_attention_shim_matches_naive_attention_with_gqa(causal, left):
    import torch

    shim = _load_sdpa_shim()
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 10, 4, 8, generator=g)
    k = torch.randn(2, 10, 2, 8, generator=g)
    v = torch.randn(2, 10, 2, 8, generator=g)
    out = shim.attention_bthd(q, k, v, None, causal, (left, -1))
    assert out.shape == (2, 10, 4, 8)
    assert torch.allclose(out, _naive_attention(q, k, v, causal, left), atol=1e-5)


def test_flash_attention_varlen_shim_keeps_documents_apart():
    import torch

    shim = _load_sdpa_shim()
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(7, 2, 4, generator=g) for _ in range(3))
    cu = torch.tensor([0, 3, 7])
    out = shim.attention_varlen(q, k, v, cu, cu, None, True)
    first = _naive_attention(q[None, :3], k[None, :3], v[None, :3], True)[0]
    second = _naive_attention(q[None, 3:], k[None, 3:], v[None, 3:], True)[0]
    assert torch.allclose(out, torch.cat([first, second]), atol=1e-5)


# ------------------------------------------------------------------------------ CLI options

def test_gauntlet_cli_options_reach_the_audit_options():
    from auditor.core.errors import ToolError
    from auditor.commands._common import add_audit_options, options_from_args

    p = argparse.ArgumentParser()
    add_audit_options(p)
    opts = options_from_args(p.parse_args(["--gauntlet", "--device", "cuda", "--gauntlet-timeout", "30"]))
    assert (opts.gauntlet, opts.device, opts.gauntlet_timeout) == (True, "cuda", 30.0)
    assert options_from_args(p.parse_args([])).gauntlet is False
    with pytest.raises(ToolError):
        options_from_args(p.parse_args(["--gauntlet", "--gauntlet-timeout", "0"]))


def test_rule_reports_not_run_without_gauntlet(tmp_path):
    from auditor.engine import audit_folder

    result = audit_folder(str(make_submission(tmp_path, "legal_ttt_cache")))
    ev = [f for f in result.findings if f.rule == "EVALUE_RANDOM_STREAM"]
    assert [(f.severity, f.message.split(";")[0]) for f in ev] == [("info", "not run")]
    assert "gauntlet" not in result.observations


# ------------------------------------------------------------------------------ whole runs on fixtures

@linux_only
def test_legal_fixture_passes_end_to_end_through_the_review(tmp_path):
    """(a) score-first TTT + a normalized cache: every stage passes, the e-value test and the control
    pass, and the review (Markdown and JSON) carries the stage table."""
    from auditor.engine import audit_folder
    from reports.json_doc import result_to_json
    from reports.render import render
    from auditor.core.contract import AuditOptions

    folder = make_submission(tmp_path, "legal_ttt_cache")
    result = audit_folder(str(folder), AuditOptions(gauntlet=True, gauntlet_timeout=150.0))
    g = result.observations["gauntlet"].to_json()
    statuses = {s["name"]: s["status"] for s in g["stages"]}
    assert statuses == {
        "decode": "skipped", "synthetic data": "pass", "import": "pass", "hyperparameters": "pass",
        "model": "pass", "forward": "pass", "train_steps": "pass", "train": "pass", "serialize": "pass",
        "eval": "pass", "log parsing": "pass", "e-value test": "pass", "per-position capture": "pass",
        "flip test": "pass", "control (reference evaluator)": "pass"}
    stages = {s["name"]: s for s in g["stages"]}
    assert stages["model"]["data"]["model_class"] == "GPT"
    assert stages["model"]["data"]["parameters"] == 1024 * 64 + 3 * 64 * 64 + 64 * 64 + 64 + \
        (64 * 128 + 128 + 128 * 64 + 64) + 64 * 1024 + 1024
    assert stages["serialize"]["data"]["artifacts"]["final_model.int8.ptz"] > 100_000
    assert stages["hyperparameters"]["data"]["values"]["vocab_size"] == 1024
    assert stages["hyperparameters"]["data"]["values"]["model_dim"] == 64
    worst = g["evalue"]["worst"]
    assert worst["label"] == "final_int8_zlib_roundtrip_exact"
    assert worst["n_targets"] == 65536 and worst["n_random"] == 65528 and worst["v_prime"] == 1020
    assert worst["advantage_nats"] < 0 and worst["passed"]
    assert g["control"]["passed"] and g["control"]["advantage_nats"] < 0
    assert "CPU stand-ins the run imported: flash_attn_interface" in g["notes"]
    ev = [f for f in result.findings if f.rule == "EVALUE_RANDOM_STREAM"]
    assert [f.severity for f in ev] == ["pass"]
    assert not [f for f in result.findings if f.rule in ("NO_NETWORK", "NO_TRAIN_DATA_AT_EVAL")
                and f.data.get("dynamic")]
    md = render(result, "md")
    assert "### Gauntlet (sandboxed run on synthetic data)" in md
    row = next(line for line in md.splitlines() if "value test |" in line)
    assert row.split("|")[2].strip() == "pass"
    js = json.loads(render(result, "json"))
    assert js["sections"]["gauntlet"]["evalue"]["worst"]["passed"] is True
    assert result_to_json(result)["sections"]["gauntlet"]["vocab_size"] == 1024


@linux_only
def test_target_keyed_hash_cache_fails_the_evalue_test(tmp_path):
    """(b) the '#779 family': an n-gram cache keyed on the target and read at the gold token."""
    result = run_gauntlet(load_submission(make_submission(tmp_path, "hashed_target_cache")), timeout=150,
                          control=False)
    ev = findings_by_rule(result)["EVALUE_RANDOM_STREAM"]
    assert [f.severity for f in ev] == ["fail"]
    assert ev[0].data["advantage_nats"] > 1000
    assert ev[0].data["log10_p_value"] < -100
    assert stage_map(result)["eval"] == "pass"


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["finetune_on_val", "rescore_second_pass"])
def test_val_leaking_evaluations_fail_the_evalue_test(tmp_path, variant):
    """(c) fine-tuning on validation before scoring; (d) rescoring in a second pass."""
    result = run_gauntlet(load_submission(make_submission(tmp_path, variant)), timeout=150, control=False)
    ev = findings_by_rule(result)["EVALUE_RANDOM_STREAM"]
    assert [f.severity for f in ev] == ["fail"]
    assert ev[0].data["advantage_nats"] > ev[0].data["bound_nats"]


@linux_only
@pytest.mark.slow
def test_network_call_at_eval_is_blocked_and_reported(tmp_path):
    """(e) the run still finishes; the blocked attempt is a NO_NETWORK fail in the eval phase."""
    result = run_gauntlet(load_submission(make_submission(tmp_path, "network_at_eval")), timeout=150, control=False)
    by = findings_by_rule(result)
    net = by["NO_NETWORK"]
    assert [(f.severity, f.data["phase"], f.data["blocked"]) for f in net] == [("fail", "eval", True)]
    assert "192.0.2.1" in net[0].data["target"]
    assert net[0].data["urls"] == ["'http://192.0.2.1/ngram-table.bin'"]
    assert [f.severity for f in by["EVALUE_RANDOM_STREAM"]] == ["pass"]


@linux_only
@pytest.mark.slow
def test_train_shards_read_during_eval_are_reported(tmp_path):
    """(f) a normalized prior built from the training shards after the model was read back."""
    result = run_gauntlet(load_submission(make_submission(tmp_path, "train_data_at_eval")), timeout=150,
                          control=False)
    by = findings_by_rule(result)
    hits = by["NO_TRAIN_DATA_AT_EVAL"]
    assert [f.severity for f in hits] == ["fail"]
    assert sorted(p.rsplit("/", 1)[-1] for p in hits[0].data["paths"]) == \
        ["fineweb_train_000000.bin", "fineweb_train_000001.bin"]
    assert [f.severity for f in by["EVALUE_RANDOM_STREAM"]] == ["pass"]


def _stray_processes(marker: str) -> list[int]:
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(d))
            except OSError:
                pass
    return found


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("variant,timeout,limit", [
    ("memory_bomb", 150, "memory limit"),
    ("spin_forever", 30, "wall-clock timeout"),
    ("fork_bomb", 30, "wall-clock timeout"),
])
def test_runaway_evaluations_are_contained_and_the_review_is_written(tmp_path, variant, timeout, limit):
    """(g) unbounded allocation, an endless loop, repeated forking: stopped, reported, review written."""
    from auditor.engine import audit_submission
    from reports.render import render
    from auditor.core.contract import AuditOptions

    marker = f"auditor-gauntlet-test-{uuid.uuid4().hex[:8]}-"
    sub = load_submission(make_submission(tmp_path, variant))
    ran = run_gauntlet(sub, timeout=timeout, control=False, sandbox_prefix=marker)
    assert _stray_processes(marker) == []
    assert not any(p.name.startswith(marker) for p in Path("/tmp").iterdir())
    result = audit_submission(sub, AuditOptions(gauntlet=True), observations={"gauntlet": ran})
    g = result.observations["gauntlet"].to_json()
    stages = {s["name"]: s for s in g["stages"]}
    # on a slow machine the limit may hit before the eval; wherever it hit, that stage says why
    failed = [s for s in g["stages"] if s["status"] == "fail"]
    assert failed and failed[-1]["name"] in ("train", "serialize", "eval")
    assert limit in failed[-1]["detail"] or (limit == "memory limit" and "MemoryError" in failed[-1]["detail"])
    if variant == "memory_bomb":
        assert stages["serialize"]["status"] == "pass" and stages["eval"]["status"] == "fail"
    ev = [f for f in result.findings if f.rule == "EVALUE_RANDOM_STREAM"]
    assert [f.severity for f in ev] == ["warn"] and "not completed" in ev[0].message
    assert result.verdict == "NEEDS_REVIEW" or result.verdict == "FAIL"
    assert "### Gauntlet" in render(result, "md")


@linux_only
@pytest.mark.slow
def test_triton_kernel_stops_at_needs_gpu(tmp_path):
    result = run_gauntlet(load_submission(make_submission(tmp_path, "triton_kernel")), timeout=150, control=False)
    st = {s.name: s for s in result.stages}
    assert st["eval"].status == "needs_gpu"
    assert "triton kernel _scale_kernel needs a GPU" in st["eval"].detail
    ev = findings_by_rule(result)["EVALUE_RANDOM_STREAM"]
    assert [f.severity for f in ev] == ["info"] and "needs a GPU" in ev[0].message


@linux_only
@pytest.mark.slow
def test_self_extracting_stub_is_decoded_and_run(tmp_path):
    sub = load_submission(make_submission(tmp_path, "legal_ttt_cache", stub=True))
    result = run_gauntlet(sub, timeout=150, control=False)
    st = stage_map(result)
    assert st["decode"] == "pass"
    assert st["import"] == "pass" and st["model"] == "pass"
    assert [f.severity for f in findings_by_rule(result)["EVALUE_RANDOM_STREAM"]] == ["pass"]


def test_unique_marker_helper_finds_nothing_for_a_fresh_name():
    assert _stray_processes(f"no-such-process-{uuid.uuid4().hex}") == []


def _ev(event, **kw):
    return dict(event=event, **kw)


def test_final_phases_without_read_back_start_eval_after_the_last_model_write():
    from auditor.sandbox.gauntlet import final_phases

    events = [_ev("phase", phase="probe"), _ev("open", kind="train_shard", phase="probe"),
              _ev("phase", phase="train"), _ev("open", kind="train_shard", phase="train"),
              _ev("open", kind="file", artifact="write", phase="serialize"),
              _ev("open", kind="train_shard", phase="serialize"),
              _ev("open", kind="file", artifact="write", phase="serialize"),
              _ev("open", kind="train_shard", phase="serialize"), _ev("network", phase="serialize")]
    assert final_phases(events) == ["probe", "probe", "train", "train", "serialize", "serialize", "serialize",
                                    "eval", "eval"]


def test_final_phases_without_main_keep_the_hook_phases():
    from auditor.sandbox.gauntlet import final_phases

    events = [_ev("phase", phase="probe"), _ev("open", kind="train_shard", phase="probe")]
    assert final_phases(events) == ["probe", "probe"]


def test_zstandard_stand_in_round_trips():
    spec = importlib.util.spec_from_file_location("zstd_standin_under_test",
                                                  SHIMS / "fallback" / "zstandard" / "__init__.py")
    zstd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zstd)
    blob = zstd.ZstdCompressor(level=22).compress(b"weights" * 1000)
    assert len(blob) < 7000
    assert zstd.ZstdDecompressor().decompress(blob) == b"weights" * 1000
    with pytest.raises(zstd.ZstdError):
        zstd.ZstdDecompressor().decompress(b"\x28\xb5\x2f\xfd real zstd frame")


@linux_only
def test_shipped_logs_are_not_taken_as_the_runs_output(tmp_path):
    """A script that prints no score must not inherit the score lines of the logs shipped beside it."""
    from recordkit import write_record

    folder = write_record(tmp_path)  # train_gpt.py only prints "training"; the seed logs claim 1.08 bpb
    result = run_gauntlet(load_submission(folder), timeout=60, control=False)
    ev = findings_by_rule(result)["EVALUE_RANDOM_STREAM"]
    assert [f.severity for f in ev] == ["warn"] and "no final val_loss line" in ev[0].message


def test_torch_never_sees_the_triton_stand_in_a_script_imported_first():
    """A script imports triton (the stand-in) and then torch._dynamo: torch's triton probe must find no
    triton, not a stand-in without `triton.compiler`; the stand-in keeps the tensor descriptors scripts build."""
    import subprocess

    code = ("import sys; sys.path.append(sys.argv[1] + '/fallback')\n"
            "import gauntlet_cpu; gauntlet_cpu.install()\n"
            "import triton, triton.language as tl\n"
            "from triton.tools.tensor_descriptor import TensorDescriptor\n"
            "import torch\n"
            "d = TensorDescriptor.from_tensor(torch.zeros(4, 8), [2, 8]); assert d.shape == [4, 8]\n"
            "import torch._inductor.runtime.triton_compat as tc\n"
            "assert tc.HAS_TRITON is False\n"
            "assert sys.modules['triton'] is triton and triton.__gauntlet_shim__\n"
            "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(SHIMS))  # the shims first, the stand-ins after site-packages
    out = subprocess.run([sys.executable, "-c", code, str(SHIMS)], capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize("stage,detail,severity", [
    ("import", "SyntaxError: f-string: expecting '}' (train_gpt.py, line 274)", "info"),  # Python 3.12 syntax
    ("decode", "no entry-point script (train_gpt.py or train*.py)", "info"),
    ("main", "RuntimeError: shapes cannot be multiplied", "warn"),  # the script itself failed on synthetic data
])
def test_an_incomplete_run_is_info_when_the_cause_is_the_auditors_side(stage, detail, severity):
    from auditor.core.contract import AuditOptions, RuleContext
    from auditor.core.observations import GauntletObservation, Stage
    from rules import evalue_random_stream

    obs = GauntletObservation([Stage(stage, "skipped" if stage == "decode" else "fail", 0.0, detail)], {}, "cpu",
                              incomplete="the run printed no final val_loss line the log parser recognises")
    ctx = RuleContext(submission=None, options=AuditOptions(gauntlet=True), observations={"gauntlet": obs})
    found = evalue_random_stream.check(ctx)
    assert [f.severity.value for f in found] == [severity]
    assert (obs.cannot_run_here is not None) == (severity == "info")


def test_a_mixture_printed_in_bits_per_byte_only_is_tested_through_the_runs_own_ratio():
    """`ppm_mixer val_bpb:…` has no val_loss: the score line's val_loss / (val_bpb ln 2) gives the bytes
    per token the script counts, so the mixture's figure becomes nats per token for the e-value test."""
    from types import SimpleNamespace

    from auditor.load.logparse import parse_log
    from auditor.sandbox.gauntlet import _mixture_lines

    text = ("quantized_sliding_window val_loss:6.93212527 val_bpb:3.01770684 eval_time:7858ms\n"
            "ppm_mixer val_bpb:2.50000000 eval_time:5000ms order=5 N_bytes=150000\n")
    parsed = [r for r in parse_log("sandbox-stdout", text) if r.phases][-1]
    [(label, loss, slack, bpb, line)] = _mixture_lines(SimpleNamespace(stdout=text), parsed)
    assert label == "ppm_mixer (bits per byte only)" and bpb == 2.5 and line == 2
    assert loss == pytest.approx(2.5 * 6.93212527 / 3.01770684, rel=1e-12)
    assert slack == pytest.approx(0.5e-8 * 6.93212527 / 3.01770684, rel=1e-9)
    assert _mixture_lines(SimpleNamespace(stdout=text.splitlines()[0]), parsed) == []
