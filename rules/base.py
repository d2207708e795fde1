"""What a rule is, and what it is given.

A rule is a stable ID, a title, citations (URLs into the rulings), an explanation a maintainer can
read with `auditor rules ID`, and a check: AuditContext -> list[Finding]. Rules never read the folder
themselves; they read the Submission the loader built (and analyses cached on the context).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from auditor.model import Evidence, Finding, Submission

REPO = "https://github.com/openai/parameter-golf"


def pr(n: int) -> str:
    return f"{REPO}/pull/{n}"


def issue(n: int) -> str:
    return f"{REPO}/issues/{n}"


README_RULES = f"{REPO}/blob/main/README.md"


@dataclass
class Reference:
    """The frontier a submission is compared against (for SIGNIFICANCE)."""

    label: str
    val_bpb: float | None = None
    val_loss: float | None = None
    seed_bpbs: list[float] = field(default_factory=list)
    seed_losses: list[float] = field(default_factory=list)


@dataclass
class AuditOptions:
    reference: Reference | None = None
    gauntlet: bool = False
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuditContext:
    submission: Submission
    options: AuditOptions = field(default_factory=AuditOptions)
    cache: dict[str, Any] = field(default_factory=dict)  # shared analyses, computed once per audit

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    summary: str
    explanation: str
    citations: tuple[str, ...]
    check: Callable[[AuditContext], list[Finding]]
    kind: str = "evidence"  # evidence | code | dynamic

    def finding(self, severity: str, message: str, evidence: list[Evidence] | None = None,
                confidence: str = "high", **data: Any) -> Finding:
        return Finding(self.id, severity, message, list(evidence or []), confidence, dict(data))
