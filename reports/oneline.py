"""One line per audited folder, for terminals and git hooks (the full review is `auditor run`)."""

from __future__ import annotations

from auditor.core.grades import finding_status


def folder_line(path: str, result) -> str:
    """`❌ FAIL records/t/x: ARTIFACT_SIZE, TRAIN_TIME` — the verdict and the rules that decided it."""
    rules = sorted({f.rule for f in result.findings if finding_status(f).alert})
    tail = f": {', '.join(rules)}" if rules else ""
    return f"{result.verdict.row.icon} {path}{tail}"
