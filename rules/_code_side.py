"""Code-side evidence for the lead's FULL_VAL and ARTIFACT_SIZE rules (not a rule module itself).

FULL_VAL: the validation tokens sliced or capped before scoring (PPM_SUBSET_TOKENS-style).
ARTIFACT_SIZE: helper sources imported or compiled at run time that live outside the counted train_gpt.py.
"""

from __future__ import annotations

import ast
import re

from auditor.analysis import get_analysis
from auditor.analysis.envdefaults import UNKNOWN
from auditor.analysis.program import CodeAnalysis, Reach
from rules._code import graded
from auditor.core.model import Finding
from auditor.core.contract import Rule
from rules._cite import README_RULES, pr

_CAP = re.compile(r"(subset|limit|cap\b|_cap|cap_|max_?(val_?|eval_?)?tok|num_?(val_?|eval_?)tok|fraction|frac\b|"
                  r"debug|quick|smoke|truncat|first_?n|n_?eval_?tok|eval_?tokens)", re.I)

LITERAL_CAP = 100_000  # smaller literal slices are warm-up / smoke inputs, not an evaluated subset

FULL_VAL = Rule(id="FULL_VAL", title="Full validation split (code side)", summary="", explanation="",
                citations=(README_RULES, pr(1858), pr(1854)), check=lambda ctx: [], kind="code")
ARTIFACT_SIZE = Rule(id="ARTIFACT_SIZE", title="Artifact size (code side)", summary="", explanation="",
                     citations=(README_RULES, pr(1514), pr(1420)), check=lambda ctx: [], kind="code")


def _cap_source(ca: CodeAnalysis, node: ast.AST | None, labels: frozenset) -> tuple[str, object] | None:
    """(description, default value) when a slice bound is a configured cap or a literal size."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and node.value >= LITERAL_CAP:
        return f"literal {node.value:,}", node.value
    for l in sorted(labels):
        if l.startswith("env:") and _CAP.search(l[4:]):
            var = l[4:]
            if var in ca.envm.overrides:
                return ca.envm.describe(var), ca.envm.overrides[var]
            d = ca.envm.defaults.get(var)
            return ca.envm.describe(var), (None if d is None else d[0])
    text = ast.unparse(node)
    for n in ast.walk(node):
        if isinstance(n, (ast.Name, ast.Attribute)):
            leaf = ast.unparse(n).rsplit(".", 1)[-1]
            if _CAP.search(leaf):
                return f"`{text[:60]}`", UNKNOWN
    return None


def _off(value: object) -> bool:
    if value is UNKNOWN or value is None:
        return value is None
    try:
        return float(value) <= 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value).strip().lower() in ("", "0", "false", "none", "off", "no")


def full_val_findings(ctx) -> list[Finding]:
    ca = get_analysis(ctx)
    out: list[Finding] = []
    seen = set()
    for ev in ca.of("val_slice"):
        for bound in ("upper", "lower"):
            node = getattr(ev.data, bound)
            if node is None:
                continue
            cap = _cap_source(ca, node, frozenset(l for l in ev.labels))
            if cap is None or (ev.path, ev.line) in seen:
                continue
            seen.add((ev.path, ev.line))
            desc, value = cap
            reach = ca.reach(ev)
            msg = (f"{ca.where(ev.func)} slices the validation tokens `{ev.data.base}` with a cap ({desc}); a "
                   f"score over a subset is not the full-validation score the README requires (#1858, #1854 "
                   f"PPM subsets)")
            if reach.state == "live" and _off(value):
                out.append(graded(FULL_VAL, ca, reach, "info", "medium",
                                  msg + "; the cap is off with the default/README configuration", [ca.ev_evidence(ev)],
                                  pattern="val_cap", cap=desc))
            else:
                conf = "high" if value is not UNKNOWN else "medium"
                out.append(graded(FULL_VAL, ca, reach, "fail", conf,
                                  msg + ("" if conf == "high" else ". Question for the author: is this cap active in "
                                         "the run that produced the reported score?"),
                                  [ca.ev_evidence(ev)], pattern="val_cap", cap=desc))
    return out


def _helper_refs(ca: CodeAnalysis) -> dict[str, list[tuple[Reach, object]]]:
    entry = ca.entry
    sub = ca.sub
    counted = {entry} if entry else set()
    ep = sub.entry_point
    if ep is not None and ep.stub_target:
        counted.add(ep.stub_target)
    shipped = {c.path: c for c in sub.code}
    by_base: dict[str, list[str]] = {}
    for p in shipped:
        by_base.setdefault(p.rsplit("/", 1)[-1], []).append(p)
    refs: dict[str, list[tuple[Reach, object]]] = {}
    for ev in ca.of("import"):
        target = ev.data.module
        if target and target not in counted:
            refs.setdefault(target, []).append((ca.reach(ev), ev))
    for name, ev in ca.file_refs:
        for p in by_base.get(name, []):
            if p not in counted and p != ev.path:
                refs.setdefault(p, []).append((ca.reach(ev), ev))
    return refs


def artifact_size_findings(ctx) -> list[Finding]:
    ca = get_analysis(ctx)
    if not ca.python_files:
        return []
    out: list[Finding] = []
    refs = _helper_refs(ca)
    live_total = 0
    for path in sorted(refs):
        cf = ca.code(path)
        size = cf.shipped_bytes if cf is not None else 0
        items = sorted(refs[path], key=lambda r: (r[0].state != "live", r[1].line))
        reach, ev = items[0]
        how = "imported" if ev.kind == "import" else "named (compiled, loaded or executed)"
        if reach.state == "live":
            live_total += size
        out.append(graded(ARTIFACT_SIZE, ca, reach, "warn", "medium",
                          f"helper {path} ({size:,} bytes shipped) is {how} at run time from {ev.path}:{ev.line} but "
                          f"lives outside the counted {ca.entry or 'train_gpt.py'}; the README says counted code "
                          f"should live in train_gpt.py (the #1514 precedent left such helpers uncounted; an open "
                          f"question). Count its bytes or inline it",
                          [ca.ev_evidence(ev)], pattern="uncounted_helper", helper=path, helper_bytes=size))
    if live_total and out:
        out[0].data["helper_bytes_live_total"] = live_total
    return out
