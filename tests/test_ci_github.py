"""reports/github.py: workflow-command annotations and the step summary."""

from __future__ import annotations

from auditor.core.model import Evidence, Finding
from reports import github

PREFIX = "records/track_10min_16mb/2026-05-01_X"
PR_FILES = {f"{PREFIX}/train_seed42.log", f"{PREFIX}/submission.json", "train_gpt.py"}


def test_error_warning_and_skips():
    findings = [
        Finding("ARTIFACT_SIZE", "fail", "over the cap", [Evidence("train_seed42.log", 15, "Total ...")]),
        Finding("SIGNIFICANCE", "fail", "weak", [Evidence("train_seed42.log", 17)], confidence="medium"),
        Finding("SEEDS", "warn", "odd", [Evidence("not_in_pr.log", 3)]),  # file the PR did not touch
        Finding("FILES", "fail", "no README.md", []),  # blocking, no file: file-less error
        Finding("FULL_VAL", "info", "fine", [Evidence("train_seed42.log", 2)]),
        Finding("TRAIN_TIME", "pass", "fine", [Evidence("train_seed42.log", 11)]),
    ]
    lines = github.workflow_commands([(PREFIX, findings)], PR_FILES)
    assert lines == [
        f"::error file={PREFIX}/train_seed42.log,line=15,title=ARTIFACT_SIZE::2026-05-01_X: over the cap",
        "::error title=FILES::2026-05-01_X: no README.md",
        f"::warning file={PREFIX}/train_seed42.log,line=17,title=SIGNIFICANCE::2026-05-01_X: weak",
    ]


def test_submission_text_cannot_forge_a_command():
    evil = "bad\n::error file=.github/workflows/x.yml::owned,%0A"
    f = Finding("SEEDS", "warn", evil, [Evidence("train_seed42.log", 1)])
    (line,) = github.workflow_commands([(PREFIX, [f])], PR_FILES)
    # one line; the runner splits at the first "::" after the properties, so later ones are inert data
    assert "\n" not in line and "\r" not in line
    assert line.index("::", 2) == line.index("title=SEEDS::") + len("title=SEEDS")
    assert line.endswith("::2026-05-01_X: bad ⏎ ::error file=.github/workflows/x.yml::owned,%250A")
    weird = Finding("FILES", "fail", "x", [Evidence("a,b:c.log", 2)])
    (line,) = github.workflow_commands([("", [weird])], {"a,b:c.log"})
    assert line == "::error file=a%2Cb%3Ac.log,line=2,title=FILES::repository: x"


def test_at_most_ten_per_level_then_a_notice():
    fails = [Finding("ARTIFACT_SIZE", "fail", f"n{i}", [Evidence("train_seed42.log", i + 1)]) for i in range(13)]
    warns = [Finding("SEEDS", "warn", f"w{i}", [Evidence("train_seed42.log", i + 1)]) for i in range(11)]
    lines = github.workflow_commands([(PREFIX, warns + fails)], PR_FILES)
    assert [l.split(" ", 1)[0] for l in lines] == ["::error"] * 10 + ["::warning"] * 10 + ["::notice"]
    assert lines[0].endswith("::2026-05-01_X: n0") and lines[9].endswith("::2026-05-01_X: n9")
    assert lines[-1] == "::notice title=auditor::4 more finding(s) than GitHub shows as annotations; see the job summary"


def test_step_summary_appends_and_bounds(tmp_path):
    path = tmp_path / "summary.md"
    path.write_text("earlier step\n")
    assert github.append_step_summary("## audit\n", str(path)) is True
    assert path.read_text() == "earlier step\n## audit\n"
    assert github.append_step_summary("x", None) is False
    big = "é" * (github.SUMMARY_LIMIT)  # 2 bytes each: twice the limit
    github.append_step_summary(big, str(path))
    data = path.read_bytes()
    assert len(data) < 1024 * 1024
    assert data.decode("utf-8").endswith("(truncated: GitHub limits a step summary to 1 MiB; see the comment artifact)\n")
