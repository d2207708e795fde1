"""`auditor ci` end to end on throw-away git repositories.

The base commit holds three merged records; head branches add (a) a passing folder, (b) a failing
one (artifact over the cap), (c) two folders at once, (d) a change outside records/. Each scenario
runs the real command in-process and checks the exit code, the comment, annotations and SARIF.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from auditor.cli import main

SCHEMA = Path(__file__).parent / "schemas" / "sarif-2.1.0.json"
TRACK = "track_10min_16mb"
# sp8192 validation: 40,540,160 scored tokens over ~151,078,222 bytes (format_spec §1.5)
VAL_TOKENS = 40_540_160
VAL_BYTES = 151_078_222
TRAIN_GPT = "import os\n\n\ndef main():\n    print('tiny fixture script')\n\n\nif __name__ == '__main__':\n    main()\n"


def seed_log(seed: int, bpb: float, *, total: int, train_ms: int, code_bytes: int) -> str:
    loss = bpb * math.log(2) * VAL_BYTES / VAL_TOKENS
    model = total - code_bytes
    return "\n".join([
        "logs/run.txt",
        "Hyperparameters:",
        "  eval_seq_len: 2048",
        f"  seed: {seed}",
        "  train_seq_len: 2048",
        "  world_size: 8",
        "train_shards: 80",
        f"val_tokens: {VAL_TOKENS}",
        "4000/20000 train_loss: 2.9000 train_time: 7.9m tok/s: 7700000",
        "4986/20000 val_loss: 2.8178 val_bpb: 1.0909",
        f"stopping_early: wallclock_cap train_time: {train_ms}ms step: 4986/20000",
        "Serialized model: 135427259 bytes",
        f"Code size: {code_bytes} bytes",
        f"Serialized model quantized+brotli: {model} bytes",
        f"Total submission size quantized+brotli: {total} bytes",
        f"quantized val_loss:{loss + 0.04:.8f} val_bpb:{bpb + 0.016:.8f} eval_time:8793ms",
        f"quantized_sliding_window val_loss:{loss:.8f} val_bpb:{bpb:.8f} eval_time:84115ms",
        "",
    ])


def write_record(root: Path, track: str, name: str, bpbs: dict[int, float], *, total: int = 15_980_000,
                 train_ms: int = 588_000) -> Path:
    folder = root / "records" / track / name
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(TRAIN_GPT)
    code = len(TRAIN_GPT.encode())
    for seed, bpb in bpbs.items():
        (folder / f"train_seed{seed}.log").write_text(seed_log(seed, bpb, total=total, train_ms=train_ms,
                                                                code_bytes=code))
    mean = sum(bpbs.values()) / len(bpbs)
    loss = mean * math.log(2) * VAL_BYTES / VAL_TOKENS
    meta = {"name": name.split("_", 1)[1], "author": "Test Author", "github_id": "tester", "date": name[:10],
            "track": track.removeprefix("track_"), "val_bpb": round(mean, 8), "val_loss": round(loss, 8),
            "bytes_total": total, "bytes_code": code, "seeds": sorted(bpbs)}
    (folder / "submission.json").write_text(json.dumps(meta, indent=2) + "\n")
    (folder / "README.md").write_text(f"# {name}\n\nA fixture record: three seeds, sliding-window eval.\n")
    return folder


GOOD = {42: 1.08500011, 314: 1.08520013, 999: 1.08480017}
EVIL = "2026-05-09_Evil | `x` <b>[y](javascript:z)%0A::error::,"


def git(repo: Path, *args: str, date: str = "2026-05-01T12:00:00+00:00") -> str:
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, HOME=str(repo),
               GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    out = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false",
                          *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return out.stdout


def commit(repo: Path, msg: str, date: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg, date=date)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("golf")
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("# Parameter Golf\n")
    (root / "train_gpt.py").write_text(TRAIN_GPT)
    write_record(root, TRACK, "2026-04-01_Frontier", {42: 1.09000007, 314: 1.09050011, 999: 1.09100013})
    write_record(root, TRACK, "2026-03-20_Older", {1337: 1.12000005, 42: 1.12100009, 7: 1.11900001})
    write_record(root, "track_non_record_16mb", "2026-03-01_NonRecord", {1: 1.2, 2: 1.21, 3: 1.19})
    commit(root, "base", "2026-04-02T10:00:00+00:00")

    def branch(name: str, build, date: str) -> None:
        git(root, "checkout", "-q", "-b", name, "main")
        build(root)
        commit(root, name, date)
        git(root, "checkout", "-q", "main")

    branch("pass", lambda r: write_record(r, TRACK, "2026-05-01_Good", GOOD), "2026-05-01T09:00:00+00:00")
    branch("fail", lambda r: write_record(r, TRACK, "2026-05-02_TooBig", GOOD, total=16_100_000),
           "2026-05-02T09:00:00+00:00")

    def two(r: Path) -> None:
        write_record(r, TRACK, "2026-05-01_Good", GOOD)
        write_record(r, TRACK, "2026-05-03_SlowTrain", GOOD, train_ms=612_345)
    branch("two", two, "2026-05-03T09:00:00+00:00")

    def outside(r: Path) -> None:
        write_record(r, TRACK, "2026-05-01_Good", GOOD)
        (r / "train_gpt.py").write_text(TRAIN_GPT + "# tweak\n")
    branch("outside", outside, "2026-05-04T09:00:00+00:00")

    def outside_only(r: Path) -> None:
        (r / "train_gpt.py").write_text(TRAIN_GPT + "# tweak\n")
    branch("outside-only", outside_only, "2026-05-05T09:00:00+00:00")

    def layout(r: Path) -> None:
        nested = write_record(r / "tmp", TRACK, "2026-05-06_Nested", GOOD)  # build, then move one level too deep
        dest = r / "records" / TRACK / "2026-05-06_Nested" / "2026-05-06_Nested"
        dest.parent.mkdir(parents=True)
        nested.rename(dest)
        shutil.rmtree(r / "tmp")
        (r / "records" / "stray.log").write_text("loose file\n")
    branch("layout", layout, "2026-05-06T09:00:00+00:00")

    def readme(r: Path) -> None:
        write_record(r, TRACK, "2026-05-01_Good", GOOD)
        (r / "README.md").write_text("# Parameter Golf\n\n| 1.0850 | Good |\n")
    branch("readme", readme, "2026-05-08T09:00:00+00:00")

    branch("evil", lambda r: write_record(r, TRACK, EVIL, GOOD, total=16_000_001), "2026-05-09T09:00:00+00:00")

    branch("newtrack", lambda r: write_record(r, "track_new", "2026-05-10_Fresh", GOOD), "2026-05-10T09:00:00+00:00")

    git(root, "checkout", "-q", "-b", "submodule", "main")
    write_record(root, TRACK, "2026-05-11_Vendored", GOOD)
    git(root, "add", "-A")
    sha = git(root, "rev-parse", "main").strip()
    git(root, "update-index", "--add", "--cacheinfo", f"160000,{sha},records/{TRACK}/2026-05-11_Vendored/third_party")
    git(root, "commit", "-q", "-m", "submodule", date="2026-05-11T09:00:00+00:00")
    git(root, "checkout", "-q", "main")

    def edit_merged(r: Path) -> None:
        p = r / "records" / TRACK / "2026-04-01_Frontier" / "README.md"
        p.write_text(p.read_text() + "\nAn edit after merge.\n")
    branch("edit-merged", edit_merged, "2026-05-07T09:00:00+00:00")
    return root


@pytest.fixture
def no_actions(monkeypatch):
    for var in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_EVENT_PATH"):
        monkeypatch.delenv(var, raising=False)


def ci(repo: Path, tmp_path: Path, head: str, *extra: str) -> tuple[int, str, dict, dict]:
    comment, js, sarif = tmp_path / "comment.md", tmp_path / "ci.json", tmp_path / "ci.sarif"
    code = main(["ci", "--repo", str(repo), "--base", "main", "--head", head, "--quiet", "--format", "json",
                 "--out", str(js), "--comment-out", str(comment), "--sarif-out", str(sarif), *extra])
    text = comment.read_text("utf-8")
    assert_renders_on_github(text)
    return code, text, json.loads(js.read_text("utf-8")), json.loads(sarif.read_text("utf-8"))


CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")
ALLOWED_HTML = re.compile(r"<(?:/?(?:sub|details|summary)>|!-- [\w:-]+ -->)")


def assert_renders_on_github(text: str) -> None:
    """Structural checks for GitHub-flavoured Markdown: tables keep their columns, code spans close,
    links are absolute https, only a few HTML tags, no accidental setext headings."""
    lines = text.splitlines()
    assert text.endswith("\n") and "\n\n\n" not in text
    i = 0
    while i < len(lines):
        if lines[i].startswith("|"):
            assert i > 0 and lines[i - 1] == "", f"table without a blank line before it: {lines[i]}"
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            assert re.fullmatch(r"\|(?:-+:?\|)+", block[1]), block[1]
            cols = block[0].count("|")
            bad = [row for row in block if row.count("|") != cols or not row.endswith("|")]
            assert not bad, bad
            continue
        i += 1
    for prev, line in zip([""] + lines, lines):
        if re.fullmatch(r"-{3,}|={3,}", line):
            assert prev == "", f"setext heading: {prev!r} / {line!r}"
        outside = CODE_SPAN.sub("", line)
        assert "`" not in outside, f"unclosed code span: {line}"
        for url in re.findall(r"\]\(([^)]*)\)", outside):
            assert re.fullmatch(r"https://[^\s<>()]+", url), url
        assert "](" not in re.sub(r"\[[^\]]*\]\(https://[^\s<>()]+\)", "", outside), line
        tags = re.sub(r"\\<", "", outside)
        assert not re.search(r"<(?!/?(?:sub|details|summary)>|!-- )", tags), f"raw HTML: {line}"
    assert text.count("<details>") == text.count("</details>")
    assert text.count("<summary>") == text.count("</summary>")
    for m in re.finditer(r"</summary>\n(.?)", text, re.S):
        assert m.group(1) == "\n", "GitHub needs a blank line after <summary> for Markdown inside <details>"


@pytest.fixture(scope="module")
def sarif_validator():
    schema = json.loads(SCHEMA.read_text("utf-8"))
    return jsonschema.Draft4Validator(schema)


def assert_valid_sarif(doc: dict, validator) -> None:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def folder(doc: dict, name: str) -> dict:
    return next(f for f in doc["folders"] if f["path"].endswith("/" + name))


# -- (a) a passing folder -------------------------------------------------------------------------

def test_passing_folder_exits_zero_and_uses_base_frontier(repo, tmp_path, no_actions, sarif_validator):
    code, comment, doc, sarif = ci(repo, tmp_path, "pass")
    assert code == 0
    assert doc["verdict"] == "PASS" and doc["exit_code"] == 0
    f = folder(doc, "2026-05-01_Good")
    assert f["status"] == "added" and f["verdict"] == "PASS"
    front = f["frontier"]
    assert front["source"] == "base" and front["folder"] == f"records/{TRACK}/2026-04-01_Frontier"
    assert front["candidates"] == 2  # the track's two merged records; the non-record track is separate
    assert front["seed_bpbs"] == pytest.approx([1.09050011, 1.09000007, 1.09100013])  # sorted by seed "314","42","999"
    assert doc["repository"]["findings"] == []
    assert doc["pull_request"]["first_commit_at"] == "2026-05-01T09:00:00+00:00"
    sig = [x for x in f["audit"]["findings"] if x["rule"] == "SIGNIFICANCE" and "frontier_bpb" in x["data"]]
    assert [x["severity"] for x in sig] == ["pass"]
    assert sig[0]["data"]["frontier_bpb"] == pytest.approx(1.09050010)
    assert sig[0]["data"]["frontier"] == f"merged record 2026-04-01_Frontier (base {doc['base']['sha'][:7]})"
    # comment: verdict first, frontier named, reproduce line exact
    lines = comment.splitlines()
    assert lines[0] == "<!-- parameter-golf-auditor:ci -->"
    assert lines[1] == "## ✅ Parameter Golf audit: PASS"
    assert "| `2026-05-01_Good` | ✅ PASS | 1.08500014 | `2026-04-01_Frontier` (1.09050010, 3 seeds) | 0 | 0 |" in comment
    base7, b12, h12 = doc["base"]["sha"][:7], doc["base"]["sha"][:12], doc["head"]["sha"][:12]
    assert (f"**How to reproduce this review:** `auditor ci --base {b12} --head {h12}` in a clone that has both "
            f"commits; for this folder alone, `auditor run records/{TRACK}/2026-05-01_Good --against "
            f"records/{TRACK}/2026-04-01_Frontier` on this PR merged into `{base7}`.\n") in comment
    assert "Nothing must change." in comment
    assert_valid_sarif(sarif, sarif_validator)
    assert sarif["runs"][0]["results"] == []  # a pass opens no code-scanning alert


# -- (b) a failing folder -------------------------------------------------------------------------

def test_failing_folder_exits_one_with_evidence_and_annotations(repo, tmp_path, monkeypatch, sarif_validator):
    summary = tmp_path / "summary.md"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 4242, "created_at": "2026-05-02T08:30:00Z",
                                                  "html_url": "https://github.com/o/r/pull/4242"}}))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    import io
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)
    code, comment, doc, sarif = ci(repo, tmp_path, "fail")
    out = buf.getvalue()
    assert code == 1
    f = folder(doc, "2026-05-02_TooBig")
    assert f["verdict"] == "FAIL"
    size = [x for x in f["audit"]["findings"] if x["rule"] == "ARTIFACT_SIZE" and x["severity"] == "fail"]
    assert size, f["audit"]["findings"]
    assert doc["pull_request"]["number"] == 4242 and doc["pull_request"]["created_at"] == "2026-05-02T08:30:00Z"
    # a PR is judged by the rulings in force on the day it was opened
    assert f["audit"]["judged"]["date"] == "2026-05-02" and f["audit"]["judged"]["date_source"] == "PR's open date"
    # comment: verdict, what must change with file:line and a rule citation
    assert comment.splitlines()[1] == "## ❌ Parameter Golf audit: FAIL"
    must = comment.split("\n**What must change**\n", 1)[1].split("<details>", 1)[0]
    items = [l for l in must.splitlines() if re.match(r"^\d+\. ", l)]
    assert len(items) == 4 and all(l.split(" ", 2)[1] == "**ARTIFACT_SIZE**:" for l in items)
    assert any(re.fullmatch(r"\d\. \*\*ARTIFACT_SIZE\*\*: train\\_seed42\.log, seed 42: .*16,100,000 bytes.* "
                            r"\(`train_seed42\.log:15`, .*\) — source: \[README §faq\]\(https://github\.com/openai/"
                            r"parameter-golf/blob/main/README\.md#faq\)", l) for l in items), items
    assert re.search(r"PR opened 2026\\?-05\\?-02T08:30:00Z · first commit", comment)
    # annotations: an ::error on the log line that shows the size
    errors = [l for l in out.splitlines() if l.startswith("::error ")]
    pat = re.compile(rf"^::error file=records/{TRACK}/2026-05-02_TooBig/train_seed(42|314|999)\.log,line=15,"
                     r"title=ARTIFACT_SIZE::2026-05-02_TooBig: .*16,100,000")
    assert any(pat.match(l) for l in errors), errors
    assert summary.read_text("utf-8") == comment
    assert_valid_sarif(sarif, sarif_validator)
    res = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "ARTIFACT_SIZE" and r["level"] == "error"]
    uris = sorted(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in res)
    folder_uri = f"records/{TRACK}/2026-05-02_TooBig"
    assert uris == [f"{folder_uri}/submission.json"] + [f"{folder_uri}/train_seed{s}.log" for s in (314, 42, 999)]
    lines = {r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in res}
    assert lines == {9, 15}  # bytes_total in submission.json; the total line of each log
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert rules[res[0]["ruleIndex"]]["id"] == "ARTIFACT_SIZE"
    assert rules[res[0]["ruleIndex"]]["helpUri"].startswith("https://github.com/openai/parameter-golf")


def test_needs_review_passes_unless_strict_or_fail_on(repo, tmp_path, no_actions):
    code, comment, doc, _ = ci(repo, tmp_path, "readme")
    assert (code, doc["verdict"], doc["repository"]["verdict"]) == (0, "NEEDS_REVIEW", "NEEDS_REVIEW")
    assert folder(doc, "2026-05-01_Good")["verdict"] == "PASS"
    assert [(x["rule"], x["severity"]) for x in doc["repository"]["findings"]] == [("FILES", "warn")]
    assert comment.splitlines()[1] == "## ⚠️ Parameter Golf audit: NEEDS REVIEW"
    assert ci(repo, tmp_path, "readme", "--strict")[0] == 3
    code, comment, doc, _ = ci(repo, tmp_path, "readme", "--fail-on", "files")
    assert code == 1 and doc["policy"]["fail_on"] == ["FILES"]
    assert "\nThe gate is configured to fail on FILES (`--fail-on FILES`): 1 finding(s) of that rule below must be " \
           "resolved.\n" in comment
    assert ci(repo, tmp_path, "pass", "--strict", "--fail-on", "FILES,SIGNIFICANCE")[0] == 0


def test_unknown_fail_on_rule_is_a_tool_error(repo, tmp_path, no_actions, capsys):
    assert main(["ci", "--repo", str(repo), "--base", "main", "--head", "pass", "--fail-on", "NOPE"]) == 2
    assert capsys.readouterr().err.strip() == "auditor: error: --fail-on: unknown rule 'NOPE'; `auditor rules` lists them"


# -- (c) two folders at once ----------------------------------------------------------------------

def test_two_folders_each_get_a_section(repo, tmp_path, no_actions, sarif_validator):
    code, comment, doc, sarif = ci(repo, tmp_path, "two")
    assert [f["path"].rsplit("/", 1)[1] for f in doc["folders"]] == ["2026-05-01_Good", "2026-05-03_SlowTrain"]
    assert folder(doc, "2026-05-01_Good")["verdict"] == "PASS"
    assert folder(doc, "2026-05-03_SlowTrain")["verdict"] == "FAIL"
    assert code == 1
    rep = doc["repository"]["findings"]
    assert [(x["rule"], x["severity"]) for x in rep] == [("FILES", "warn")]
    assert "changes 2 record folders" in rep[0]["message"]
    assert comment.count("\n### ✅ `2026-05-01_Good`: PASS\n") == 1
    assert comment.count("\n### ❌ `2026-05-03_SlowTrain`: FAIL\n") == 1
    assert "**TRAIN_TIME**" in comment.split("### ❌ `2026-05-03_SlowTrain`")[1]
    assert_valid_sarif(sarif, sarif_validator)
    # only alerts by default: the passing folder has none, the failing one and the PR layout do
    folders = {r["properties"]["folder"] for r in sarif["runs"][0]["results"]}
    assert folders == {"", f"records/{TRACK}/2026-05-03_SlowTrain"}
    assert {r["level"] for r in sarif["runs"][0]["results"]} <= {"error", "warning"}
    assert sarif["runs"][0]["invocations"] == [{"executionSuccessful": True, "exitCode": 1}]
    # --sarif-all keeps every result, passes included
    code, _, _, every = ci(repo, tmp_path, "two", "--sarif-all")
    assert_valid_sarif(every, sarif_validator)
    folders = {r["properties"]["folder"] for r in every["runs"][0]["results"]}
    assert {f"records/{TRACK}/2026-05-01_Good", f"records/{TRACK}/2026-05-03_SlowTrain"} <= folders
    assert {"pass", "informational"} <= {r["kind"] for r in every["runs"][0]["results"]}


# -- (d) a file outside records/ ------------------------------------------------------------------

def test_file_outside_records_fails_the_pr(repo, tmp_path, monkeypatch, sarif_validator):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    import io
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)
    code, comment, doc, sarif = ci(repo, tmp_path, "outside")
    assert code == 1
    assert folder(doc, "2026-05-01_Good")["verdict"] == "PASS"
    rep = doc["repository"]["findings"]
    assert rep[0]["rule"] == "FILES" and rep[0]["severity"] == "fail"
    assert rep[0]["evidence"] == [{"path": "train_gpt.py", "line": None, "text": ""}]
    assert "### Pull request layout" in comment and "outside records/" in comment
    assert "::error file=train_gpt.py,title=FILES::repository: this PR also changes 1 file(s) outside records/" \
        in buf.getvalue()
    assert_valid_sarif(sarif, sarif_validator)
    assert any(r["ruleId"] == "FILES" and r["level"] == "error"
               and r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "train_gpt.py"
               for r in sarif["runs"][0]["results"])


def test_no_record_folder_means_nothing_to_audit(repo, tmp_path, no_actions):
    code, comment, doc, _ = ci(repo, tmp_path, "outside-only")
    assert code == 0 and doc["folders"] == []
    assert [x["severity"] for x in doc["repository"]["findings"]] == ["info"]
    assert "nothing to audit" in comment


def test_misplaced_and_nested_layout(repo, tmp_path, no_actions):
    code, comment, doc, _ = ci(repo, tmp_path, "layout")
    msgs = [x["message"] for x in doc["repository"]["findings"]]
    assert any("sit directly in records/" in m and "records/stray.log" in m for m in msgs), msgs
    assert any(f"nested in records/{TRACK}/2026-05-06_Nested/2026-05-06_Nested/" in m for m in msgs), msgs
    assert code == 1


def test_edit_of_merged_record_is_flagged_and_not_its_own_frontier(repo, tmp_path, no_actions):
    _, _, doc, _ = ci(repo, tmp_path, "edit-merged")
    f = folder(doc, "2026-04-01_Frontier")
    assert f["status"] == "modified"
    assert f["frontier"]["folder"] == f"records/{TRACK}/2026-03-20_Older"
    assert f["frontier"]["candidates"] == 1
    assert any("already exists on the base branch" in x["message"] for x in doc["repository"]["findings"])


def test_against_overrides_the_base_frontier(repo, tmp_path, no_actions):
    _, comment, doc, _ = ci(repo, tmp_path, "pass", "--sota-bpb", "1.2", "--sota-seed-bpbs", "1.2,1.21,1.19")
    front = folder(doc, "2026-05-01_Good")["frontier"]
    assert front["source"] == "option" and front["val_bpb"] == 1.2 and front["folder"] is None
    assert "given on the command line" in comment
    assert doc["command"].endswith("--sota-bpb 1.2 --sota-seed-bpbs 1.2,1.21,1.19")


def test_same_input_gives_byte_identical_outputs(repo, tmp_path, no_actions):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = ci(repo, tmp_path / "a", "two")
    b = ci(repo, tmp_path / "b", "two")
    assert a == b
    assert str(tmp_path) not in json.dumps(a[2]) and "auditor-ci-" not in json.dumps(a[2])


def test_bad_revision_is_one_line_error(repo, no_actions, capsys):
    assert main(["ci", "--repo", str(repo), "--base", "nope", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == "auditor: error: unknown revision 'nope'\n"


def test_not_a_repository(tmp_path, no_actions, capsys):
    assert main(["ci", "--repo", str(tmp_path), "--base", "main", "--quiet"]) == 2
    assert capsys.readouterr().err == f"auditor: error: {tmp_path}: not a git repository\n"


def test_working_tree_is_untouched(repo, tmp_path, no_actions):
    before = git(repo, "status", "--porcelain=v1", "--ignored")
    worktrees = git(repo, "worktree", "list")
    ci(repo, tmp_path, "two")
    assert git(repo, "status", "--porcelain=v1", "--ignored") == before
    assert git(repo, "worktree", "list") == worktrees
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


@pytest.mark.parametrize("bad", [
    "x\n\n| a | b |\n|---|---|\n| 1 |\n",  # a row lost a column
    "x\n| a |\n|---|\n| 1 |\n",  # no blank line before the table
    "see `code\n",  # unclosed code span
    "[rule](records/x.md)\n",  # relative link: broken in a PR comment
    "Title\n---\n",  # setext heading
    "<img src=x>\n",  # raw HTML
    "<details>\n<summary>s</summary>\n| a |\n",  # no blank line after summary, unclosed details
])
def test_markdown_checker_catches_breakage(bad):
    with pytest.raises(AssertionError):
        assert_renders_on_github(bad)


def test_hostile_folder_name_stays_inert(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    import io
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)
    code, comment, doc, _ = ci(repo, tmp_path, "evil")  # ci() also runs the Markdown checks
    assert code == 1 and folder(doc, EVIL)["verdict"] == "FAIL"
    assert f"`` {EVIL.replace('|', '¦')} ``" in comment  # shown in a code span it cannot close
    prose = CODE_SPAN.sub("", comment)
    assert "<b>" not in prose and "](javascript" not in prose
    out = [l for l in buf.getvalue().splitlines() if l.startswith("::error")]
    assert out and all(l.startswith("::error file=records/track_10min_16mb/2026-05-09_Evil | `x` <b>[y](javascript%3Az)%250A%3A%3Aerror%3A%3A%2C/")
                       for l in out if "file=" in l), out


# -- git export and discovery details -------------------------------------------------------------

def test_export_is_byte_exact_and_keeps_links_unfollowed(tmp_path, monkeypatch):
    from auditor.ci import git as cigit

    root = tmp_path / "r"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    folder = root / "records" / TRACK / "2026-05-01_X"
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "a.log").write_bytes(b"\x00\xffbinary\r\nline\n")
    (folder / "run.sh").write_text("#!/bin/sh\n")
    (folder / "run.sh").chmod(0o755)
    (folder / "big.bin").write_bytes(b"x" * 100)
    os.symlink("../../../../../etc/passwd", folder / "escape")
    commit(root, "x", "2026-05-01T00:00:00+00:00")
    sub_sha = git(root, "rev-parse", "HEAD").strip()
    git(root, "update-index", "--add", "--cacheinfo", f"160000,{sub_sha},records/{TRACK}/2026-05-01_X/vendored")
    git(root, "commit", "-q", "-m", "submodule")

    monkeypatch.setattr(cigit, "SPARSE_ABOVE", 50)
    out = tmp_path / "out"
    report = cigit.Repo(root).export("HEAD", f"records/{TRACK}/2026-05-01_X", out)
    got = out / "records" / TRACK / "2026-05-01_X"
    assert (got / "logs" / "a.log").read_bytes() == b"\x00\xffbinary\r\nline\n"
    assert os.access(got / "run.sh", os.X_OK)
    assert os.readlink(got / "escape") == "../../../../../etc/passwd"
    assert (got / "big.bin").stat().st_size == 100 and (got / "big.bin").read_bytes() == b"\0" * 100
    assert report.sparse == [f"records/{TRACK}/2026-05-01_X/big.bin"]
    assert report.skipped == [(f"records/{TRACK}/2026-05-01_X/vendored", "git submodule; not exported")]
    assert sorted(p.name for p in got.iterdir()) == ["big.bin", "escape", "logs", "run.sh"]


def test_discover_classifies_paths():
    from auditor.ci.discover import discover
    from auditor.ci.git import Change

    t = f"records/{TRACK}"
    changes = [Change("A", f"{t}/2026-05-01_New/README.md"), Change("A", f"{t}/2026-05-01_New/submission.json"),
               Change("D", f"{t}/2026-01-01_Gone/README.md"), Change("M", f"{t}/2026-02-01_Old/README.md"),
               Change("A", "records/track_typo/2026-05-01_T/README.md"), Change("A", f"{t}/loose.txt"),
               Change("M", "README.md"), Change("M", "data/x.py")]
    head = {f"{t}/2026-05-01_New": {f"{t}/2026-05-01_New/README.md", f"{t}/2026-05-01_New/submission.json"},
            f"{t}/2026-02-01_Old": {f"{t}/2026-02-01_Old/README.md"},
            "records/track_typo/2026-05-01_T": {"records/track_typo/2026-05-01_T/README.md"}}
    d = discover(changes, [TRACK, "track_non_record_16mb"], {f"{t}/2026-01-01_Gone", f"{t}/2026-02-01_Old"}, head)
    assert [(f.path, f.status) for f in d.folders] == [
        (f"{t}/2026-01-01_Gone", "deleted"), (f"{t}/2026-02-01_Old", "modified"), (f"{t}/2026-05-01_New", "added"),
        ("records/track_typo/2026-05-01_T", "added")]
    got = [(f.severity, f.message.split(";")[0].split(" (")[0]) for f in d.issues]
    assert got == [
        ("fail", "this PR also changes 1 file(s) outside records/"),
        ("warn", "README.md is changed: the leaderboard in README.md is updated by the maintainers when they merge"),
        ("fail", "1 file(s) sit directly in records/ or in a track folder"),
        ("warn", f"{t}/2026-02-01_Old already exists on the base branch and this PR changes it"),
        ("warn", "records/track_typo/2026-05-01_T is in an unknown track folder 'track_typo'"),
        ("warn", f"this PR deletes the record folder {t}/2026-01-01_Gone"),
        ("warn", "this PR changes 3 record folders"),
    ]
    assert "data/x.py" in d.pr_files and f"{t}/2026-01-01_Gone/README.md" not in d.pr_files


def test_new_track_has_no_frontier(repo, tmp_path, no_actions):
    code, comment, doc, _ = ci(repo, tmp_path, "newtrack")
    f = folder(doc, "2026-05-10_Fresh")
    assert f["frontier"]["source"] == "none" and f["frontier"]["val_bpb"] is None
    assert "no merged record in this track to compare against" in comment
    assert any("unknown track folder 'track_new'" in x["message"] for x in doc["repository"]["findings"])
    sig = [x for x in f["audit"]["findings"] if x["rule"] == "SIGNIFICANCE"]
    assert [x["severity"] for x in sig] == ["info"]


def test_submodule_in_a_record_is_reported_not_followed(repo, tmp_path, no_actions):
    code, _, doc, _ = ci(repo, tmp_path, "submodule")
    f = folder(doc, "2026-05-11_Vendored")
    files = [x for x in f["audit"]["findings"] if x["rule"] == "FILES" and x["severity"] == "warn"]
    assert [(x["message"], x["evidence"][0]["path"]) for x in files] == \
        [("not audited: git submodule; not exported", "third_party")]
    assert f["verdict"] == "NEEDS_REVIEW" and code == 0


def test_frontier_merged_after_the_pr_was_opened_is_pointed_out(repo, tmp_path, monkeypatch):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "created_at": "2026-03-30T00:00:00Z"}}))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setattr(sys, "stdout", __import__("io").StringIO())
    _, comment, doc, _ = ci(repo, tmp_path, "pass")
    assert folder(doc, "2026-05-01_Good")["frontier"]["merged_at"] == "2026-04-02T10:00:00+00:00"
    assert "> [!NOTE]\n> The frontier record was merged (2026" in comment
    assert "after this PR was opened (2026" in comment
    monkeypatch.delenv("GITHUB_ACTIONS")
    _, comment, _, _ = ci(repo, tmp_path, "pass")  # first commit 2026-05-01: after the frontier landed
    assert "[!NOTE]" not in comment


def test_shallow_clone_error_says_how_to_fix(repo, tmp_path, no_actions, capsys):
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "pass", repo.as_uri(), str(shallow)],
                   check=True, capture_output=True)
    missing = git(repo, "rev-parse", "main").strip()
    assert main(["ci", "--repo", str(shallow), "--base", missing, "--quiet"]) == 2
    assert capsys.readouterr().err == (f"auditor: error: unknown revision '{missing}'; is the clone shallow? "
                                       "(actions/checkout needs fetch-depth: 0)\n")
