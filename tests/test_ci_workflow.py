"""The action and the example workflows: a verdict the PR cannot change, pinned, linted, in step with the CLI.

The gating workflow runs on `pull_request_target` (the base branch's copy of the file) with the
minimum permissions; the gauntlet, which executes PR code, is a `pull_request` workflow with a
read-only token. zizmor, actionlint and the GitHub workflow/action JSON schemas (check-jsonschema's
vendored copies) run when installed (the `test` extra installs them; the tests skip otherwise).
A simulated `pull_request_target` run on a throw-away repository runs the steps' own shell code.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.cli import build_parser
from test_ci import GOOD, TRACK, commit, git, write_record

ROOT = Path(__file__).resolve().parents[1]
GATE = ROOT / ".github" / "workflows" / "audit-records.yml"
GAUNTLET = ROOT / ".github" / "workflows" / "audit-records-gauntlet.yml"
ACTION = ROOT / "action.yml"
FILES = [ACTION, GATE, GAUNTLET]
yaml = pytest.importorskip("yaml")
PLACEHOLDER = "REPLACE-ME/pgolf-auditor@0000000000000000000000000000000000000000"


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text("utf-8"))
    if True in doc:  # YAML 1.1 reads `on` as True
        doc["on"] = doc.pop(True)
    return doc


def steps(doc: dict) -> list[dict]:
    if "runs" in doc:
        return doc["runs"]["steps"]
    return [s for job in doc["jobs"].values() for s in job["steps"]]


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' installs it)")
    return found


def test_gate_runs_from_the_base_branch_with_minimum_permissions():
    doc = load(GATE)
    assert list(doc["on"]) == ["pull_request_target"]
    assert doc["permissions"] == {}
    job = doc["jobs"]["audit"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write", "security-events": "write"}
    checkout = job["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"] == {"ref": "${{ github.event.pull_request.base.sha }}", "fetch-depth": 0,
                                "persist-credentials": False}
    text = GATE.read_text("utf-8")
    assert "allow-unsafe-pr-checkout" not in text and "upload-artifact" not in text and "download-artifact" not in text


def test_gauntlet_is_opt_in_read_only_pull_request():
    doc = load(GAUNTLET)
    assert list(doc["on"]) == ["pull_request"] and doc["permissions"] == {}
    job = doc["jobs"]["gauntlet"]
    assert job["permissions"] == {"contents": "read"}
    assert job["if"] == "${{ vars.AUDITOR_GAUNTLET == 'true' }}"
    assert [s.get("with", {}).get("gauntlet") for s in job["steps"]][-1] == "true"
    assert "write" not in re.sub(r"#.*", "", GAUNTLET.read_text("utf-8"))


def test_every_action_is_pinned_by_full_sha_and_payload_never_reaches_a_shell():
    for path in FILES:
        for s in steps(load(path)):
            if "uses" in s:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", s["uses"]), (path.name, s["uses"])
            assert "${{" not in s.get("run", ""), (path.name, s.get("name"))  # inputs go through env:
    # the only repository named for the auditor is the documented placeholder, once per workflow
    for path in (GATE, GAUNTLET):
        assert path.read_text("utf-8").count(PLACEHOLDER) == 1
    assert "REPLACE-ME/pgolf-auditor" in (ROOT / "docs" / "ci.md").read_text("utf-8")


def test_action_installs_itself_and_runs_a_command_line_the_cli_accepts():
    doc = load(ACTION)
    assert doc["runs"]["using"] == "composite"
    install = next(s for s in steps(doc) if s.get("name", "").startswith("Install"))
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    audit = next(s for s in steps(doc) if s.get("id") == "audit")["run"]
    line = re.search(r'"\$RUNNER_TEMP/auditor-venv/bin/auditor" (ci .*?)"\$\{args\[@\]\}"', audit, re.S).group(1)
    argv = shlex.split(line.replace("\\\n", " ").replace("$", ""))
    args = build_parser().parse_args(argv + ["--strict", "--gauntlet", "--fail-on", "SEEDS"])
    assert (args.base, args.head, args.out, args.strict, args.gauntlet) == ("BASE", "HEAD", "/dev/null", True, True)
    assert args.comment_out and args.sarif_out and args.json_out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_zizmor_finds_nothing(path):
    cp = subprocess.run([tool("zizmor"), "--offline", "--no-progress", str(path)], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "No findings to report" in cp.stdout


def test_actionlint_is_clean():
    cp = subprocess.run([tool("actionlint"), str(GATE), str(GAUNTLET)], capture_output=True, text=True)
    assert (cp.returncode, cp.stdout) == (0, ""), cp.stdout + cp.stderr


@pytest.mark.parametrize("path,schema", [(GATE, "github-workflows"), (GAUNTLET, "github-workflows"),
                                         (ACTION, "github-actions")], ids=lambda x: getattr(x, "name", x))
def test_validates_against_the_github_schema(path, schema):
    cp = subprocess.run([tool("check-jsonschema"), "--builtin-schema", f"vendor.{schema}", str(path)],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr


# --- a simulated pull_request_target run -------------------------------------------------------

def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


def _trusted_run(upstream: Path, pr: int, base: str, head: str, tmp: Path) -> tuple[str, dict[str, str]]:
    """What the runner does: the base commit's workflow file, its steps' shell code, the action's code."""
    workflow = yaml.safe_load(git(upstream, "show", f"{base}:.github/workflows/audit-records.yml"))
    work = tmp / f"work{pr}"
    subprocess.run(["git", "clone", "-q", str(upstream), str(work)], check=True)
    git(work, "checkout", "-q", base)  # the checkout step: the base commit
    fetch = next(s for s in workflow["jobs"]["audit"]["steps"] if s.get("name", "").startswith("Fetch"))
    cp = _bash(fetch["run"], work, {"PR_NUMBER": str(pr), "HEAD_SHA": head})
    assert cp.returncode == 0, cp.stderr
    # the action: a venv whose `auditor` is this checkout (never the PR), then its audit step's script
    temp = tmp / f"runner{pr}"
    (temp / "auditor-venv" / "bin").mkdir(parents=True)
    shim = temp / "auditor-venv" / "bin" / "auditor"
    shim.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} -P "
                    "-c 'import sys; from auditor.cli import main; sys.exit(main())' \"$@\"\n")
    shim.chmod(0o755)
    output = temp / "output"
    audit = next(s for s in steps(load(ACTION)) if s.get("id") == "audit")
    env = {"BASE": base, "HEAD": head, "REPO": ".", "STRICT": "false", "FAIL_ON": "", "GAUNTLET": "false",
           "RUNNER_TEMP": str(temp), "GITHUB_OUTPUT": str(output), "GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": ""}
    cp = _bash(audit["run"], work, env)
    assert cp.returncode == 0, cp.stderr
    outputs = dict(l.split("=", 1) for l in output.read_text().splitlines())
    assert not (work / "hijack.txt").exists(), "a PR file reached the trusted job's working tree"
    return (work / ".github" / "workflows" / "audit-records.yml").read_text(), outputs


def test_pr_that_edits_the_workflow_gets_the_same_verdict(tmp_path):
    up = tmp_path / "upstream"
    up.mkdir()
    git(up, "init", "-q", "-b", "main")
    (up / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(GATE, up / ".github" / "workflows" / "audit-records.yml")
    write_record(up, TRACK, "2026-04-01_Frontier", {42: 1.09000007, 314: 1.09050011, 999: 1.09100013})
    commit(up, "base", "2026-04-02T10:00:00+00:00")
    base = git(up, "rev-parse", "HEAD").strip()
    heads = {}
    for pr, hostile in ((1, False), (2, True)):
        git(up, "checkout", "-q", "-b", f"pr{pr}", base)
        write_record(up, TRACK, "2026-05-02_TooBig", GOOD, total=16_100_000)
        if hostile:  # turn the check green, and plant a file the trusted job must never see
            wf = up / ".github" / "workflows" / "audit-records.yml"
            wf.write_text(re.sub(r"(?s)  audit:.*", "  audit:\n    runs-on: ubuntu-latest\n    steps:\n"
                                                    "      - run: exit 0\n", wf.read_text()))
            (up / "hijack.txt").write_text("x")
        commit(up, f"pr{pr}", "2026-05-02T09:00:00+00:00")
        heads[pr] = git(up, "rev-parse", "HEAD").strip()
        git(up, "update-ref", f"refs/pull/{pr}/head", heads[pr])  # as GitHub publishes a fork's head
        git(up, "checkout", "-q", "main")
    runs = {pr: _trusted_run(up, pr, base, heads[pr], tmp_path) for pr in heads}
    for wf_text, _ in runs.values():
        assert wf_text == GATE.read_text("utf-8")  # both ran the base branch's workflow
    (plain_wf, plain), (_, hostile) = runs[1], runs[2]
    assert plain["exit-code"] == hostile["exit-code"] == "1"
    import json
    docs = {pr: json.loads(Path(out["json-file"]).read_text()) for pr, (_, out) in runs.items()}
    verdicts = {pr: [(f["path"], f["verdict"]) for f in d["folders"]] for pr, d in docs.items()}
    assert verdicts[1] == verdicts[2] == [(f"records/{TRACK}/2026-05-02_TooBig", "FAIL")]
    assert docs[2]["verdict"] == "FAIL"  # and the workflow edit itself is a layout failure
