"""Severity, confidence, the status a finding shows and the verdict a folder gets: one table each.

Every place that ranks findings, picks an exit code, an icon, a SARIF level or a GitHub annotation
level reads these tables, so the CLI, the CI gate and every report agree by construction.

- A finding has a severity (fail | warn | info | pass) and a confidence (high: direct evidence or data
  flow; medium: a pattern match).
- Its *status* combines both: a high-confidence fail is `fail`; a medium-confidence fail is `review`
  (a person must look); warn, info and pass stand as they are.
- A finding a maintainer waived (with a reason, auditor/core/waivers.py) has the status `waived`
  whatever its severity: it is shown with its reason and counts toward nothing.
- A folder's verdict is FAIL when any finding's status is `fail`, NEEDS_REVIEW when any is `review` or
  `warn`, PASS otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Iterable


class Severity(StrEnum):
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    PASS = "pass"

    @property
    def rank(self) -> int:
        """0 is the worst; findings are sorted by it."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.FAIL: 0, Severity.WARN: 1, Severity.INFO: 2, Severity.PASS: 3}


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"


class Verdict(StrEnum):
    PASS = "PASS"
    NEEDS_REVIEW = "NEEDS_REVIEW"
    FAIL = "FAIL"

    @property
    def row(self) -> "VerdictRow":
        return VERDICTS[self]

    @property
    def rank(self) -> int:
        return self.row.rank

    @property
    def exit_code(self) -> int:
        return self.row.exit_code


@dataclass(frozen=True)
class VerdictRow:
    name: str
    rank: int  # higher is worse
    exit_code: int
    emoji: str
    words: str  # for prose ("NEEDS REVIEW")

    @property
    def icon(self) -> str:
        return f"{self.emoji} {self.name}"


VERDICTS: dict[Verdict, VerdictRow] = {
    Verdict.PASS: VerdictRow("PASS", 0, 0, "✅", "PASS"),
    Verdict.NEEDS_REVIEW: VerdictRow("NEEDS_REVIEW", 1, 3, "⚠️", "NEEDS REVIEW"),
    Verdict.FAIL: VerdictRow("FAIL", 2, 1, "❌", "FAIL"),
}
EXIT_TOOL_ERROR = 2  # bad path, unreadable input, bad usage: never a verdict
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class StatusRow:
    """How one finding (or a rule's worst finding) is shown and what it does to the verdict."""

    name: str
    rank: int  # 0 is the worst
    icon: str
    verdict: Verdict  # the verdict this status alone implies
    sarif_level: str  # SARIF 2.1.0 §3.27.10
    sarif_kind: str  # SARIF 2.1.0 §3.27.9: a level other than "none" requires kind "fail"
    annotation: str | None  # GitHub workflow-command level, or None for no annotation
    alert: bool  # a code-scanning alert: SARIF carries it by default (the rest only with --sarif-all)


STATUSES: dict[str, StatusRow] = {row.name: row for row in (
    StatusRow("fail", 0, "❌ fail", Verdict.FAIL, "error", "fail", "error", True),
    StatusRow("review", 1, "⚠️ review", Verdict.NEEDS_REVIEW, "warning", "fail", "warning", True),
    StatusRow("warn", 2, "⚠️ warn", Verdict.NEEDS_REVIEW, "warning", "fail", "warning", True),
    StatusRow("waived", 3, "🏳️ waived", Verdict.PASS, "none", "informational", None, False),
    StatusRow("info", 4, "ℹ️ info", Verdict.PASS, "none", "informational", None, False),
    StatusRow("pass", 5, "✅ pass", Verdict.PASS, "none", "pass", None, False),
    StatusRow("n/a", 6, "— n/a", Verdict.PASS, "none", "notApplicable", None, False),
)}


# A rule's SARIF defaultConfiguration.level before any result of it is seen: evidence and dynamic
# rules fail on direct evidence (error); code rules mostly match patterns, which a person reviews
# (warning). A rule with results in the log takes the worst level among them instead.
SARIF_DEFAULT_LEVEL = {"evidence": "error", "dynamic": "error", "code": "warning"}
SARIF_LEVEL_RANK = {"error": 0, "warning": 1, "note": 2, "none": 3}


def status_of(severity: str, confidence: str) -> StatusRow:
    if severity == Severity.FAIL:
        return STATUSES["fail" if confidence == Confidence.HIGH else "review"]
    return STATUSES[str(severity)]


def finding_status(finding) -> StatusRow:
    """The status one finding shows: `waived` when a waiver matched it, else by severity and confidence."""
    if getattr(finding, "waived", None):
        return STATUSES["waived"]
    return status_of(finding.severity, finding.confidence)


def worst_status(findings: Iterable) -> StatusRow:
    rows = [finding_status(f) for f in findings]
    return min(rows, key=lambda r: r.rank) if rows else STATUSES["n/a"]


def verdict_of(findings: Iterable) -> Verdict:
    """Waived findings count toward nothing (their status implies PASS)."""
    return worst_verdict(finding_status(f).verdict for f in findings)


def worst_verdict(verdicts: Iterable[Verdict | str]) -> Verdict:
    return max((Verdict(v) for v in verdicts), key=lambda v: v.rank, default=Verdict.PASS)
