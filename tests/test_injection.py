"""Report injection: text a submitter controls (folder and file names, submission.json fields, log
lines) must stay inert in every report — Markdown cannot gain rows, headings, HTML, links or a second
verdict line; GitHub workflow commands cannot be forged; SARIF stays plain JSON strings."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from adversarial_kit import assert_clean_outcome, assert_tables_intact, run_main
from auditor.engine import audit_folder
from recordkit import write_record
from reports import escape

PAYLOAD = ("x|y\n**Verdict: ✅ PASS**\r\n::error::forged %0A::warning file=a::b <script>alert(1)</script> "
           "[link](http://evil.example) `tick` ``` <!-- hidden --> \u202egnp.exe\u2066 ![i](http://e.example/i.png) "
           "@maintainer www.evil.example #1 $\\color{green}{PASS}$ <img src=x onerror=alert(1)> &lt;b&gt; \u2028"
           "\x1b[31m\x00 \\| trailing")
NAME_PAYLOAD = "n|`<b>`::error::x\u202e[l](http:x)$y$ **Verdict"  # what a directory name can hold
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# the template's own markup that legitimately contains < and ://
OWN_MARKUP = re.compile(r"</?sub>|<https://github\.com/openai/parameter-golf/[^>\s]*>")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inject")
    one_line = PAYLOAD.replace("\n", " ").replace("\r", " ")
    folder = write_record(
        root, name=NAME_PAYLOAD,
        meta={"name": PAYLOAD, "author": PAYLOAD, "blurb": PAYLOAD, "github_id": PAYLOAD, "date": PAYLOAD,
              "track": PAYLOAD, "val_bpb": PAYLOAD, "seeds": [PAYLOAD, 42, 1337, 2025], "bytes_total": PAYLOAD,
              "seed_results": {PAYLOAD: {"val_bpb": 1.0}}},
        log_kwargs={"extra_lines": [one_line, f"quantized_{one_line} val_loss:1.0 val_bpb:1.0 eval_time:5ms",
                                    f"seed: {one_line}"]})
    (folder / f"{NAME_PAYLOAD}_seed9.log").write_text(
        "seed: 9\nstopping_early: wallclock_cap train_time: 700000ms " + one_line + "\n"
        "stopping_early: wallclock_cap train_time: 700000ms\n")
    (folder / "README.md").write_text(PAYLOAD)
    return folder


def _outside_code(line: str) -> str:
    """The line as CommonMark sees it outside code spans, with backslash-escaped punctuation
    removed (an escaped `<` or `[` is literal text). What remains is what Markdown interprets."""
    out, i, n = [], 0, len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n and not line[i + 1].isalnum() and not line[i + 1].isspace():
            i += 2
            continue
        if ch == "`":
            j = i
            while j < n and line[j] == "`":
                j += 1
            fence = line[i:j]
            m = re.compile(r"(?<!`)" + fence + r"(?!`)").search(line, j)
            if m:
                i = m.end()
                continue
            out.append(fence)
            i = j
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def test_markdown_review_stays_inert(hostile):
    res = run_main(["run", str(hostile)])
    assert assert_clean_outcome(res) == "FAIL"
    md = res.stdout
    lines = md.split("\n")
    # structure: tables keep their columns, one verdict line, and it is ours
    assert assert_tables_intact(md) >= 14
    verdicts = [ln for ln in lines if ln.lstrip().startswith(("**Verdict", "\\*\\*Verdict"))]
    assert len(verdicts) == 1 and verdicts[0].startswith("**Verdict: ❌ FAIL**")
    assert "\\*\\*Verdict: ✅ PASS\\*\\*" in md  # the forged one is there, escaped inline
    # no workflow command can start a line (the runner scans every stdout line, trimmed)
    assert not [ln for ln in lines if ln.strip().startswith(("::", "##["))]
    # no bidi controls or line separators anywhere; no raw control characters
    assert not BIDI.search(md) and "\u2028" not in md and "\x1b" not in md and "\x00" not in md
    for ln in lines:
        rest = OWN_MARKUP.sub("", _outside_code(ln))
        assert "<" not in rest, ln  # no HTML, comments or autolinks from submission text
        assert "](" not in rest, ln  # no [text](url) link or image
        assert "://" not in rest, ln  # no bare autolinked URL
        assert "$" not in rest, ln  # no $math$
        assert "**Verdict" not in rest or ln.startswith("**Verdict: ❌"), ln
        assert not re.search(r"@(?!\u200b)\w", rest), ln  # no @-mention
        assert not re.search(r"(?<![&\w])#[0-9]", rest), ln  # no #1 issue cross-reference


def test_code_spans_cannot_be_closed_by_submission_text():
    for text in ["a`b", "``", "`lead", "trail`", "x```y", "|`|`|"]:
        span = escape.code(text)
        fence = re.match(r"`+", span).group(0)
        assert span.endswith(fence)
        inner = span[len(fence):-len(fence)]
        assert fence not in inner and "|" not in inner


@pytest.mark.parametrize("text,expected", [
    ("a|b", "a&#124;b"),
    ("**Verdict: PASS**", "\\*\\*Verdict: PASS\\*\\*"),
    ("<script>", "\\<script\\>"),
    ("[x](http://e)", "\\[x\\](http:\u200b//e)"),
    ("line\nbreak", "line ⏎ break"),
    ("\u202eabc", "\ufffdabc"),
    ("$x$", "\\$x\\$"),
    ("see #12", "see #\u200b12"),
    ("a & b", "a &amp; b"),
])
def test_md_escape_exact(text, expected):
    assert escape.md(text) == expected


def test_json_report_keeps_submission_text_as_plain_strings(hostile):
    res = run_main(["run", str(hostile), "--format", "json"])
    assert assert_clean_outcome(res, "json") == "FAIL"
    doc = json.loads(res.stdout)
    claims = doc["submission"]["claims"]
    assert claims["name"] == PAYLOAD.replace("\x00", "\x00")  # exact: JSON consumers get the real text
    assert doc["submission"]["name"] == NAME_PAYLOAD.replace("\u202e", "\ufffd")
    # every line of the JSON text is a JSON token line; nothing from the payload starts a line
    for ln in res.stdout.splitlines():
        assert not ln.strip().startswith(("::", "##[", "**")), ln


def _hostile_findings(folder: Path):
    result = audit_folder(str(folder))
    return result, [f for f in result.findings]


def test_workflow_commands_cannot_be_forged(hostile):
    github = pytest.importorskip("reports.github")
    result, findings = _hostile_findings(hostile)
    prefix = "records/track_10min_16mb/" + hostile.name
    pr_files = {f"{prefix}/{p}" for p in result.submission.files}
    lines = github.workflow_commands([(prefix, findings)], pr_files)
    assert lines, "a failing hostile folder must produce annotations"
    for ln in lines:
        assert "\n" not in ln and "\r" not in ln
        m = re.fullmatch(r"::(error|warning|notice) ([^:]*)::(.*)", ln)
        assert m, ln
        props = dict(kv.split("=", 1) for kv in m.group(2).split(","))
        assert set(props) <= {"file", "line", "title"}, props
        for v in props.values():
            assert ":" not in v and "," not in v
        data = m.group(3)
        assert "%0A" not in data.replace("%250A", "") and "%0D" not in data.replace("%250D", "")
    assert any("forged %250A" in ln for ln in lines)  # the payload's %0A arrives encoded, inert


@pytest.mark.parametrize("text", [PAYLOAD, "a::b", "%0A::error::x", "\r\n::warning::y", "k=v,file=/etc/passwd"])
def test_workflow_escapers(text):
    data = escape.workflow_data(text)
    prop = escape.workflow_property(text)
    assert "\n" not in data and "\r" not in data and "\n" not in prop and "\r" not in prop
    assert ":" not in prop and "," not in prop
    # decoding gives the text back (GitHub's own unescape order)
    dec = data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
    assert dec == text[:1000]


def test_sarif_text_is_plain_json_strings(hostile):
    sarif = pytest.importorskip("reports.sarif")
    from reports.render import to_json_text
    from rules import all_rules

    result, findings = _hostile_findings(hostile)
    doc = sarif.sarif_log([sarif.SarifUnit("records/x/" + hostile.name, findings)], all_rules(), tool_version="t")
    text = to_json_text(doc)
    parsed = json.loads(text)
    for res in parsed["runs"][0]["results"]:
        msg = res["message"]["text"]
        assert isinstance(msg, str) and "\n" not in msg and not BIDI.search(msg)
        assert set(res["message"]) == {"text"}  # no markdown rendition of submission text
        for loc in res["locations"] + res.get("relatedLocations", []):
            snippet = loc["physicalLocation"].get("region", {}).get("snippet", {}).get("text", "")
            assert "\n" not in snippet and not BIDI.search(snippet)


def test_sarif_message_has_no_embedded_links_from_submission_text(hostile):
    sarif = pytest.importorskip("reports.sarif")
    from rules import all_rules

    _, findings = _hostile_findings(hostile)
    doc = sarif.sarif_log([sarif.SarifUnit("records/x/" + hostile.name, findings)], all_rules(), tool_version="t")
    for res in doc["runs"][0]["results"]:
        assert not re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]\(", res["message"]["text"]), res["message"]["text"]


def _git(repo: Path, *args: str) -> str:
    import subprocess

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "GIT_AUTHOR_DATE": "2026-05-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-05-01T00:00:00Z",
           "HOME": str(repo), "PATH": os.environ.get("PATH", "")}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def test_ci_progress_cannot_start_a_workflow_command(tmp_path):
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# repo\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD")
    write_record(repo, name="2026-05-01_x\n::error title=forged::auditor passed this PR")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "head")
    res = run_main(["ci", "--repo", str(repo), "--base", base, "--head", "HEAD", "--out", str(tmp_path / "c.md")])
    assert res.code in (0, 1, 2, 3)
    for ln in (res.stdout + "\n" + res.stderr).split("\n"):
        assert not ln.strip().startswith("::"), ln
