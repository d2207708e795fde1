"""GitHub Actions output: workflow-command annotations and the job step summary.

Annotations go only on files the pull request added or changed (GitHub shows them inline in the
diff; elsewhere they are noise). A blocking finding with no such file still gets a file-less
annotation so the failed check explains itself. GitHub shows at most 10 errors and 10 warnings per
step, so we emit the most important ones and say how many were left out. All submission text passes
through the workflow-command escapers: a `::` or newline in a log cannot forge a command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from auditor.core.grades import finding_status
from reports import escape

MAX_PER_LEVEL = 10
SUMMARY_LIMIT = 1024 * 1024 - 4096  # GitHub rejects step summaries over 1 MiB


@dataclass(frozen=True)
class Annotation:
    level: str  # error | warning
    title: str
    message: str
    file: str | None = None
    line: int | None = None

    def command(self) -> str:
        props = []
        if self.file:
            props.append(f"file={escape.workflow_property(self.file)}")
            if self.line:
                props.append(f"line={int(self.line)}")
        props.append(f"title={escape.workflow_property(self.title)}")
        return f"::{self.level} {','.join(props)}::{escape.workflow_data(self.message)}"


def annotations(units: Iterable[tuple[str, list]], pr_files: set[str]) -> tuple[list[Annotation], dict[str, int]]:
    """units: (folder prefix or "" for repository-level, findings). Fails first, then warns.
    Returns the annotations to emit and, per level, how many were left out."""
    found: list[tuple[int, Annotation]] = []
    for prefix, findings in units:
        label = prefix.rsplit("/", 1)[-1] if prefix else "repository"
        for f in findings:
            level = finding_status(f).annotation
            if level is None:
                continue
            msg = f"{label}: {escape.plain(f.message, 900)}"
            ev = next((e for e in f.evidence if e.path and _join(prefix, e.path) in pr_files), None)
            if ev is not None:
                found.append((0 if level == "error" else 1,
                              Annotation(level, f.rule, msg, _join(prefix, ev.path), ev.line)))
            elif level == "error":
                found.append((0, Annotation(level, f.rule, msg)))
    found.sort(key=lambda t: t[0])
    out: list[Annotation] = []
    counts = {"error": 0, "warning": 0}
    for _, a in found:
        if counts[a.level] < MAX_PER_LEVEL:
            out.append(a)
        counts[a.level] += 1
    return out, {k: max(0, v - MAX_PER_LEVEL) for k, v in counts.items()}


def _join(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def workflow_commands(units: Iterable[tuple[str, list]], pr_files: set[str]) -> list[str]:
    anns, dropped = annotations(units, pr_files)
    lines = [a.command() for a in anns]
    left = sum(dropped.values())
    if left:
        lines.append(f"::notice title=auditor::{left} more finding(s) than GitHub shows as annotations; "
                     "see the job summary")
    return lines


def append_step_summary(markdown: str, path: str | None) -> bool:
    """Append to $GITHUB_STEP_SUMMARY; returns False when there is no summary file to write."""
    if not path:
        return False
    text = markdown
    if len(text.encode("utf-8")) > SUMMARY_LIMIT:
        text = text.encode("utf-8")[:SUMMARY_LIMIT].decode("utf-8", "ignore")
        text += "\n\n… (truncated: GitHub limits a step summary to 1 MiB; see the comment artifact)\n"
    with open(Path(path), "a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    return True
