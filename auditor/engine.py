"""Orchestration: folder -> Submission -> facts -> probes -> rules -> findings -> verdict.

The engine is the only place that runs things in order. It derives the facts once, runs the dynamic
probes the options ask for (the sandboxed gauntlet) and hands their observations to the rules, runs
every registered rule, sorts the findings, applies the maintainers' waivers (auditor/core/waivers.py:
a waived finding keeps its data and counts toward nothing) and grades the verdict (auditor/core/grades.py). A rule
that crashes does not crash the audit: it becomes a warn finding naming the rule, so the maintainer
knows that part was not checked.
"""

from __future__ import annotations

from auditor import facts as facts_mod
from auditor.core.contract import AuditOptions, AuditResult, Rule, RuleContext
from auditor.core.grades import Severity, verdict_of
from auditor.core.model import Finding, Submission
from auditor.core.waivers import apply_waivers
from auditor.load.loader import load_submission
from rules import all_rules


def run_rules(ctx: RuleContext, rules: list[Rule]) -> list[Finding]:
    findings: list[Finding] = []
    for rule in rules:
        try:
            out = rule.check(ctx)
        except (Exception, RecursionError) as exc:  # a broken rule must not hide the others
            out = [Finding(rule.id, "warn", f"this rule could not be evaluated ({type(exc).__name__}: "
                                            f"{str(exc)[:200]}); check it by hand")]
        findings.extend(out)
    return findings


def run_probes(sub: Submission, options: AuditOptions) -> dict[str, object]:
    """Observations of the dynamic probes the options ask for (none for a static audit)."""
    if not options.gauntlet:
        return {}
    from auditor.sandbox.gauntlet import run_gauntlet  # imports torch: only when asked for
    from auditor.sandbox.sandbox import Limits

    limits = Limits(threads=options.gauntlet_threads) if options.gauntlet_threads else None
    return {"gauntlet": run_gauntlet(sub, device=options.device or "cpu", timeout=float(options.gauntlet_timeout),
                                     limits=limits, control=options.gauntlet_control,
                                     unsafe=options.unsafe_no_sandbox, flip=options.gauntlet_flip)}


def sort_findings(findings: list[Finding], rules: list[Rule]) -> list[Finding]:
    order = {r.id: i for i, r in enumerate(rules)}
    return sorted(findings, key=lambda f: (order.get(f.rule, len(order)), Severity(f.severity).rank,
                                           [(e.path or "", e.line or 0) for e in f.evidence], f.message))


def audit_submission(sub: Submission, options: AuditOptions | None = None,
                     observations: dict[str, object] | None = None) -> AuditResult:
    """`observations`, when given, are used instead of running the probes (a gauntlet run kept from
    earlier, or one recorded elsewhere)."""
    options = options or AuditOptions()
    rules = all_rules()
    facts = facts_mod.derive(sub, options.as_of, options.as_of_source)
    ctx = RuleContext(submission=sub, options=options, facts=facts,
                      observations=run_probes(sub, options) if observations is None else observations)
    findings = sort_findings(run_rules(ctx, rules), rules)
    waivers = apply_waivers(findings, options.waivers, (options.folder_path or sub.name, sub.name), options.today)
    return AuditResult(sub, findings, verdict_of(findings), rules, options, facts=ctx.facts,
                       observations=ctx.observations, waivers=waivers)


def audit_folder(path: str, options: AuditOptions | None = None) -> AuditResult:
    return audit_submission(load_submission(path), options)
