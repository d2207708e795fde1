"""Render an AuditResult as Markdown (the maintainer's review) or JSON (machines).

Both are pure functions of the result: no clock, no absolute paths, no environment, so the same
folder gives byte-identical output anywhere.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from auditor.core.grades import STATUSES
from reports import escape
from reports.json_doc import result_to_json

FORMATS = ("md", "json")
GAUNTLET_STAGE_ICON = {"pass": "pass", "fail": "FAIL", "needs_gpu": "needs GPU", "skipped": "skipped"}


def environment() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"), undefined=StrictUndefined,
                      autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["md"] = escape.md
    env.filters["code"] = escape.code
    env.filters["num"] = _num
    env.filters["ms_s"] = lambda v: "—" if v is None else f"{v / 1000:.1f} s"
    env.filters["int"] = lambda v: "—" if v is None else f"{int(v):,}"
    return env


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.{digits}f}"


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def writable(text: str) -> str:
    """Output must encode as UTF-8: a lone surrogate that slipped through from submission text
    would otherwise crash the write after the whole audit ran."""
    return _SURROGATE.sub("\ufffd", text)


def to_json_text(doc: dict[str, Any]) -> str:
    return writable(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False, default=str) + "\n")


def render_json(result) -> str:
    return to_json_text(finite(result_to_json(result)))


def finite(obj: Any) -> Any:
    """JSON has no NaN/Infinity; a figure read as such is reported as a string."""
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return str(obj)
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    return obj


def review_context(result) -> dict[str, Any]:
    """Everything the Markdown templates need, pre-digested (templates stay logic-light)."""
    sub = result.submission
    by_rule: dict[str, list] = {}
    for f in result.findings:
        by_rule.setdefault(f.rule, []).append(f)
    rows = []
    for r in result.rules:
        fs = by_rule.get(r.id, [])
        status = result.rule_status(r.id)
        headline = next((f.message for sev in ("fail", "warn", "pass", "info") for f in fs if f.severity == sev), "")
        rows.append({"id": r.id, "title": r.title, "status": STATUSES[status].icon, "headline": headline})
    must_fix = [f for f in result.findings if f.severity == "fail" and not f.waived]
    review = [f for f in result.findings if f.severity == "warn" and not f.waived]
    waived = [f for f in result.findings if f.waived]
    runs = []
    facts = result.facts
    for run in sub.runs:
        score = facts.score(run)
        timing = facts.eval_time(run)
        runs.append({
            "log": run.path + (f" #{run.index + 1}" if run.index else ""),
            "seed": None if run.seed is None else run.seed.value,
            "train_ms": None if run.train_time_ms is None else run.train_time_ms.value,
            "eval_s": None if timing is None else timing.seconds,
            "val_tokens": None if run.val_tokens is None else run.val_tokens.value,
            "label": None if score is None else score.label,
            "val_loss": None if score is None else score.val_loss,
            "val_bpb": None if score is None else score.val_bpb,
            "total_bytes": None if run.total_bytes is None else run.total_bytes.value,
        })
    not_checked = [
        "whether the shipped code reproduces these logs (nothing was executed)" if not result.options.gauntlet
        else "full-scale reproduction on 8xH100 (the gauntlet ran a shrunken CPU run)",
        "hardware claims (8xH100 SXM) and wall-clock outside the logged timers",
        "originality, attribution and chronological PR order",
    ]
    gauntlet = result.observations.get("gauntlet")
    if gauntlet is not None and gauntlet.needs_gpu:
        not_checked.append("gauntlet stages that need a GPU (" + ", ".join(gauntlet.needs_gpu) +
                           "); rerun with --gauntlet --device cuda")
    return {
        "name": sub.name,
        "track": sub.track,
        "verdict": result.verdict,
        "verdict_icon": result.verdict.row.icon,
        "meta": sub.meta,
        "facts": result.facts,
        "rows": rows,
        "runs": runs,
        "must_fix": must_fix,
        "review": review,
        "findings": result.findings,
        "by_rule": by_rule,
        "evidence_by_rule": {k: [f for f in v if f.severity != "pass"] for k, v in by_rule.items()
                             if any(f.severity != "pass" for f in v)},
        "rules": {r.id: r for r in result.rules},
        "counts": {**{s: sum(1 for f in result.findings if f.severity == s and not f.waived)
                      for s in ("fail", "warn", "info", "pass")}, "waived": len(waived)},
        "waived": waived,
        "waiver_notes": [o for o in getattr(result, "waivers", []) if o.status != "applied"],
        "reference": result.options.reference,
        "not_checked": not_checked,
        "gauntlet": result.options.gauntlet,
        "gauntlet_run": gauntlet,
        "stage_icon": GAUNTLET_STAGE_ICON,
    }


def render_markdown(result, template: str = "review.md.j2", **extra: Any) -> str:
    ctx = review_context(result)
    ctx.update(extra)
    return writable(environment().get_template(template).render(**ctx))


def render(result, fmt: str) -> str:
    if fmt == "json":
        return render_json(result)
    return render_markdown(result)
