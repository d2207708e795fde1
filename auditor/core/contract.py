"""The rule contract and the audit's inputs and outputs.

A rule is a stable ID, a title, an explanation a maintainer reads with `auditor rules ID`, citations
(URLs into the rulings) and a check: RuleContext -> list[Finding]. Rules never read the folder; they
read the Submission the loader built, the facts derived from it once (auditor/facts.py), the shared
code analysis, and the observations of the dynamic probes (the sandboxed gauntlet) when they ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from auditor.core.grades import Verdict, worst_status
from auditor.core.model import Evidence, Finding, Issue, Submission


@dataclass
class Reference:
    """The frontier a submission is compared against (for SIGNIFICANCE)."""

    label: str
    val_bpb: float | None = None
    val_loss: float | None = None
    seed_bpbs: list[float] = field(default_factory=list)
    seed_losses: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Ruling:
    """A maintainer ruling a check relies on, with the date it took effect.

    A folder is judged by the rulings in force on its date: a pattern first ruled out after that date
    is reported as `info` ("predates the ruling of ..."), and a disputed ruling never makes a FAIL on
    its own (at most a warn a maintainer must look at).
    """

    id: str
    says: str  # one sentence
    effective: str  # YYYY-MM-DD
    source: str  # URL
    rules: tuple[str, ...]  # the rule IDs whose findings it grades
    disputed: str | None = None  # URL of the dispute, when there is one


@dataclass
class AuditOptions:
    """Everything the caller decides about an audit; rules read it, never write it."""

    reference: Reference | None = None
    gauntlet: bool = False
    device: str = "cpu"
    gauntlet_timeout: float = 240.0
    gauntlet_control: bool = True  # also run the reference evaluator on the same random stream
    gauntlet_flip: bool = True  # the flip test: fork at the first validation loss, evaluate a re-drawn stream too
    gauntlet_threads: int | None = None  # CPU threads the sandboxed run may use (None: the sandbox default)
    unsafe_no_sandbox: bool = False  # run the gauntlet even where no OS-level isolation (bubblewrap) exists
    val_manifest: dict[str, Any] | None = None  # a non-FineWeb validation set (val_tokens, val_bytes, vocab_size)
    as_of: str | None = None  # YYYY-MM-DD: judge by the rulings in force then (else the submission's own date)
    as_of_source: str | None = None  # why that date ("--as-of", "PR opened")
    waivers: tuple = ()  # auditor.core.waivers.Waiver, applied by the engine after the rules ran
    folder_path: str | None = None  # the folder's repository path, which waiver folder globs match
    today: str | None = None  # YYYY-MM-DD: the date waiver expiry is judged on (set by the commands)


@dataclass
class RuleContext:
    """What a rule's check is given. `cache` holds analyses shared by several rules (computed once)."""

    submission: Submission
    options: AuditOptions = field(default_factory=AuditOptions)
    facts: Any = None  # auditor.facts.Facts (typed loosely: facts sit beside this layer, not below it)
    observations: dict[str, Any] = field(default_factory=dict)  # probe name -> its observation
    cache: dict[str, Any] = field(default_factory=dict)

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
    check: Callable[[RuleContext], list[Finding]]
    kind: str = "evidence"  # evidence | code | dynamic

    def finding(self, severity: str, message: str, evidence: list[Evidence] | None = None,
                confidence: str = "high", **data: Any) -> Finding:
        return Finding(self.id, severity, message, list(evidence or []), confidence, dict(data))

    def judge(self, issue: Issue) -> Finding:
        """An issue recorded while loading (or by the CI gate), as this rule's finding."""
        return Finding(self.id, issue.severity, issue.message, list(issue.evidence), issue.confidence,
                       dict(issue.data))


@dataclass
class AuditResult:
    submission: Submission
    findings: list[Finding]
    verdict: Verdict
    rules: list[Rule]
    options: AuditOptions
    facts: Any = None  # auditor.facts.Facts
    observations: dict[str, Any] = field(default_factory=dict)
    waivers: list = field(default_factory=list)  # auditor.core.waivers.WaiverOutcome of each concerned waiver

    def rule_status(self, rule_id: str) -> str:
        return worst_status(f for f in self.findings if f.rule == rule_id).name
