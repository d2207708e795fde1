"""The public CLI end to end: exit codes, formats, determinism, one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from auditor.cli import main
from recordkit import write_record


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_run_pass_exit_zero_and_markdown(tmp_path, capsys):
    folder = write_record(tmp_path)
    assert main(["run", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "**Verdict: ✅ PASS**" in out and "| `ARTIFACT_SIZE` | ✅ pass |" in out
    assert "| `train_seed42.log` | 42 | 588.0 s |" in out


def test_run_fail_exit_one_and_json_shape(tmp_path, capsys):
    folder = write_record(tmp_path, per_seed_kwargs={42: {"model_bytes": 16_100_000}})
    assert main(["run", str(folder), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "FAIL"
    assert set(doc) >= {"verdict", "submission", "runs", "findings", "tool"}
    f = next(f for f in doc["findings"] if f["rule"] == "ARTIFACT_SIZE" and f["severity"] == "fail")
    assert f["evidence"][0] == {"path": "train_seed42.log", "line": 17,
                                "text": "Total submission size quantized+brotli: 16100197 bytes"}


def test_needs_review_exit_three(tmp_path):
    # one seed evaluated on a different validation token count: one configuration? (SEEDS warn)
    folder = write_record(tmp_path, per_seed_kwargs={42: {"tokens": 40_540_160 - 2048}})
    assert main(["run", str(folder), "--out", str(tmp_path / "r.md")]) == 3
    assert "NEEDS_REVIEW" in (tmp_path / "r.md").read_text()


def test_bad_path_is_one_line_exit_two(tmp_path):
    r = run_cli("run", str(tmp_path / "missing"))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "no such folder" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_option_is_exit_two():
    r = run_cli("run")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_output_is_byte_identical_across_runs_and_environments(tmp_path):
    folder = write_record(tmp_path)
    a = run_cli("run", str(folder), "--format", "json", env={"TZ": "UTC", "LC_ALL": "C"})
    b = run_cli("run", str(folder), "--format", "json", env={"TZ": "Asia/Tokyo", "LC_ALL": "C.UTF-8"})
    c = run_cli("run", str(folder), env={"TZ": "UTC"})
    d = run_cli("run", str(folder), env={"TZ": "America/Los_Angeles"})
    assert a.stdout == b.stdout and c.stdout == d.stdout and a.returncode == 0


def test_rules_list_and_explain(capsys):
    assert main(["rules"]) == 0
    listing = capsys.readouterr().out
    for rid in ("FILES", "ARTIFACT_SIZE", "TRAIN_TIME", "EVAL_TIME", "FULL_VAL", "BPB_BYTES", "SEEDS",
                "SIGNIFICANCE", "CLAIM_CONSISTENCY", "NO_VAL_IN_TRAIN", "SUBMISSION_JSON"):
        assert rid in listing
    assert main(["rules", "artifact_size"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("ARTIFACT_SIZE: Artifact within 16,000,000 bytes on every seed")
    assert "https://github.com/openai/parameter-golf/pull/1835" in text


def test_rules_unknown_id_exit_two(capsys):
    assert main(["rules", "NOPE"]) == 2
    assert "unknown rule 'NOPE'" in capsys.readouterr().err


def test_against_folder_sets_reference(tmp_path, capsys):
    base = write_record(tmp_path / "a", seeds={1: 1.0900, 2: 1.0902, 3: 1.0904})
    new = write_record(tmp_path / "b")
    assert main(["run", str(new), "--against", str(base), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["reference"]["val_bpb"] == pytest.approx(1.0902)
    [practice] = [f for f in doc["findings"] if f["rule"] == "SIGNIFICANCE" and "practice" in f["message"]]
    assert practice["severity"] == "pass" and practice["data"]["delta_bpb"] == pytest.approx(0.0088)


def test_review_prints_markdown(tmp_path, capsys):
    folder = write_record(tmp_path)
    assert main(["review", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("## Parameter Golf audit:")
