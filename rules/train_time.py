"""TRAIN_TIME: training stops strictly under 600 s on every seed."""

from __future__ import annotations

import re

from auditor.core.model import Evidence, Finding
from rules._util import run_label
from auditor.core.contract import Rule, RuleContext
from rules._cite import README_RULES, pr
from rules._canon import TRAIN_CAP_MS
from rules._rulings import grade

OVERSHOOT_MS = 1_000  # less than one step's worth past the cap

EXPLANATION = """
Record runs must train in under 10 minutes on 8xH100 SXM, on every seed. The figure is the
train_time of the wallclock stop line (`stopping_early: wallclock_cap train_time:...ms`), or of the
last step line when the run ended on its iteration count. That timer excludes compile warm-up steps
(whose weights are restored), periodic validation, and everything after the loop; work that reads
training data (e.g. GPTQ calibration) must happen inside it, which scripts arrange by stopping at
600 s minus a reserve. A run at or over 600,000 ms fails, as do runs whose wallclock cap was raised
or disabled. Non-record (unlimited compute) submissions are reported as info.
"""


def check(ctx: RuleContext) -> list[Finding]:
    sub = ctx.submission
    non_record = ctx.facts.non_record
    over = "info" if non_record else "fail"
    out: list[Finding] = []
    times = []
    for run in ctx.facts.distinct_runs:
        label = run_label(run)
        t = run.train_time_ms
        if run.max_wallclock_seconds is not None and (run.max_wallclock_seconds.value == 0
                                                      or run.max_wallclock_seconds.value > 600):
            v = run.max_wallclock_seconds.value
            out.append(RULE.finding("info" if non_record else "warn",
                                    f"{label}: wallclock cap set to {v} s" + (" (disabled)" if v == 0 else ""),
                                    [run.max_wallclock_seconds.evidence()]))
        if t is None:
            continue
        times.append(t.value)
        if TRAIN_CAP_MS <= t.value < TRAIN_CAP_MS + OVERSHOOT_MS and not non_record:
            out.append(grade(ctx, RULE.finding(
                "fail", f"{label}: train_time {t.value:,.0f} ms overshoots 600,000 ms by "
                        f"{t.value - TRAIN_CAP_MS:,.0f} ms (the cap is checked after each step); train times must "
                        "be strictly under 600 s", [t.evidence()], train_time_ms=t.value), "STRICT_600S"))
        elif t.value >= TRAIN_CAP_MS:
            out.append(RULE.finding(over, f"{label}: train_time {t.value:,.0f} ms is not under 600,000 ms"
                                          + (" (non-record submission)" if non_record else ""),
                                    [t.evidence()], train_time_ms=t.value))
    for path, text in ((sub.readme_path, sub.readme or ""),):
        for no, line in enumerate(text.splitlines(), 1):
            if re.search(r"\bFORCE_STOP_STEP\s*=", line):
                out.append(RULE.finding("warn", "README run command forces a stop step; the stop is not the "
                                                "wallclock cap", [Evidence(path, no, line.strip()[:200])]))
    if not times:
        if sub.runs:
            out.append(RULE.finding("info" if non_record else "warn", "no train time could be read from the logs"))
        return out
    if not out:
        out.append(RULE.finding("pass", f"longest train_time {max(times):,.0f} ms over {len(times)} run(s)",
                                longest_ms=max(times)))
    return out


RULE = Rule(
    id="TRAIN_TIME",
    title="Training under 600 s on every seed",
    summary="Each seed's logged train_time is strictly below 600,000 ms with the standard wallclock cap.",
    explanation=EXPLANATION,
    citations=(README_RULES + "#faq", pr(1908), pr(2146)),
    check=check,
)
