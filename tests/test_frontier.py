"""`auditor frontier`: every folder of a track in one call, from a directory or a git revision."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import auditor.ci.track as track_mod
from auditor.cli import main
from reports.json_doc import validator
from tests.recordkit import write_record

ROOT = Path(__file__).resolve().parents[1]
TRACK_DIR = ROOT.parent / "shared" / "corpus" / "merged" / "records" / "track_10min_16mb"


def _track(root: Path) -> Path:
    write_record(root, "2026-03-20_First", seeds={1: 1.2001, 2: 1.2003, 3: 1.2002})
    write_record(root, "2026-03-20_SameDayWorse", seeds={1: 1.2101, 2: 1.2103, 3: 1.2102})
    write_record(root, "2026-03-25_Better", seeds={1: 1.1001, 2: 1.1003, 3: 1.1002})
    write_record(root, "2026-03-26_TooBig", seeds={1: 1.0901, 2: 1.0903, 3: 1.0902},
                 log_kwargs={"model_bytes": 16_100_000})
    return root / "records" / "track_10min_16mb"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_frontier_of_a_directory(tmp_path, capsys):
    d = _track(tmp_path)
    code, out, err = _run(capsys, "frontier", str(d), "--no-config")
    assert code == 0
    assert err.splitlines()[0] == "auditor frontier: [1/4] 2026-03-20_First"
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert lines[1] == "| ★ `2026-03-20_First` | 2026-03-20 | 1.20020000 | ✅ PASS | 0 | 0 | — |"
    assert lines[2] == "| `2026-03-20_SameDayWorse` | 2026-03-20 | 1.21020000 | ✅ PASS | 0 | 0 | — |"
    assert lines[3].startswith("| ★ `2026-03-25_Better` | 2026-03-25 | 1.10020000 | ✅ PASS |")
    assert lines[4].startswith("| `2026-03-26_TooBig` | 2026-03-26 | 1.09020000 | ❌ FAIL | 3 | ")
    assert "ARTIFACT_SIZE" in lines[4]
    assert "4 folder(s) audited in date order: 3 PASS, 0 NEEDS_REVIEW, 1 FAIL." in out
    assert "Chronological frontier of passing records: 2026-03-20\\_First → 2026-03-25\\_Better." in out
    code, again, _ = _run(capsys, "frontier", str(d), "--no-config", "--quiet")
    assert again == out  # byte-identical


def test_frontier_json_validates_and_compares_with_earlier_dates(tmp_path, capsys):
    d = _track(tmp_path)
    code, out, _ = _run(capsys, "frontier", str(d), "--format", "json", "--quiet", "--no-config")
    doc = json.loads(out)
    validator("frontier").validate(doc)
    assert doc["frontier"] == ["2026-03-20_First", "2026-03-25_Better"]
    assert [r["compared_with"] for r in doc["folders"]] == [None, None, "2026-03-20_First", "2026-03-25_Better"]
    assert doc["folders"][3]["path"] == "records/track_10min_16mb/2026-03-26_TooBig"
    assert doc["folders"][3]["blocking_rules"][0] == "ARTIFACT_SIZE"


def test_frontier_with_a_waiver(tmp_path, capsys):
    d = _track(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".auditor.toml").write_text('[[waiver]]\nrule = "ARTIFACT_SIZE"\nfolder = "records/*/2026-03-26_*"\n'
                                            'reason = "accepted by the maintainers"\n')
    code, out, _ = _run(capsys, "frontier", str(d), "--format", "json", "--quiet")
    row = json.loads(out)["folders"][3]
    assert (row["verdict"], row["waived"], row["must_change"]) == ("PASS", 3, 0)


def _git(repo: Path, *args: str) -> None:
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, HOME=str(repo))
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
                   cwd=repo, env=env, capture_output=True, check=True)


def test_frontier_from_a_git_revision_equals_the_directory(tmp_path, capsys):
    d = _track(tmp_path)
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "records")
    code, from_git, _ = _run(capsys, "frontier", "track_10min_16mb", "--repo", str(tmp_path), "--rev", "main",
                             "--format", "json", "--quiet")
    code2, from_dir, _ = _run(capsys, "frontier", str(d), "--format", "json", "--quiet")
    g, f = json.loads(from_git), json.loads(from_dir)
    assert code == code2 == 0 and g["source"] == "git" and len(g["rev"]) == 40
    assert g["folders"] == f["folders"]
    code, _, err = _run(capsys, "frontier", "track_nope", "--repo", str(tmp_path), "--quiet")
    assert code == 2 and "records/track_nope: no such folder" in err


def test_frontier_is_interruptible(tmp_path, capsys, monkeypatch):
    d = _track(tmp_path)
    real = track_mod.audit_submission
    calls = []

    def audit(sub, opts):
        calls.append(sub.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(sub, opts)

    monkeypatch.setattr(track_mod, "audit_submission", audit)
    code, out, err = _run(capsys, "frontier", str(d), "--no-config", "--format", "json")
    doc = json.loads(out)
    assert code == 130 and doc["interrupted"] is True and doc["audited"] == 2 and doc["folders_found"] == 4
    assert "interrupted after 2 folder(s)" in err


@pytest.mark.skipif(not TRACK_DIR.is_dir(), reason="../shared/corpus is not here")
def test_frontier_of_the_merged_corpus(capsys):
    code, out, _ = _run(capsys, "frontier", str(TRACK_DIR), "--format", "json", "--quiet", "--no-config")
    doc = json.loads(out)
    validator("frontier").validate(doc)
    assert code == 0 and doc["audited"] == 25
    assert doc["counts"] == {"PASS": 18, "NEEDS_REVIEW": 5, "FAIL": 2}
    assert doc["frontier"][-1] == "2026-04-22_SP8192_CaseOps_GatedAttn_QuantGate_Loop45_PhasedTTT_MLPClip12"
