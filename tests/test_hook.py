"""The pre-commit hook: staged files -> their record folders -> one line each; a FAIL stops the commit."""

from __future__ import annotations

from pathlib import Path

import yaml

from auditor.cli import main
from auditor.commands.hook import record_folders
from test_ci import GOOD, TRACK, write_record

ROOT = Path(__file__).resolve().parents[1]


def test_files_map_to_their_record_folders_once():
    assert record_folders([f"records/{TRACK}/A/train_gpt.py", "README.md", f"records/{TRACK}/A/logs/s1.log",
                           f"records/{TRACK}/B/submission.json", f"records/{TRACK}/stray.log"]) == \
        [f"records/{TRACK}/A", f"records/{TRACK}/B"]


def test_hook_audits_staged_folders(tmp_path, monkeypatch, capsys):
    write_record(tmp_path, TRACK, "2026-05-01_Good", GOOD)
    write_record(tmp_path, TRACK, "2026-05-02_TooBig", GOOD, total=16_100_000)
    monkeypatch.chdir(tmp_path)
    assert main(["hook", "README.md"]) == 0 and capsys.readouterr().out == ""
    code = main(["hook", f"records/{TRACK}/2026-05-02_TooBig/submission.json",
                 f"records/{TRACK}/2026-05-01_Good/README.md"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"❌ FAIL records/{TRACK}/2026-05-02_TooBig: ") and "ARTIFACT_SIZE" in lines[0]
    assert lines[1] == f"✅ PASS records/{TRACK}/2026-05-01_Good"


def test_hook_definition_runs_this_command():
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))
    assert (hook["id"], hook["entry"], hook["language"], hook["pass_filenames"]) == \
        ("pgolf-audit", "auditor hook", "python", True)
