"""Turning analysis results into findings: severity by reachability, evidence in decoded code.

A pattern on a path that runs with the submitted configuration keeps its severity. The same pattern
behind an environment switch that is off by default (and not turned on by the README's run command)
becomes `info` naming the switch; in a function nothing calls it becomes `info` too. Reviewers asked
for exactly this: dormant code is worth knowing about, never a reason to fail a record.
"""

from __future__ import annotations

from typing import Any, Callable

from auditor.analysis import get_analysis
from auditor.analysis.program import CodeAnalysis, Reach
from auditor.core.model import Evidence, Finding
from auditor.core.contract import Rule


def no_code(rule: Rule, ca: CodeAnalysis) -> list[Finding] | None:
    """The finding to return when there is nothing to analyse (else None)."""
    if ca.python_files or ca.c_files:
        return None
    if ca.unreadable and set(ca.unreadable) == set(ca.parse_errors):
        bad = ", ".join(sorted(ca.parse_errors))
        return [rule.finding("info", f"not checked: {bad} does not parse (FILES reports it)",
                             unreadable=sorted(ca.unreadable))]
    if ca.unreadable:
        bad = ", ".join(f"{p} ({why})" for p, why in sorted(ca.unreadable.items()))
        return [rule.finding("warn", f"the code could not be analysed: {bad}; check this rule by hand",
                             confidence="medium", unreadable=sorted(ca.unreadable))]
    return [rule.finding("info", "no code shipped; not checked")]


def graded(rule: Rule, ca: CodeAnalysis, reach: Reach, severity: str, confidence: str, message: str,
           evidence: list[Evidence], **data: Any) -> Finding:
    note = ca.decoded_note(e.path for e in evidence if e.path)
    if note:
        message = f"{message} ({note})"
    data = {**data, "reach": reach.state}
    if reach.state == "live" and reach.env_vars and severity in ("fail", "warn"):
        data["enabled_by"] = sorted(reach.env_vars)  # the evidence that decided: the README or the logs
        message = f"{message} (this path runs with {ca.describe_vars(reach.env_vars)})"
    if reach.state == "live" or severity in ("info", "pass"):
        return rule.finding(severity, message, evidence, confidence, **data)
    if reach.state == "dormant":
        data["disabled_by"] = sorted(reach.env_vars)
        return rule.finding("info", f"dormant path (does not run with {ca.describe_vars(reach.env_vars)}): "
                                    f"{message}", evidence, confidence, **data)
    return rule.finding("info", f"in code that nothing reachable from the entry point calls: {message}",
                        evidence, confidence, **data)


def passed(rule: Rule, ca: CodeAnalysis, what: str, extra: str = "") -> Finding:
    msg = f"no {what} found in {ca.checked_files()}"
    if ca.unreadable:
        msg += "; not analysed: " + ", ".join(f"{p} ({why})" for p, why in sorted(ca.unreadable.items()))
    if extra:
        msg += f"; {extra}"
    return rule.finding("pass", msg, files=ca.python_files + ca.c_files)


def blocking(findings: list[Finding]) -> bool:
    return any(f.severity in ("fail", "warn") for f in findings)


Search = Callable[[CodeAnalysis], "tuple[list[Finding], str]"]


def check_code(ctx, rule: Rule, search: Search, looked_for: str) -> list[Finding]:
    """The prologue and tail every code rule shares.

    The analysis is computed once per audit; with no readable code the rule says so; otherwise the
    rule's own `search` runs and, when nothing it found blocks (fail or warn), a pass names what was
    looked for, where, and the rule's note (e.g. the score-first order it verified).
    """
    ca = get_analysis(ctx)
    early = no_code(rule, ca)
    if early is not None:
        return early
    out, note = search(ca)
    if not blocking(out):
        out.append(passed(rule, ca, looked_for, note))
    return out
