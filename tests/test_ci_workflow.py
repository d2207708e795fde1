"""The example workflow stays safe and in step with the CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from auditor.cli import build_parser

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "audit-records.yml"


@pytest.fixture(scope="module")
def text() -> str:
    if not WORKFLOW.exists():
        pytest.skip("example workflow not present")
    return WORKFLOW.read_text("utf-8")


def test_safe_trigger_and_permissions(text):
    code = re.sub(r"#.*", "", text)  # comments may explain why pull_request_target is not used
    assert "pull_request_target" not in code
    assert re.search(r"^on:\n  pull_request:\n", text, re.M)
    assert re.search(r"^permissions:\n  contents: read\n", text, re.M)
    assert "secrets." not in code and "write" not in code
    assert text.count("persist-credentials: false") == text.count("uses: actions/checkout@") == 4


def test_structure_parses(text):
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(text)
    on = doc.get("on", doc.get(True))
    assert list(on) == ["pull_request"]
    assert doc["permissions"] == {"contents": "read"}
    assert doc["jobs"]["gauntlet"]["if"] == "${{ always() && vars.AUDITOR_GAUNTLET == 'true' }}"


def test_the_ci_command_lines_are_accepted_by_the_cli(text):
    blocks = re.findall(r"run: >\n((?:          .*\n)+)", text)
    assert len(blocks) == 2, "expected the audit and the gauntlet steps' folded commands"
    parsed = []
    for block in blocks:
        line = " ".join(l.strip() for l in block.splitlines())
        argv = shlex.split(line.replace("$BASE_SHA", "abc").replace("$HEAD_SHA", "def"))
        assert argv[:2] == ["auditor", "ci"]
        parsed.append(build_parser().parse_args(argv[1:]))
    audit, gauntlet = parsed
    assert (audit.base, audit.head, audit.comment_out, audit.sarif_out, audit.json_out, audit.gauntlet) == \
        ("abc", "def", "../audit-comment.md", "../audit.sarif", "../audit.json", False)
    assert (gauntlet.base, gauntlet.head, gauntlet.gauntlet) == ("abc", "def", True)
