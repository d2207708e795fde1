"""Orchestration: Submission -> rules -> findings -> verdict.

The verdict is FAIL when a rule reports a high-confidence fail, NEEDS_REVIEW when anything needs a
human (a warn, or a medium-confidence fail), PASS otherwise. A rule that crashes does not crash the
audit: it becomes a warn finding naming the rule, so the maintainer knows that part was not checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditor import __version__
from auditor.loader import load_submission
from auditor.model import Finding, Submission
from rules import all_rules
from rules.base import AuditContext, AuditOptions, Rule

SEVERITY_ORDER = {"fail": 0, "warn": 1, "info": 2, "pass": 3}


@dataclass
class AuditResult:
    submission: Submission
    findings: list[Finding]
    verdict: str
    rules: list[Rule]
    options: AuditOptions
    sections: dict[str, Any] = field(default_factory=dict)  # extra report sections (e.g. gauntlet stages)
    context: AuditContext | None = None  # the rules' shared analyses, so reports show the figures rules used

    def rule_status(self, rule_id: str) -> str:
        sev = [f.severity for f in self.findings if f.rule == rule_id]
        if not sev:
            return "n/a"
        worst = min(sev, key=SEVERITY_ORDER.__getitem__)
        if worst == "fail" and all(f.confidence == "medium" for f in self.findings
                                   if f.rule == rule_id and f.severity == "fail"):
            return "review"
        return worst


def verdict_of(findings: list[Finding]) -> str:
    if any(f.severity == "fail" and f.confidence == "high" for f in findings):
        return "FAIL"
    if any(f.severity == "warn" or (f.severity == "fail" and f.confidence != "high") for f in findings):
        return "NEEDS_REVIEW"
    return "PASS"


def run_rules(ctx: AuditContext, rules: list[Rule]) -> list[Finding]:
    findings: list[Finding] = []
    for rule in rules:
        try:
            out = rule.check(ctx)
        except (Exception, RecursionError) as exc:  # a broken rule must not hide the others
            out = [Finding(rule.id, "warn", f"this rule could not be evaluated ({type(exc).__name__}: "
                                            f"{str(exc)[:200]}); check it by hand")]
        findings.extend(out)
    return findings


def audit_submission(sub: Submission, options: AuditOptions | None = None) -> AuditResult:
    options = options or AuditOptions()
    rules = all_rules()
    ctx = AuditContext(submission=sub, options=options)
    findings = run_rules(ctx, rules)
    order = {r.id: i for i, r in enumerate(rules)}
    findings.sort(key=lambda f: (order.get(f.rule, len(order)), SEVERITY_ORDER[f.severity],
                                 [(e.path or "", e.line or 0) for e in f.evidence], f.message))
    result = AuditResult(sub, findings, verdict_of(findings), rules, options, context=ctx)
    for hook in options.extra.get("post_hooks", []):
        hook(result, ctx)
    result.verdict = verdict_of(result.findings)
    return result


def audit_folder(path: str, options: AuditOptions | None = None) -> AuditResult:
    return audit_submission(load_submission(path), options)


def result_to_json(result: AuditResult) -> dict[str, Any]:
    """The stable JSON shape. Later features add keys; they never rename or remove one."""
    sub = result.submission
    meta = sub.meta
    ref = result.options.reference
    return {
        "verdict": result.verdict,
        "submission": {
            "name": sub.name,
            "track": sub.track,
            "files": sub.files,
            "readme": sub.readme_path,
            "submission_json": meta.path,
            "claims": {
                "name": meta.name,
                "author": meta.author,
                "github_id": meta.github_id,
                "date": meta.date,
                "track": meta.track,
                "val_bpb": meta.val_bpb,
                "val_bpb_source": meta.val_bpb_source,
                "val_loss": meta.val_loss,
                "bytes_total": meta.bytes_total,
                "bytes_code": meta.bytes_code,
                "seeds": meta.seeds,
            },
            "logs": sub.logs,
            "code": [
                {"path": c.path, "shipped_bytes": c.shipped_bytes, "stub": c.stub, "stub_target": c.stub_target,
                 "decoded_bytes": None if c.text is None else len(c.text.encode("utf-8", "replace")),
                 "decode_error": c.decode_error}
                for c in sub.code
            ],
        },
        "reference": None if ref is None else {
            "label": ref.label, "val_bpb": ref.val_bpb, "val_loss": ref.val_loss,
            "seed_bpbs": ref.seed_bpbs, "seed_losses": ref.seed_losses,
        },
        "runs": [r.to_json() for r in sub.runs],
        "rules": [{"id": r.id, "title": r.title, "status": result.rule_status(r.id)} for r in result.rules],
        "findings": [f.to_json() for f in result.findings],
        "sections": result.sections,
        "tool": {"name": "auditor", "version": __version__},
    }
