"""SEEDS: at least three distinct seeds of one configuration, each with its own log."""

from __future__ import annotations

from auditor.core.model import Evidence, Finding
from rules._rulings import grade
from rules._util import run_label
from auditor.core.contract import Rule, RuleContext
from rules._cite import README_RULES, pr

EXPLANATION = """
A leaderboard row needs a mean over (normally) three training runs with distinct seeds, all from the
same submitted configuration, each backed by its own log. The auditor counts distinct seeds among
runs that reached a final score line (a train.log that repeats a seed log counts once), checks that
the seeds listed in submission.json have logs, and that the runs look like one configuration: the
same score label, validation token count, world size and logged code size. Fewer than three seeds
fails a record submission and is a warning for a non-record one.
"""


def check(ctx: RuleContext) -> list[Finding]:
    sub = ctx.submission
    non_record = ctx.facts.non_record
    out: list[Finding] = []
    runs = [r for r in ctx.facts.distinct_runs if r.score_phase is not None]
    seeds = sorted({r.seed.value for r in runs if r.seed is not None})
    unseeded = [r for r in runs if r.seed is None]
    for r in unseeded:
        out.append(RULE.finding("warn", f"{run_label(r)}: no seed could be read from the log", [Evidence(r.path)]))
    n = len(seeds)
    if n < 3:
        sev = "info" if non_record else "fail"
        out.append(grade(ctx, RULE.finding(sev, f"{n} distinct seed(s) with a final score line "
                                                f"({', '.join(map(str, seeds)) or 'none'}); a record needs at least 3"
                                                + (" (non-record track: no seed count)" if non_record else ""),
                                           [Evidence(r.path) for r in runs], seeds=seeds), "THREE_SEEDS"))
    listed = [s for s in sub.meta.seeds if s not in seeds]
    if listed:
        out.append(RULE.finding("warn", "submission.json lists seed(s) with no log: " + ", ".join(map(str, listed)),
                                [Evidence(sub.meta.path, sub.meta.line_of.get("seeds"))], missing=listed))
    # A different validation token count or world size is a different configuration; a different logged
    # code size is an edited script (a comment, a log line), which CLAIM_CONSISTENCY reports.
    for attr, what, sev in (("val_tokens", "validation token count", "warn"), ("world_size", "world size", "warn"),
                            ("code_bytes", "logged code size", "info")):
        values = {getattr(r, attr).value for r in runs if getattr(r, attr) is not None}
        if len(values) > 1:
            out.append(RULE.finding("info" if non_record else sev,
                                    f"runs differ in {what}: {', '.join(str(v) for v in sorted(values))}; "
                                    "are they one configuration?",
                                    [getattr(r, attr).evidence() for r in runs if getattr(r, attr) is not None]))
    labels = {ctx.facts.score(r).label for r in runs}
    if len(labels) > 1:
        out.append(RULE.finding("info" if non_record else "warn",
                                "runs end on different score lines: " + ", ".join(sorted(labels)),
                                [ctx.facts.score(r).evidence() for r in runs]))
    if not [f for f in out if f.severity in ("fail", "warn")] and n >= 3:
        out.append(RULE.finding("pass", f"{n} distinct seeds ({', '.join(map(str, seeds))}) with consistent runs",
                                seeds=seeds))
    return out


RULE = Rule(
    id="SEEDS",
    title="Three or more seeds of one configuration",
    summary="At least three distinct seeds, each with a log and a final score line, from the same configuration.",
    explanation=EXPLANATION,
    citations=(README_RULES + "#submission-process", pr(1902), pr(2124)),
    check=check,
)
