"""Each evidence rule against fixture folders built for it: violations and passing look-alikes."""

import json

import pytest

from auditor.engine import audit_folder
from auditor.commands._common import load_manifest  # noqa: F401  (import check of the CLI helpers)
from recordkit import SP8192_TOKENS, write_record
from auditor.core.contract import AuditOptions, Reference


def findings(folder, rule, options=None):
    result = audit_folder(str(folder), options)
    return result, [f for f in result.findings if f.rule == rule]


def severities(fs):
    return sorted(f.severity for f in fs)


def test_clean_record_passes(tmp_path):
    result, _ = findings(write_record(tmp_path), "FILES")
    assert result.verdict == "PASS"
    assert {f.severity for f in result.findings} <= {"pass", "info"}


@pytest.mark.parametrize("missing,needle", [
    ("README.md", "no README.md"),
    ("submission.json", "no submission.json"),
    ("train_gpt.py", "no train_gpt.py"),
])
def test_files_missing_piece_fails(tmp_path, missing, needle):
    folder = write_record(tmp_path)
    (folder / missing).unlink()
    result, fs = findings(folder, "FILES")
    assert result.verdict == "FAIL" and any(needle in f.message and f.severity == "fail" for f in fs)


def test_files_no_logs_fails(tmp_path):
    folder = write_record(tmp_path)
    for p in folder.glob("*.log"):
        p.unlink()
    _, fs = findings(folder, "FILES")
    assert any(f.severity == "fail" and "no train log" in f.message for f in fs)


def test_artifact_over_cap_on_one_seed_fails(tmp_path):
    folder = write_record(tmp_path, per_seed_kwargs={1337: {"model_bytes": 16_020_000}})
    result, fs = findings(folder, "ARTIFACT_SIZE")
    [fail] = [f for f in fs if f.severity == "fail"]
    assert "seed 1337" in fail.message and fail.data["logged_total"] == 16_020_000 + len(
        (folder / "train_gpt.py").read_bytes())
    assert fail.evidence[0].path == "train_seed1337.log" and fail.evidence[0].line == 17
    assert result.verdict == "FAIL"


def _incompressible(n_lines: int) -> str:
    """Readable source that no minifier or compressor shrinks much (distinct random literals)."""
    import random

    rng = random.Random(7)
    return "".join(f'K{i} = "{rng.getrandbits(256):064x}"\n' for i in range(n_lines))


def test_artifact_fits_only_with_compressed_code_is_a_warning(tmp_path):
    big_script = _incompressible(600)  # ~50,000 bytes that stay ~30,000 after minify + lzma + base85
    folder = write_record(tmp_path, script=big_script,
                          log_kwargs={"model_bytes": 15_975_000, "code_bytes": 20_000},
                          meta={"bytes_total": 15_995_000})
    _, fs = findings(folder, "ARTIFACT_SIZE")
    warns = [f for f in fs if f.severity == "warn"]
    assert len(warns) == 3 and "shipped" in warns[0].message
    assert warns[0].data["conventions"]["shipped code"] == 15_975_000 + len(big_script)
    assert warns[0].data["conventions"]["reproduced compressed code"] > 16_000_000


def test_artifact_over_the_cap_as_logged_fits_as_the_records_count_code(tmp_path):
    """The logged total counts the readable script; counted as the records count code (minify + lzma +
    base85 wrapper, reproduced here from the shipped file) the artifact fits: info saying how, no fail."""
    script = "# a comment the minifier drops\n" * 2000 + "print('ok')\n"
    folder = write_record(tmp_path, script=script,
                          log_kwargs={"model_bytes": 15_990_000, "code_bytes": len(script)},
                          meta={"bytes_total": 15_990_100})
    _, fs = findings(folder, "ARTIFACT_SIZE")
    assert "fail" not in severities(fs) and "warn" not in severities(fs)
    infos = [f for f in fs if f.severity == "info" and "as the records count code" in f.message]
    assert len(infos) == 3
    rep = infos[0].data["conventions"]["reproduced compressed code"]
    assert 15_990_000 < rep < 15_990_200 and infos[0].data["ruling"] == "COMPRESSED_CODE"


def test_exec_shim_counts_the_target_file(tmp_path):
    target = _incompressible(300)
    folder = write_record(tmp_path, script='exec(open("train_gpt_decode.py").read())\n',
                          log_kwargs={"model_bytes": 15_995_000, "code_bytes": 40})
    (folder / "train_gpt_decode.py").write_text(target)
    _, fs = findings(folder, "ARTIFACT_SIZE")
    assert any(f.severity == "warn" and "train_gpt_decode.py" in f.message for f in fs)


def test_train_time_over_cap_fails_and_overshoot_is_graded_by_date(tmp_path):
    """602 s fails at any date; a sub-second overshoot of the per-step cap check fails from the strict
    ruling of 2026-05-02 on and is info before it (early merged records show such overshoots)."""
    kw = {42: {"train_ms": 602_048}, 2025: {"train_ms": 600_028}}
    _, fs = findings(write_record(tmp_path / "a", per_seed_kwargs=kw), "TRAIN_TIME")
    assert severities(fs) == ["fail", "info"]
    assert "602,048 ms" in [f for f in fs if f.severity == "fail"][0].message
    assert [f for f in fs if f.severity == "info"][0].message.startswith("predates the ruling of 2026-05-02")
    _, fs = findings(write_record(tmp_path / "b", name="2026-05-03_Strict", per_seed_kwargs=kw), "TRAIN_TIME")
    assert severities(fs) == ["fail", "fail"]


def test_train_time_non_record_is_info(tmp_path):
    folder = write_record(tmp_path, track="track_non_record_16mb", log_kwargs={"train_ms": 14_400_000})
    _, fs = findings(folder, "TRAIN_TIME")
    assert {f.severity for f in fs} == {"info"}


def test_eval_time_sums_final_phases(tmp_path):
    folder = write_record(tmp_path, log_kwargs={"eval_ms": 595_000})
    _, fs = findings(folder, "EVAL_TIME")
    # 8.159 s quantized + 595 s sliding = 603.159 s; the pre-quant diagnostic is not counted
    assert severities(fs) == ["fail", "fail", "fail"]
    assert fs[0].data["eval_seconds"] == 603.159


def test_full_val_subset_count_fails(tmp_path):
    folder = write_record(tmp_path, log_kwargs={"tokens": 8_000_000})
    _, fs = findings(folder, "FULL_VAL")
    assert severities(fs) == ["fail"] * 3 and "(19.7%)" in fs[0].message


def test_full_val_subset_marker_fails(tmp_path):
    folder = write_record(tmp_path, log_kwargs={"extra_lines": ["ppm_mix: subset=5000000 tokens"]})
    _, fs = findings(folder, "FULL_VAL")
    assert any(f.severity == "fail" and "subset" in f.message for f in fs)


def test_full_val_with_manifest(tmp_path):
    folder = write_record(tmp_path, log_kwargs={"tokens": 123_456})
    options = AuditOptions(val_manifest={"val_tokens": 123_456})
    _, fs = findings(folder, "FULL_VAL", options)
    assert severities(fs) == ["pass"]


def test_bpb_bytes_double_space_signature(tmp_path):
    # the logged loss is consistent with 17% more bytes than the validation text holds
    from recordkit import loss_for

    seeds = {42: 1.0, 1337: 1.001, 2025: 1.002}
    kwargs = {s: {"loss": loss_for(b, val_bytes=151_078_222 * 1.17)} for s, b in seeds.items()}
    folder = write_record(tmp_path, seeds=seeds, per_seed_kwargs=kwargs)
    _, fs = findings(folder, "BPB_BYTES")
    assert severities(fs) == ["fail"] * 3
    assert "leading space counted twice" in fs[0].message
    assert fs[0].data["relative_difference"] == pytest.approx(0.17, abs=1e-4)


def test_seeds_two_seeds_fail_record(tmp_path):
    folder = write_record(tmp_path, seeds={1: 1.08, 2: 1.081})
    _, fs = findings(folder, "SEEDS")
    assert severities(fs) == ["fail"] and fs[0].data["seeds"] == [1, 2]


def test_seeds_listed_without_log_warns(tmp_path):
    folder = write_record(tmp_path, meta={"seeds": [42, 1337, 2025, 7]})
    _, fs = findings(folder, "SEEDS")
    assert severities(fs) == ["warn"] and fs[0].data["missing"] == [7]


def test_claim_not_backed_by_logs_fails(tmp_path):
    folder = write_record(tmp_path, claim=1.0700)
    result, fs = findings(folder, "CLAIM_CONSISTENCY")
    assert severities(fs) == ["fail"] and fs[0].data["log_mean"] == 1.0814
    assert result.verdict == "FAIL"


def test_claim_equal_to_an_earlier_final_line_is_adopted(tmp_path):
    # quantized (non-sliding) lines are bpb + 0.016: the claim reports that evaluation
    folder = write_record(tmp_path, claim=1.0974)
    result, fs = findings(folder, "CLAIM_CONSISTENCY")
    assert severities(fs) == ["info", "pass"] and "`quantized` lines" in fs[0].message
    [ev] = [f for f in result.findings if f.rule == "EVAL_TIME" and f.severity == "pass"]
    assert ev.data["longest_s"] == 8.159


def test_claim_equal_to_a_diagnostic_line_warns(tmp_path):
    # pre-quantization post-ema lines are bpb - 0.004 (a diagnostic, not a score)
    folder = write_record(tmp_path, claim=1.0774)
    _, fs = findings(folder, "CLAIM_CONSISTENCY")
    assert severities(fs) == ["warn"] and "`pre-quantization post-ema` lines" in fs[0].message


def test_val_loss_holding_bpb_is_flagged(tmp_path):
    folder = write_record(tmp_path, meta={"val_bpb": None})
    doc = json.loads((folder / "submission.json").read_text())
    doc.pop("val_bpb", None)
    doc["val_loss"] = 1.0814
    (folder / "submission.json").write_text(json.dumps(doc))
    _, fs = findings(folder, "CLAIM_CONSISTENCY")
    assert any("holds a BPB value" in f.message for f in fs)


def test_logged_code_size_differs_from_shipped(tmp_path):
    """An edited script is a note; what decides is whether the edit changes the cap (ARTIFACT_SIZE
    recomputes with the shipped bytes) or what the code rules find (the embedded-source check)."""
    folder = write_record(tmp_path, log_kwargs={"code_bytes": 50_919})
    _, fs = findings(folder, "CLAIM_CONSISTENCY")
    [note] = [f for f in fs if "50,919" in f.message]
    assert note.severity == "info" and note.data["logged"] == 50_919


def test_no_val_in_train_fingerprint(tmp_path):
    folder = write_record(tmp_path, log_kwargs={"train_shards": 1499})
    _, fs = findings(folder, "NO_VAL_IN_TRAIN")
    assert severities(fs) == ["warn"] * 3 and fs[0].data["train_shards"] == 1499


def test_significance_practice_and_readme_bars(tmp_path):
    folder = write_record(tmp_path)  # mean 1.0814, sd 0.0002
    ref = Reference("frontier", val_bpb=1.0830, seed_bpbs=[1.0828, 1.0830, 1.0832])
    _, fs = findings(folder, "SIGNIFICANCE", AuditOptions(reference=ref))
    practice, readme = fs if "practice" in fs[0].message else fs[::-1]
    assert practice.severity == "pass" and practice.data["practice_p"] < 0.01
    assert readme.severity == "info" and readme.data["gain_nats"] == pytest.approx(0.0016 / 0.387131, rel=1e-3)


def test_significance_not_better_fails(tmp_path):
    folder = write_record(tmp_path)
    ref = Reference("frontier", val_bpb=1.0800)
    _, fs = findings(folder, "SIGNIFICANCE", AuditOptions(reference=ref))
    assert any(f.severity == "fail" and "practice" in f.message for f in fs)


def test_val_tokens_constant_is_sp8192():
    assert SP8192_TOKENS == 40_540_160


def test_readme_headline_differing_from_the_claim_warns(tmp_path):
    readme = "# Record\n\n| Pre-quant val_bpb | 1.0950 |\n\n**val_bpb: 1.0790** (3 seeds)\n"
    folder = write_record(tmp_path, readme=readme)
    _, fs = findings(folder, "CLAIM_CONSISTENCY")
    [w] = [f for f in fs if f.severity == "warn"]
    assert w.data == {"readme_bpb": 1.079, "claimed": 1.0814} and w.evidence[0].line == 5


def test_readme_stating_the_rounded_claim_passes(tmp_path):
    folder = write_record(tmp_path, readme="# Record\n\nval_bpb 1.0814 (mean of 3 seeds)\n")
    _, fs = findings(folder, "CLAIM_CONSISTENCY")
    assert severities(fs) == ["pass"]
