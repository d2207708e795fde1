"""Waivers and the audited repository's configuration (.auditor.toml): a waived finding keeps its data,
is shown with its reason and no longer counts toward the verdict; a waiver without a reason is a tool error."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.core.grades import Verdict, verdict_of
from auditor.core.model import Finding
from auditor.core.waivers import Waiver, apply_waivers
from reports.json_doc import validator
from tests.recordkit import write_record

TRACK = "track_10min_16mb"
TOO_BIG = f"records/{TRACK}/2026-05-02_TooBig"
WAIVER = '''[[waiver]]
rule = "ARTIFACT_SIZE"
folder = "records/track_10min_16mb/2026-05-02_*"
reason = "counted under the old cap by the maintainers"
path = "train_seed4*.log"

[[waiver]]
rule = "ARTIFACT_SIZE"
folder = "*_TooBig"
reason = "the other seeds too"
'''
EXTRA = '''
[[waiver]]
rule = "NO_NETWORK"
folder = "*"
reason = "nothing to waive"

[[waiver]]
rule = "SEEDS"
folder = "*"
reason = "ran out"
expires = "2020-01-31"
'''


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    (tmp_path / ".git").mkdir()  # the repository root: the config search stops here
    write_record(tmp_path, "2026-05-02_TooBig", log_kwargs={"model_bytes": 16_100_000})
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_without_waivers_the_folder_fails(repo, capsys):
    code, out, _ = _run(capsys, "run", TOO_BIG)
    assert code == 1 and "**Verdict: ❌ FAIL** — 3 fail" in out


def test_a_waiver_is_shown_with_its_reason_and_the_verdict_changes(repo, capsys):
    (repo / ".auditor.toml").write_text(WAIVER + EXTRA)
    code, out, _ = _run(capsys, "run", TOO_BIG)
    assert code == 0
    assert "**Verdict: ✅ PASS** — 0 fail, 0 to review, 3 info, 15 pass, 3 waived" in out
    section = out.split("### Waived by a maintainer\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section[0].startswith("- 🏳️ **ARTIFACT_SIZE** (fail) waived: the other seeds too — the finding: "
                                 "train\\_seed1337.log, seed 1337: logged total is 16,100,197 bytes")
    assert section[2].startswith("- 🏳️ **ARTIFACT_SIZE** (fail) waived: counted under the old cap by the "
                                 "maintainers — the finding: train\\_seed42.log")
    assert section[3] == ("- ℹ️ the waiver of **NO_NETWORK** for `*` (.auditor.toml waiver 3) matched no fail "
                          "or warn finding: nothing to waive")
    assert section[4] == ("- ℹ️ the waiver of **SEEDS** for `*` (.auditor.toml waiver 4) expired on 2020-01-31 "
                          "and was not applied: ran out")
    assert "| `ARTIFACT_SIZE` | 🏳️ waived |" in out


def test_waivers_in_the_json_document(repo, capsys):
    (repo / ".auditor.toml").write_text(WAIVER + EXTRA)
    code, out, _ = _run(capsys, "run", TOO_BIG, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["verdict"] == "PASS" and doc["schema_version"] == "1.1"
    size = [f for f in doc["findings"] if f["rule"] == "ARTIFACT_SIZE" and f["severity"] == "fail"]
    assert [f["waived"] for f in size] == ["the other seeds too", "the other seeds too",
                                           "counted under the old cap by the maintainers"]
    assert size[0]["data"]  # the finding keeps its data
    assert [(w["rule"], w["status"], w["findings"]) for w in doc["waivers"]] == [
        ("ARTIFACT_SIZE", "applied", 1), ("ARTIFACT_SIZE", "applied", 2), ("NO_NETWORK", "unmatched", 0),
        ("SEEDS", "expired", 0)]
    rules = {r["id"]: r["status"] for r in doc["rules"]}
    assert rules["ARTIFACT_SIZE"] == "waived"
    assert all(f["waived"] is None for f in doc["findings"] if f["rule"] != "ARTIFACT_SIZE")


def test_a_waiver_for_another_folder_does_not_apply(repo, capsys):
    (repo / ".auditor.toml").write_text(WAIVER.replace("2026-05-02_*", "2026-04-*").replace("*_TooBig", "x"))
    code, out, _ = _run(capsys, "run", TOO_BIG, "--format", "json")
    assert code == 1 and json.loads(out)["waivers"] == []


def test_waive_flag_and_no_config(repo, capsys):
    code, _, _ = _run(capsys, "run", TOO_BIG, "--waive", "artifact_size:records/*=known, see the PR")
    assert code == 0
    (repo / ".auditor.toml").write_text(WAIVER)
    assert _run(capsys, "run", TOO_BIG, "--no-config")[0] == 1


@pytest.mark.parametrize("text, message", [
    ('[[waiver]]\nrule = "SEEDS"\nfolder = "*"\n', "the waiver of SEEDS has no reason; every waiver needs one"),
    ('[[waiver]]\nrule = "SEEDS"\nfolder = "*"\nreason = "  "\n', "the waiver of SEEDS has no reason"),
    ('[[waiver]]\nrule = "NOPE"\nfolder = "*"\nreason = "x"\n', "unknown rule 'NOPE' in a waiver"),
    ('[[waiver]]\nrule = "SEEDS"\nreason = "x"\n', "the waiver of SEEDS needs a folder glob"),
    ('[[waiver]]\nrule = "SEEDS"\nfolder = "*"\nreason = "x"\nexpires = "soon"\n', "expected YYYY-MM-DD"),
    ('[[waiver]]\nrule = "SEEDS"\nfolder = "*"\nreason = "x"\nwhy = 1\n', "unknown waiver key 'why'"),
    ('strikt = true\n', "unknown key 'strikt'"),
    ('fail_on = "SEEDS"\n', "'fail_on' must be a list of rule IDs"),
    ('as_of = "yesterday"\n', "'as_of' must be"),
    ('[[waiver]\n', "not valid TOML"),
])
def test_a_broken_config_is_one_line_and_exit_2(repo, capsys, text, message):
    (repo / ".auditor.toml").write_text(text)
    code, out, err = _run(capsys, "run", TOO_BIG)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("auditor: error: ") and message in err


def test_waive_flag_needs_a_reason(repo, capsys):
    code, _, err = _run(capsys, "run", TOO_BIG, "--waive", "ARTIFACT_SIZE")
    assert code == 2 and "a reason is required" in err and err.count("\n") == 1


def test_config_option_and_as_of_policy(repo, capsys, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cfg") / "elsewhere.toml"
    cfg.write_text('as_of = "2026-03-01"\n' + WAIVER)
    code, out, _ = _run(capsys, "run", TOO_BIG, "--config", str(cfg), "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["judged"]["date"] == "2026-03-01"
    assert doc["judged"]["date_source"] == 'as_of = "2026-03-01" in elsewhere.toml'
    assert doc["waivers"][0]["source"] == "elsewhere.toml waiver 1"
    code, out, _ = _run(capsys, "run", TOO_BIG, "--config", str(cfg), "--as-of", "2026-05-02", "--format", "json")
    assert json.loads(out)["judged"]["date"] == "2026-05-02"  # the flag wins
    code, _, err = _run(capsys, "run", TOO_BIG, "--config", str(cfg) + ".missing")
    assert code == 2 and "cannot be read" in err


def test_apply_waivers_marks_only_fail_and_warn_findings_of_the_rule():
    fs = [Finding("SEEDS", "fail", "two seeds"), Finding("SEEDS", "pass", "ok"), Finding("C1_CAUSAL", "warn", "w"),
          Finding("C1_CAUSAL", "fail", "m", confidence="medium")]
    assert verdict_of(fs) is Verdict.FAIL
    out = apply_waivers(fs, [Waiver("SEEDS", "*", "r1"), Waiver("C1_CAUSAL", "x*", "r2", expires="2026-01-01")],
                        ("x/y", "y"), "2026-02-01")
    assert [f.waived for f in fs] == ["r1", None, None, None]
    assert [(o.status, o.findings) for o in out] == [("applied", 1), ("expired", 0)]
    assert verdict_of(fs) is Verdict.NEEDS_REVIEW
    apply_waivers(fs, [Waiver("C1_CAUSAL", "*", "r3", message="m")], ("y",), None)
    assert [f.waived for f in fs] == ["r1", None, None, "r3"]


# -- auditor ci: the configuration comes from the base revision, never from the PR head --------------

def _git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, HOME=str(repo),
               GIT_AUTHOR_DATE="2026-05-02T10:00:00+00:00", GIT_COMMITTER_DATE="2026-05-02T10:00:00+00:00")
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
                          cwd=repo, env=env, capture_output=True, text=True, check=True).stdout


def _ci_repo(root: Path, base_config: str | None, head_config: str | None) -> Path:
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("# golf\n")
    if base_config is not None:
        (root / ".auditor.toml").write_text(base_config)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    _git(root, "checkout", "-q", "-b", "pr")
    write_record(root, "2026-05-02_TooBig", log_kwargs={"model_bytes": 16_100_000})
    if head_config is not None:
        (root / ".auditor.toml").write_text(head_config)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "pr")
    return root


def test_ci_applies_the_base_revisions_waivers(tmp_path, capsys):
    repo = _ci_repo(tmp_path / "r", WAIVER, None)
    code, out, _ = _run(capsys, "ci", "--repo", str(repo), "--base", "main", "--head", "pr", "--format", "json",
                        "--quiet")
    doc = json.loads(out)
    assert code == 0 and doc["verdict"] == "PASS" and doc["schema_version"] == "1.1"
    assert doc["policy"]["config"] == ".auditor.toml"
    validator("ci").validate(doc)
    assert [w["status"] for w in doc["folders"][0]["audit"]["waivers"]] == ["applied", "applied"]
    code, out, _ = _run(capsys, "ci", "--repo", str(repo), "--base", "main", "--head", "pr", "--quiet")
    assert "**Waived by a maintainer**" in out and "counted under the old cap by the maintainers" in out


def test_ci_ignores_a_config_the_pr_adds(tmp_path, capsys):
    repo = _ci_repo(tmp_path / "r", None, WAIVER + 'strict = false\n')
    code, out, _ = _run(capsys, "ci", "--repo", str(repo), "--base", "main", "--head", "pr", "--format", "json",
                        "--quiet")
    doc = json.loads(out)
    assert code == 1 and doc["verdict"] == "FAIL" and doc["policy"]["config"] is None
    assert doc["folders"][0]["audit"]["waivers"] == []


def test_ci_defaults_from_the_config(tmp_path, capsys):
    repo = _ci_repo(tmp_path / "r", 'fail_on = ["CLAIM_CONSISTENCY"]\nstrict = true\n' + WAIVER, None)
    code, out, _ = _run(capsys, "ci", "--repo", str(repo), "--base", "main", "--head", "pr", "--format", "json",
                        "--quiet")
    doc = json.loads(out)
    assert doc["policy"]["strict"] is True and doc["policy"]["fail_on"] == ["CLAIM_CONSISTENCY"]
    assert code == doc["exit_code"]
