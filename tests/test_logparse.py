"""Tests for auditor.load.logparse: specific figures from the dev corpus, plus synthetic logs for the
hard cases (embedded source, timestamps, CRLF, rank noise, subsets, several runs, huge and broken
input)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.load.logparse import is_log_name, parse_log
from auditor.load.logpatterns import MAX_NOTES, MAX_SUBSET_MARKERS, SEPARATOR

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "dev_corpus"
REC = "track_10min_16mb"
NON = "track_non_record_16mb"


def corpus_runs(track: str, folder: str, rel: str):
    if not CORPUS.is_dir():
        pytest.skip("dev corpus (../shared/dev_corpus) not present")
    p = CORPUS / track / folder / rel
    if not p.is_file():
        pytest.skip(f"{p} not present")
    return parse_log(rel, p.read_bytes().decode("utf-8", errors="replace"))


def one_run(track: str, folder: str, rel: str):
    runs = corpus_runs(track, folder, rel)
    assert len(runs) == 1
    return runs[0]


def v(fig):
    return None if fig is None else fig.value


# --- dev corpus ---------------------------------------------------------------------------------

HESSIAN = "2026-04-06_SP8192_HessianSDClip_ProgressiveRecurrence"


@pytest.mark.parametrize("rel, seed, code, total, bpb", [
    ("train.log", 1337, 78688, 16054963, 1.08300961),
    ("train_seed1337.log", 1337, 78688, 16054963, 1.08300961),
    ("train_seed3141.log", 3141, 80055, 16059704, 1.08398828),
    ("train_seed42.log", 42, 80055, 16058494, 1.08362987),
])
def test_hessian_sdclip_over_cap_totals(rel, seed, code, total, bpb):
    r = one_run(REC, HESSIAN, rel)
    assert r.family == "timed-eval"
    assert v(r.seed) == seed
    assert v(r.code_bytes) == code
    assert v(r.total_bytes) == total and r.total_bytes.value > 16_000_000
    assert r.total_bytes.text == f"Total submission size quantized+brotli: {total} bytes"
    assert r.model_tag == "quantized+brotli"
    assert v(r.val_tokens) == 40540160
    assert v(r.train_shards) == 128
    assert r.tokenizer_vocab == 8192
    assert r.stop_reason == "wallclock_cap"
    assert r.score_phase.label == "quantized_sliding_window"
    assert r.score_phase.val_bpb == bpb
    pre = [p for p in r.phases if p.label == "pre-quantization post-ema"]
    assert len(pre) == 1 and pre[0].is_final is False


def test_hessian_sdclip_line_numbers():
    r = one_run(REC, HESSIAN, "train_seed42.log")
    assert (r.total_bytes.line, r.code_bytes.line, r.train_time_ms.line) == (167, 158, 153)
    assert v(r.train_time_ms) == 588098 and v(r.step_stop) == 5178
    assert r.score_phase.line == 169 and r.score_phase.eval_time_ms == 83408.0


XNOR = "2026-04-05_118M_XNOR-Net_FP8_1024D_10L"


def test_xnor_ten_minute_log():
    r = one_run(NON, XNOR, "log_10mins_seed-42.txt")
    assert r.family == "ciprian"
    assert r.val_tokens is None  # Ciprian logs print no val-token count
    assert r.stop_reason == "wallclock_cap"
    assert v(r.train_time_ms) == 598686 and r.train_time_ms.line == 27
    # the stop line has no `step:` part: the step comes from the last step line
    assert v(r.step_stop) == 15540 and r.step_stop.line == 26
    assert v(r.seed) == 42 and r.seed.line == 4  # from the k=v dump
    assert v(r.world_size) == 8
    assert v(r.max_wallclock_seconds) == 599.0
    assert v(r.code_bytes) == 78442
    assert v(r.total_bytes) == 15959813 and r.total_bytes.line == 31
    assert v(r.model_bytes) == 15959813 - 78442
    assert r.model_tag == "binary+brotli"
    s = r.score_phase
    assert (s.label, s.val_loss, s.val_bpb, s.stride, s.eval_time_ms) == ("final_sliding", 2.7923, 1.5561, 48, 428012.0)
    assert r.tokenizer_vocab == 1024
    assert r.embedded_source_line == 1 and r.embedded_source is None


def test_xnor_eggroll_log_without_final_line():
    r = one_run(NON, XNOR, "log_eggroll_3-last-layers.txt")
    assert r.score_phase is None
    assert r.stop_reason is None
    assert v(r.step_stop) == 10


DG = "2026-03-23_DGAttention_DavidGao"


def test_dgattention_unqualified_total_after_rdquant():
    r = one_run(NON, DG, "train.log")
    assert r.family == "dgattention"
    assert v(r.total_bytes) == 16638468 and r.total_bytes.line == 93
    assert v(r.model_bytes) == 16558180 and r.model_tag == "rdquant+zstd"
    assert r.score_phase is None  # no final eval line
    assert r.phases[-1].label == "step:2979/20000" and r.phases[-1].val_bpb == 1.1898
    assert v(r.code_bytes) == 80288


def test_legendre_one_off_format():
    r = one_run(NON, "2026-03-31_LegendreGPT", "train.log")
    assert r.family == "legendre"
    assert v(r.val_tokens) == 62021632 and r.val_tokens.line == 4
    assert v(r.model_bytes) == 15370972 and r.model_tag == "INT7+zlib"
    assert v(r.total_bytes) == 15441941 and r.total_bytes.line == 1841
    assert v(r.code_bytes) == 70969
    s = r.score_phase
    assert (s.label, s.val_loss, s.val_bpb, s.line) == ("final_INT7_zlib_roundtrip", 2.0784, 1.2353, 1872)
    assert r.seed is None
    # every eval in this log is announced as limited: the final one is on 500 batches
    assert any(e.line == 1846 and e.text == "eval: 500 batches (limited)" for e in r.subset_markers)
    assert v(r.train_time_ms) == 96562184 and v(r.step_stop) == 60000


PHASED = "2026-04-22_SP8192_CaseOps_GatedAttn_QuantGate_Loop45_PhasedTTT_MLPClip12"


def test_phased_ttt_log():
    r = one_run(REC, PHASED, "train_seed1.log")
    assert r.family == "varlen-phased"
    assert v(r.seed) == 1
    assert v(r.val_tokens) == 47851520 and r.val_tokens.line == 121
    assert v(r.total_eval_time_s) == 391.2 and r.total_eval_time_s.line == 830
    assert v(r.compile_warmup_s) == 87.4
    assert v(r.code_bytes_compressed) == 28025 and v(r.code_bytes_raw) == 131887 and r.code_bytes is None
    assert v(r.total_bytes) == 15979182
    assert r.byte_sidecar is True
    assert "datasets/datasets" in r.train_shards_path
    assert v(r.train_time_ms) == 596056 and v(r.step_stop) == 4869
    s = r.score_phase
    assert (s.label, s.val_bpb, s.eval_time_ms) == ("quantized_ttt_phased", 1.06509678, 391198.0)
    diag = {p.label: p.is_final for p in r.phases if p.label.startswith("diagnostic")}
    assert diag == {"diagnostic pre-quantization post-ema": False, "diagnostic quantized": False}


INT5 = "2026-03-20_10L_Int5MLP_MuonWD04_SWA50"


@pytest.mark.parametrize("seed, bpb, total", [
    (1337, 1.14298416, 15830186),
    (2024, 1.14260369, 15684876),
    (42, 1.14271194, 15965978),
])
def test_10l_int5mlp_seeds(seed, bpb, total):
    r = one_run(REC, INT5, f"train_seed{seed}.log")
    assert r.family == "root-sliding"
    assert v(r.seed) == seed
    s = r.score_phase
    assert (s.label, s.val_bpb, s.stride) == ("final_int8_zlib_roundtrip_exact", bpb, 64)
    assert v(r.total_bytes) == total  # printed as `int8+zlib` although the model is int6+zstd
    assert r.model_tag == "int6+zstd"


def test_mixedquant_three_runs():
    runs = corpus_runs(REC, "2026-03-19_MixedQuant_Int6Int8_SlidingWindow", "train.log")
    assert [r.index for r in runs] == [0, 1, 2]
    assert [r.embedded_source_line for r in runs] == [1, 168, 349]
    assert [r.score_phase.stride for r in runs] == [64, 256, 64]
    assert [r.score_phase.val_bpb for r in runs] == [1.19763674, 1.20840424, 1.16301431]
    assert all(r.score_phase.label == "final_sliding_window_eval_exact" for r in runs)
    assert [v(r.code_bytes) for r in runs] == [55931, 55932, 56770]
    assert all(r.family == "march-sliding" for r in runs)


def test_smeargate_sliding_label():
    r = one_run(REC, "2026-03-19_smeargate_orthoinit_muonwd", "train.log")
    labels = [p.label for p in r.phases if p.is_final]
    assert labels == ["final_int6_roundtrip", "final_int6_roundtrip_exact",
                      "final_sliding_window_eval", "final_sliding_window_eval_exact"]
    assert r.score_phase.val_bpb == 1.15555486 and r.score_phase.stride == 64
    assert r.phases[-2].eval_time_ms == 75096.0


def test_lower_lr_code_size_and_raw_total_ignored():
    r = one_run(REC, "2026-03-18_LowerLR", "train.log")
    assert r.family == "root"
    assert v(r.code_bytes) == 50919 and r.code_bytes.line == 467
    assert v(r.total_bytes) == 15854246  # not the raw-checkpoint total 67275902
    assert v(r.train_shards) == 180 and r.train_shards_path == "fineweb10B_sp1024"
    assert r.score_phase.val_bpb == 1.22296644


def test_score_first_ttt_done_line_is_a_phase():
    r = one_run(REC, "2026-04-08_SP8192_ParallelResid_ScoreFirstTTT", "train_seed42.log")
    done = [p for p in r.phases if p.label == "ttt_sliding:done"]
    assert len(done) == 1
    assert (done[0].val_loss, done[0].val_bpb, done[0].eval_time_ms) == (2.796503, 1.082613, 343200.0)
    assert r.score_phase.label == "legal_ttt_exact"


def test_hyperparameters_before_source():
    r = one_run(REC, "2026-04-01_Vocab4096_MLPMult4_WD085", "train_seed1337.log")
    assert r.family == "timed-eval"
    assert r.embedded_source_line == 74
    assert v(r.seed) == 1337 and r.seed.line == 52
    assert v(r.train_shards) == 143
    assert v(r.train_time_ms) == 590009


def test_gdn_log_with_two_runs():
    runs = corpus_runs(NON, "2026-04-04_GDN_Hybrid_LongContext", "logs_experiment/baseline_1xh100_600s_seq16384.txt")
    assert len(runs) == 2
    assert [r.score_phase.val_bpb for r in runs] == [1.43872727, 1.43526178]
    assert all(v(r.world_size) == 1 for r in runs)


def test_corpus_log_names():
    if not CORPUS.is_dir():
        pytest.skip("dev corpus not present")
    picked = set()
    for p in CORPUS.rglob("*"):
        parts = p.relative_to(CORPUS).parts
        if p.is_file() and len(parts) >= 3 and is_log_name("/".join(parts[2:])):
            picked.add("/".join(parts[2:]))
    assert "logs_experiment/4096_hybrid448_s1337.txt" in picked
    assert "train_log_bpe_10min.txt" in picked and "log_10mins_seed-7.txt" in picked
    assert not any(n.endswith(("requirements.txt", "README.md", ".json", ".md")) for n in picked)


# --- file names ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("train.log", True),
    ("train_seed42.log", True),
    ("logs/train0.txt", True),
    ("logs_experiment/hybrid_s42.txt", True),
    ("log_10mins_seed-42.txt", True),
    ("ternary_log_42.txt", True),
    ("binary_log.txt", True),
    ("train_log_bpe_10min.txt", True),
    ("eval.log", True),
    ("requirements.txt", False),
    ("README.md", False),
    ("notes.txt", False),
    ("submission.json", False),
    ("train_gpt.py", False),
    ("logs/readme.txt", False),
])
def test_is_log_name(name, expected):
    assert is_log_name(name) is expected


# --- synthetic logs ------------------------------------------------------------------------------

SOURCE = '''"""Training script.

Prints lines such as
final_int8_zlib_roundtrip_exact val_loss:9.99999999 val_bpb:9.99999999
"""
import os

def main():
    log0(f"final_int8_zlib_roundtrip val_loss:{q_val_loss:.4f} val_bpb:{q_val_bpb:.4f}")
    log0(f"Total submission size int8+zlib: {total} bytes")
    log0("stopping_early: wallclock_cap train_time:1ms step:1/2")
seed:99
Total submission size int8+zlib: 1 bytes'''

ROOT_BODY = """val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path=./data/tokenizers/fineweb_1024_bpe.model
train_loader:dataset:fineweb10B_sp1024 train_shards:80
val_loader:shards pattern=./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin tokens:62021632
world_size:8 grad_accum_steps:1
train_batch_tokens:524288 train_seq_len:1024 iterations:20000 warmup_steps:20 max_wallclock_seconds:600.000
seed:{seed}
step:1/20000 train_loss:6.9 train_time:50ms step_avg:50.00ms
step:1200/20000 val_loss:2.0500 val_bpb:1.2100 train_time:600010ms step_avg:500.00ms
stopping_early: wallclock_cap train_time:600010ms step:1200/20000
Serialized model: 67000000 bytes
Code size: 50000 bytes
Total submission size: 67050000 bytes
Serialized model int8+zlib: 15000000 bytes (payload:17000000 raw_torch:17100000 payload_ratio:3.90x)
Total submission size int8+zlib: 15050000 bytes
final_int8_zlib_roundtrip val_loss:2.0600 val_bpb:1.2200 eval_time:1500ms
final_int8_zlib_roundtrip_exact val_loss:2.06001234 val_bpb:1.22001234"""


def root_log(seed: int = 1337) -> str:
    return "\n".join([SOURCE, SEPARATOR, "Running Python 3.12.3", "| nvidia-smi |", SEPARATOR,
                      ROOT_BODY.format(seed=seed)]) + "\n"


def test_embedded_source_never_matches():
    text = root_log()
    [r] = parse_log("train.log", text)
    assert r.embedded_source == SOURCE
    assert r.embedded_source_line == 1
    assert [p.label for p in r.phases] == ["step:1200/20000", "final_int8_zlib_roundtrip",
                                           "final_int8_zlib_roundtrip_exact"]
    assert v(r.seed) == 1337
    assert v(r.total_bytes) == 15050000
    first_body_line = SOURCE.count("\n") + 1 + 4 + 1
    assert r.val_tokens.line == first_body_line + 2
    assert r.score_phase.val_bpb == 1.22001234
    assert v(r.max_wallclock_seconds) == 600.0
    assert r.tokenizer_vocab == 1024
    assert r.family == "root"


def test_separator_inside_source_keeps_one_block():
    source = SOURCE.replace("Prints lines such as", "Prints lines such as\n" + SEPARATOR + "\nimport sys")
    text = root_log().replace(SOURCE, source)
    [r] = parse_log("train.log", text)
    assert r.embedded_source == source and r.embedded_source_line == 1
    assert [p.label for p in r.phases if p.is_final] == ["final_int8_zlib_roundtrip",
                                                         "final_int8_zlib_roundtrip_exact"]
    assert v(r.seed) == 1337


def test_source_after_hyperparameter_dump():
    text = "\n".join([SEPARATOR, "Hyperparameters:", "  seed: 7", "  vocab_size: 8192", SOURCE, SEPARATOR,
                      "Running Python 3.12", SEPARATOR, "val_tokens: 40540160",
                      "quantized val_loss:2.80000000 val_bpb:1.08000000 eval_time:8000ms"])
    [r] = parse_log("train_seed7.log", text)
    assert v(r.seed) == 7 and r.seed.line == 3
    assert r.embedded_source_line == 5
    assert r.embedded_source == SOURCE
    assert r.tokenizer_vocab == 8192
    assert [p.label for p in r.phases] == ["quantized"]
    assert r.notes == []


def test_timestamp_prefixes():
    lines = root_log(seed=5).split("\n")
    stamped = "\n".join(f"1776142348.{i % 1000:03d} {ln}" if ln else ln for i, ln in enumerate(lines))
    [r] = parse_log("train.log", stamped)
    [plain] = parse_log("train.log", root_log(seed=5))
    assert r.embedded_source_line == 1 and r.embedded_source == SOURCE
    assert v(r.seed) == 5
    assert [(p.label, p.val_bpb, p.line) for p in r.phases] == [(p.label, p.val_bpb, p.line) for p in plain.phases]
    assert r.total_bytes.line == plain.total_bytes.line
    assert r.total_bytes.text.startswith("1776142348.")  # evidence shows the file's own line


def test_crlf_and_nul():
    text = root_log(seed=3).replace("\n", "\r\n").replace("seed:3", "seed:3\x00")
    [r] = parse_log("train.log", text)
    [plain] = parse_log("train.log", root_log(seed=3))
    assert v(r.seed) == 3
    assert r.to_json() == plain.to_json()
    assert r.embedded_source == SOURCE


def test_rank_noise_and_torchrun_warnings():
    noise = "\n".join([
        "W0406 05:48:52.138000 4182076 torch/distributed/run.py:803] Setting OMP_NUM_THREADS environment variable",
        "[rank3]: Traceback (most recent call last):",
        "[rank3]: final_int8_zlib_roundtrip val_loss:0.1000 val_bpb:0.0500",
        "[rank3]: Total submission size int8+zlib: 1 bytes",
        "NCCL WARN something odd",
    ])
    text = ROOT_BODY.format(seed=1) + "\n" + noise + "\n"
    [r] = parse_log("train.log", text)
    assert [p.val_bpb for p in r.phases if p.is_final] == [1.22, 1.22001234]
    assert v(r.total_bytes) == 15050000


def test_subset_markers():
    text = "\n".join([
        "Hyperparameters:",
        "  val_token_limit: 0",
        "  val_doc_fraction: 0.5",
        "  seed: 1",
        "eval subset=0.25 of validation tokens",
        "VAL_TOKEN_LIMIT=1000000",
        "EVAL_SUBSET_TOKENS=0",
        "--- Hyperparameters ---",
        "seed=4 max_val_tokens=65536 val_subset=False",
        "final_roundtrip val_loss:3.0000 val_bpb:1.2000",
    ])
    [r] = parse_log("x.log", text)
    assert [(e.line, e.text) for e in r.subset_markers] == [
        (3, "val_doc_fraction: 0.5"),
        (5, "eval subset=0.25 of validation tokens"),
        (6, "VAL_TOKEN_LIMIT=1000000"),
        (9, "max_val_tokens=65536"),
    ]


def test_multi_run_log():
    text = root_log(seed=1) + root_log(seed=2) + "seed:3\nstep:1/10 train_loss:7.0 train_time:10ms step_avg:10.00ms\n"
    runs = parse_log("train.log", text)
    assert [v(r.seed) for r in runs] == [1, 2, 3]
    assert [r.embedded_source for r in runs] == [SOURCE, SOURCE, None]
    assert runs[0].score_phase.val_bpb == 1.22001234 and runs[1].score_phase.val_bpb == 1.22001234
    assert runs[0].score_phase.line == len(root_log(1).split("\n")) - 1
    assert [r.index for r in runs] == [0, 1, 2]
    assert runs[1].embedded_source_line == len(root_log(1).split("\n"))
    assert runs[2].score_phase is None and v(runs[2].train_time_ms) == 10
    assert runs[2].stop_reason is None


def test_new_format_minutes_and_timing_lines():
    text = "\n".join([
        "Hyperparameters:",
        "  max_wallclock_seconds: 600.0",
        "  world_size: 8",
        "train_shards: 80",
        "val_tokens: 47851520",
        "500/20000 train_loss: 2.5812 train_time: 0.8m tok/s: 8128673",
        "4000/20000 train_loss: 2.4117 train_time: 7.9m tok/s: 6658617",
        "4000/20000 val_loss: 2.4334 val_bpb: 1.1119",
        "ttt_lora:compile warmup done (153.3s)",
        "quantized_ttt_phased val_loss:2.33082656 val_bpb:1.06509678 eval_time:470022ms",
        "total_eval_time:470.0s",
        "serialize_wallclock: 41.2s",
        "artifact_production_wallclock: 901.5s (must be < 600.0)",
    ])
    [r] = parse_log("logs/train0.txt", text)
    assert v(r.train_time_ms) == 474000 and r.train_time_ms.line == 7
    assert v(r.step_stop) == 4000
    assert v(r.world_size) == 8 and v(r.max_wallclock_seconds) == 600.0
    assert v(r.compile_warmup_s) == 153.3 and v(r.total_eval_time_s) == 470.0
    assert v(r.artifact_production_wallclock_s) == 901.5
    assert [p.is_final for p in r.phases] == [False, True]
    assert r.family == "varlen-phased"


def test_ternary_sizes_and_params_line():
    text = "\n".join([
        "--- Hyperparameters ---",
        "iterations=10000 max_wallclock_seconds=600.0 vocab_size=8192",
        "Ternary | params:73685840 L:10 d:768 h:8 kv:4 ws:8 ga:1 s:42",
        "stopping_early: wallclock_cap train_time:599652ms step:6530/10000",
        "using: lzma",
        "artifact:15.92MB ternary:64880640(14239486B) fp:2513744(2537376B) code:70853",
        "budget:15993853/16000000 (15.99/16.00MB) FITS",
        "final_ternary_roundtrip val_loss:3.0570 val_bpb:1.1837",
        "temp_scaling optimal_T:0.90 eval_time:146ms",
        "final_sliding val_loss:2.9869 val_bpb:1.1565 (stride=16, T=0.90) eval_time:429311ms",
    ])
    [r] = parse_log("ternary_log_42.txt", text)
    assert (v(r.seed), v(r.world_size), r.tokenizer_vocab) == (42, 8, 8192)
    assert (v(r.code_bytes), v(r.total_bytes), r.model_tag) == (70853, 15993853, "ternary+lzma")
    assert v(r.step_stop) == 6530
    s = r.score_phase
    assert (s.label, s.stride, s.eval_time_ms) == ("final_sliding", 16, 429311.0)
    assert r.family == "ciprian"


def test_seed_from_file_name_and_mismatch_note():
    body = "final_int8_zlib_roundtrip val_loss:2.0000 val_bpb:1.2000\n"
    [r] = parse_log("logs_experiment/hybrid_seq8192_s42.txt", body)
    assert v(r.seed) == 42 and r.seed.line == 0
    [r] = parse_log("log_10mins_seed-9.txt", body)
    assert v(r.seed) == 9
    [r] = parse_log("train_seed5.log", "seed:6\n" + body)
    assert v(r.seed) == 6
    assert any("file name says seed 5" in n for n in r.notes)


def test_unqualified_total_only_after_compressed_model():
    root_style = "Serialized model: 900 bytes\nCode size: 100 bytes\nTotal submission size: 1000 bytes\n"
    [r] = parse_log("a.log", root_style)
    assert r.total_bytes is None
    dg_style = root_style + "Serialized model rdquant+zstd: 500 bytes\nTotal submission size: 600 bytes\n"
    [r] = parse_log("a.log", dg_style)
    assert v(r.total_bytes) == 600 and r.total_bytes.line == 5
    both = dg_style + "Total submission size int6+zstd: 650 bytes\n"
    [r] = parse_log("a.log", both)
    assert v(r.total_bytes) == 650


def test_tolerant_step_lines_and_generic_seed():
    text = "\n".join([
        "run config: lr=0.02 seed=31 batch=8",
        "step:50/100 [JEPA] train_loss:3.1 train_time:900ms step_avg:18.00ms",
        "step:100/100 val_loss:2.5000 val_bpb:1.5000 train_time:1800ms step_avg:18.00ms tok/s:123",
        "step:100 checkpoint saved",
    ])
    [r] = parse_log("a.log", text)
    assert v(r.seed) == 31
    assert [(p.label, p.val_bpb, p.is_final) for p in r.phases] == [("step:100/100", 1.5, False)]
    assert v(r.train_time_ms) == 1800 and v(r.step_stop) == 100 and r.step_stop.line == 3
    assert r.score_phase is None


def test_numeric_captures_required():
    text = "\n".join([
        "final_int8_zlib_roundtrip val_loss:nan val_bpb:nan",
        "final_int8_zlib_roundtrip val_loss:{x:.4f} val_bpb:{y:.4f}",
        "Total submission size int8+zlib: {total} bytes",
        "step:{step}/{n} val_loss:1.0 val_bpb:1.0 train_time:0ms",
    ])
    assert parse_log("a.log", text) == []


def test_noise_gives_no_runs():
    assert parse_log("a.log", "") == []
    assert parse_log("a.log", "hello\nworld\n" + SEPARATOR + "\n") == []


def test_long_lines_are_skipped():
    long = "final_int8_zlib_roundtrip val_loss:1.0000 val_bpb:0.5000 " + "x" * 1_000_000
    [r] = parse_log("a.log", long + "\nfinal_sliding val_loss:2.0000 val_bpb:1.1000\n")
    assert [p.label for p in r.phases] == ["final_sliding"]
    assert r.phases[0].line == 2


def test_garbage_bytes_around_real_lines():
    rng = random.Random(0)
    junk = bytes(rng.randrange(256) for _ in range(20000)).decode("utf-8", errors="replace")
    text = junk + "\nfinal_int6_sliding_window val_loss:1.9000 val_bpb:1.1200 stride:64 eval_time:70000ms\n" + junk
    runs = parse_log("a.log", text)
    assert len(runs) == 1
    assert runs[0].score_phase.val_bpb == 1.12 and runs[0].score_phase.stride == 64


@pytest.mark.slow  # about 5 s on an idle 2-core machine
def test_million_line_log():
    n = 1_000_000
    steps = "\n".join(f"step:{i}/{n} train_loss:2.5 train_time:{i * 3}ms step_avg:3.00ms" for i in range(1, n + 1))
    text = "seed:11\n" + steps + "\nfinal_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:1.10000000\n"
    [r] = parse_log("train.log", text)
    assert v(r.train_time_ms) == 3 * n and r.train_time_ms.line == n + 1
    assert v(r.step_stop) == n
    assert r.score_phase.line == n + 2


def test_notes_and_subset_markers_are_capped():
    text = "\n".join(f"gptq:reserving {i}s, effective={600000 - i}ms\nsubset={i + 1}" for i in range(300))
    [r] = parse_log("a.log", text)
    assert len(r.notes) == MAX_NOTES + 2  # the cap, the dropped-subset count, the dropped-notes count
    assert r.notes[-2:] == [f"{300 - MAX_SUBSET_MARKERS} further subset markers not listed",
                            f"{300 - MAX_NOTES} further notes dropped"]
    assert len(r.subset_markers) == MAX_SUBSET_MARKERS


def test_deterministic_json():
    text = root_log(seed=4) + root_log(seed=8)
    a = json.dumps([r.to_json() for r in parse_log("train.log", text)], sort_keys=True)
    b = json.dumps([r.to_json() for r in parse_log("train.log", text)], sort_keys=True)
    assert a == b


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_never_raises_on_arbitrary_text(text):
    runs = parse_log("fuzz.log", text)
    for r in runs:
        r.to_json()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([
    "seed:1", "step:1/2 val_loss:1.0 val_bpb:0.5 train_time:5ms", SEPARATOR, "import os", "def f():",
    "Total submission size: 5 bytes", "Serialized model int6+zstd: 3 bytes", "Hyperparameters:", "  seed: 2",
    "final_sliding val_loss:1.0 val_bpb:0.6", "stopping_early: wallclock_cap train_time:3ms",
    "[embedded source removed from this copy: 3 lines]", "--- Hyperparameters ---", "", "\r", "\x00",
]), max_size=40))
def test_never_raises_on_shuffled_log_lines(lines):
    runs = parse_log("fuzz.log", "\n".join(lines))
    assert [r.index for r in runs] == list(range(len(runs)))
