"""CLAIM_CONSISTENCY: the numbers in submission.json are the numbers in the logs and files."""

from __future__ import annotations

import re
from statistics import fmean

from auditor.core.model import Evidence, Finding, RunEvidence
from auditor.facts import claim_tolerance
from rules._rulings import grade
from rules._util import run_label
from rules.artifact_size import counted_code
from auditor.core.contract import Rule, RuleContext
from rules._cite import README_RULES, pr

MAX_README_SCAN = 200_000

EXPLANATION = """
A submission's val_bpb must be the arithmetic mean of the per-seed final score lines of its logs.
The auditor recomputes that mean and compares it with the claim at the claim's own precision. When
they differ it looks for the label whose mean the claim does match (a pre-quantisation line, a
non-sliding roundtrip, a single seed) so the maintainer sees what was reported. It also checks
per-seed values in submission.json against each seed's log, whether the README states the claimed
val_bpb (a README whose headline says another number is a warning), whether `val_loss` holds a BPB value,
whether bytes_total agrees with the logged totals, whether the logged code size equals the shipped
script, and whether source embedded in a log equals the shipped (or decoded) script — a mismatch
means the shipped file is not the one that produced the logs.
"""


def _label_means(runs: list[RunEvidence]) -> dict[str, float]:
    """Mean val_bpb per final label present in every run (last occurrence per run)."""
    per: dict[str, list[float]] = {}
    for r in runs:
        last: dict[str, float] = {}
        for p in r.phases:
            last[p.label] = p.val_bpb
        for k, v in last.items():
            per.setdefault(k, []).append(v)
    return {k: fmean(v) for k, v in per.items() if len(v) == len(runs)}


_SEED_IN_NAME = re.compile(r"[_-]?(?:s|seed)[_-]?\d+(?=\.|$)", re.I)


def _log_set(path: str) -> str:
    """Logs that differ only by a seed suffix form one set (`run_seq32k.txt`, `run_seq32k_s42.txt`)."""
    stem, _, ext = path.rpartition(".")
    return _SEED_IN_NAME.sub("", stem or path)


def _printed_tol(runs) -> float:
    """Half a unit of the coarsest val_bpb the score lines print (a mean of rounded lines carries it)."""
    decimals = [len(m.group(1)) for r in runs for m in [_BPB_DECIMALS.search(r.score_phase.text or "")] if m]
    return 0.5 * 10.0 ** -min(decimals) if decimals else 0.0


_BPB_DECIMALS = re.compile(r"val_bpb[:=]\s*-?\d+\.(\d+)")


def _unmatched_claim(ctx, claim: float, runs, mean: float, ev, data) -> Finding:
    """A claim that is not the mean of the chosen runs: matched against each log set, then graded by
    direction. Only a claim better than every log-backed final figure by more than rounding fails."""
    tol = claim_tolerance(claim) + _printed_tol(runs)
    sets: dict[str, list] = {}
    for r in ctx.facts.distinct_runs:
        if r.score_phase is not None:
            sets.setdefault(_log_set(r.path), []).append(r)
    for name, members in sorted(sets.items()):
        set_mean = fmean(ctx.facts.score(r).val_bpb for r in members)
        if abs(set_mean - claim) <= claim_tolerance(claim) + _printed_tol(members):
            return RULE.finding("info", f"claimed val_bpb {claim} is the mean of the log set {name} "
                                        f"({len(members)} run(s), {set_mean:.8f}), not of all runs the json lists",
                                ev, log_set=name, **data)
    if abs(mean - claim) <= tol:
        return RULE.finding("info", f"claimed val_bpb {claim} equals the logs' mean {mean:.8f} at the precision "
                                    "the score lines print", ev, **data)
    if claim > mean:
        return RULE.finding("info", f"claimed val_bpb {claim} is worse than the logs' mean {mean:.8f}; a "
                                    "conservative claim is not a violation", ev, **data)
    finals = [p.val_bpb for r in ctx.facts.distinct_runs for p in r.phases if p.is_final]
    if finals and claim >= min(finals) - tol:
        return RULE.finding("warn", f"claimed val_bpb {claim} is not the mean {mean:.8f} of the final score "
                                    f"lines, though some logged final figure is as good", ev, **data)
    sev = "warn" if ctx.facts.non_record else "fail"
    return RULE.finding(sev, f"claimed val_bpb {claim} is not backed by the logs: the {len(runs)} final score "
                             f"line(s) average {mean:.8f} and no logged final figure is as good", ev, **data)


def check(ctx: RuleContext) -> list[Finding]:
    meta = ctx.submission.meta
    runs = [r for r in ctx.facts.distinct_runs if r.score_phase is not None]
    if meta.seeds:
        chosen = [r for r in runs if r.seed is not None and r.seed.value in meta.seeds]
        runs = chosen or runs
    out = (_bpb_claim(ctx, runs) + _loss_claim(ctx, runs) + _seed_claims(ctx, runs) + _bytes_claim(ctx)
           + _readme_checks(ctx) + _code_checks(ctx))
    if not [f for f in out if f.severity in ("fail", "warn")]:
        if meta.val_bpb is not None and runs:
            out.append(RULE.finding("pass", f"claimed val_bpb {meta.val_bpb} equals the mean of {len(runs)} final "
                                            "score line(s); sizes and code agree"))
        elif not runs:
            out.append(RULE.finding("info", "no final score line to compare the claims with"))
    return out


def _bpb_claim(ctx: RuleContext, runs: list[RunEvidence]) -> list[Finding]:
    """The claimed val_bpb against the mean of the final score lines (or the line the claim names)."""
    meta = ctx.submission.meta
    out: list[Finding] = []
    json_ev = [Evidence(meta.path, meta.line_of.get(meta.val_bpb_source or "val_bpb"))] if meta.path else []
    if meta.val_bpb is not None and runs:
        mean = fmean(r.score_phase.val_bpb for r in runs)
        ev = json_ev + [r.score_phase.evidence() for r in runs]
        data = {"claimed": meta.val_bpb, "log_mean": round(mean, 8), "runs": len(runs)}
        if abs(mean - meta.val_bpb) > claim_tolerance(meta.val_bpb):
            alt = [k for k, v in _label_means(runs).items() if abs(v - meta.val_bpb) <= claim_tolerance(meta.val_bpb)]
            single = [r for r in runs if abs(r.score_phase.val_bpb - meta.val_bpb) <= claim_tolerance(meta.val_bpb)]
            final_alt = [k for k in alt if k == ctx.facts.claimed_label]
            last_labels = ", ".join(sorted({r.score_phase.label for r in runs}))
            if final_alt:
                out.append(RULE.finding("info", f"claimed val_bpb {meta.val_bpb} is the mean of the `{final_alt[0]}` "
                                                f"lines; some logs continue with later evaluations ({last_labels}) "
                                                "that are not part of the claim", ev, **data))
            elif alt:
                out.append(RULE.finding("warn", f"claimed val_bpb {meta.val_bpb} is the mean of the `{alt[0]}` lines, "
                                                f"not of the final score lines ({last_labels}, mean {mean:.8f})",
                                        ev, **data))
            elif single and len(runs) > 1:
                out.append(grade(ctx, RULE.finding(
                    "info" if ctx.facts.non_record else "warn",
                    f"claimed val_bpb {meta.val_bpb} is one run's value ({run_label(single[0])}), not the mean "
                    f"{mean:.8f} of {len(runs)} runs", ev, **data), "THREE_SEEDS"))
            else:
                out.append(_unmatched_claim(ctx, meta.val_bpb, runs, mean, ev, data))
    return out


def _loss_claim(ctx: RuleContext, runs: list[RunEvidence]) -> list[Finding]:
    meta = ctx.submission.meta
    out: list[Finding] = []
    raw = meta.raw or {}
    if runs:
        mean = fmean(r.score_phase.val_bpb for r in runs)
        if "val_loss" in raw and "val_bpb" not in raw and isinstance(raw["val_loss"], (int, float)) \
                and not isinstance(raw["val_loss"], bool) and abs(raw["val_loss"] - mean) <= claim_tolerance(float(raw["val_loss"])):
            out.append(RULE.finding("info", f"`val_loss` ({raw['val_loss']}) holds a BPB value: it equals the "
                                            f"mean log val_bpb {mean:.8f}; there is no `val_bpb` key",
                                    [Evidence(meta.path, meta.line_of.get("val_loss"))]))
        elif meta.val_loss is not None:
            lmean = fmean(r.score_phase.val_loss for r in runs)
            if abs(lmean - meta.val_loss) > claim_tolerance(meta.val_loss):
                # val_bpb is the score; a val_loss claim is a companion figure. It is worth a maintainer's look
                # only when it is better than every logged final val_loss (a claim no log backs).
                finals = [p.val_loss for r in runs for p in r.phases if p.is_final]
                unbacked = finals and meta.val_loss < min(finals) - claim_tolerance(meta.val_loss) - 0.5e-4
                out.append(RULE.finding("warn" if unbacked else "info",
                                        f"claimed val_loss {meta.val_loss} differs from the logs' mean {lmean:.8f}"
                                        + ("" if unbacked else " (a logged final line carries it, or it is no better "
                                           "than the logs; val_bpb is the score)"),
                                        [Evidence(meta.path, meta.line_of.get("val_loss"))]))
    return out


def _seed_claims(ctx: RuleContext, runs: list[RunEvidence]) -> list[Finding]:
    """Per-seed figures in submission.json against each seed's own log."""
    meta = ctx.submission.meta
    out: list[Finding] = []
    by_seed = {r.seed.value: r for r in runs if r.seed is not None}
    for seed, res in sorted(meta.seed_results.items()):
        r = by_seed.get(seed)
        v = res.get("val_bpb")
        if r is None or not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        phase = ctx.facts.score(r)
        elsewhere = [p for x in ctx.facts.distinct_runs for p in x.phases
                     if p.is_final and abs(p.val_bpb - v) <= claim_tolerance(float(v))]
        if abs(phase.val_bpb - v) > claim_tolerance(float(v)) and elsewhere:
            out.append(RULE.finding("info", f"seed {seed}: submission.json says val_bpb {v}; its log says "
                                            f"{phase.val_bpb:.8f}, but {v} is the final line "
                                            f"{elsewhere[0].path}:{elsewhere[0].line} (a seed mislabelled in the json)",
                                    [Evidence(meta.path, meta.line_of.get(str(seed))), elsewhere[0].evidence()]))
        elif abs(phase.val_bpb - v) > claim_tolerance(float(v)):
            out.append(RULE.finding("warn", f"seed {seed}: submission.json says val_bpb {v}, its log says "
                                            f"{phase.val_bpb:.8f} ({phase.label})",
                                    [Evidence(meta.path, meta.line_of.get(str(seed))), phase.evidence()]))
    return out


def _bytes_claim(ctx: RuleContext) -> list[Finding]:
    meta = ctx.submission.meta
    out: list[Finding] = []
    totals = [r.total_bytes.value for r in ctx.facts.distinct_runs if r.total_bytes is not None]
    if meta.bytes_total is not None and totals:
        if meta.bytes_total < max(totals) and meta.bytes_total != round(fmean(totals)):
            # the cap itself is ARTIFACT_SIZE's: here only whether the json figure is one a log shows
            models = {int(r.model_bytes.value) for r in ctx.facts.distinct_runs if r.model_bytes is not None}
            logged = meta.bytes_total in {int(t) for t in totals} | models
            out.append(RULE.finding("info",  # whether the artifact fits is ARTIFACT_SIZE's question
                                    f"submission.json bytes_total {meta.bytes_total:,} is below the largest "
                                    f"logged total {max(totals):,}"
                                    + (" (it is one run's logged total or model size)" if logged else ""),
                                    [Evidence(meta.path, meta.line_of.get("bytes_total"))]))
    return out


_README_CLAIM = re.compile(r"val[_ ]?bpb\W{0,6}(?:=|:|is)?\W{0,6}([0-9]\.[0-9]{3,8})\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\d.])([0-9]\.[0-9]{3,8})(?![\d])")
_NOT_HEADLINE = re.compile(r"pre|baseline|naive|previous|prior|sota|record|base\b|before", re.IGNORECASE)


def _agrees(text: str, value: float) -> bool:
    """A number printed with d decimals agrees with value if it is its rounding or truncation."""
    return abs(float(text) - value) <= 10.0 ** -len(text.split(".")[1]) + 2e-8


def _readme_checks(ctx: RuleContext) -> list[Finding]:
    """Does the README state the claimed val_bpb? If not, what does its headline statement say?"""
    sub = ctx.submission
    claim = sub.meta.val_bpb
    if claim is None or not sub.readme:
        return []
    text = sub.readme[:MAX_README_SCAN]
    if any(_agrees(m.group(1), claim) for m in _NUMBER.finditer(text)):
        return []
    for no, line in enumerate(text.splitlines(), 1):
        m = _README_CLAIM.search(line[:2000])
        if m is None or _NOT_HEADLINE.search(line[: m.start()]):
            continue
        return [RULE.finding("warn", f"README.md states val_bpb {m.group(1)}; submission.json claims {claim}, "
                                     "which the README never states",
                             [Evidence(sub.readme_path, no, line.strip()[:200]),
                              Evidence(sub.meta.path, sub.meta.line_of.get(sub.meta.val_bpb_source or "val_bpb"))],
                             readme_bpb=float(m.group(1)), claimed=claim)]
    return [RULE.finding("info", f"README.md does not state the claimed val_bpb {claim}",
                         [Evidence(sub.readme_path)])]


def _code_checks(ctx: RuleContext) -> list[Finding]:
    sub = ctx.submission
    entry = sub.entry_point
    if entry is None:
        return []
    shipped, parts = counted_code(sub)
    out = []
    logged = {}
    for r in ctx.facts.distinct_runs:
        fig = r.code_bytes_raw or r.code_bytes
        if fig is not None:
            logged.setdefault(int(fig.value), fig)
    readable = entry.shipped_bytes if entry.stub is None else None
    for value, fig in sorted(logged.items()):
        candidates = {shipped}
        if readable is not None:
            candidates.add(readable)
        if entry.stub == "exec-file" and entry.stub_target and sub.code_file(entry.stub_target):
            candidates.add(sub.code_file(entry.stub_target).shipped_bytes)
        if value not in candidates:
            # an edited script matters when the edit changes what the rules find (below) or the cap
            # (ARTIFACT_SIZE recomputes the artifact with the shipped bytes); the size alone is a note
            out.append(RULE.finding("info", f"logged code size {value:,} B differs from the shipped "
                                            f"{' + '.join(parts)} ({shipped:,} B): the shipped script is not "
                                            "byte-identical to the one that ran", [fig.evidence(), Evidence(entry.path)],
                                    logged=value, shipped=shipped))
    code_text = entry.text if entry.stub != "exec-file" else (sub.code_file(entry.stub_target).text
                                                              if sub.code_file(entry.stub_target or "") else entry.text)
    seen = set()
    for r in sub.runs:
        if not r.embedded_source or code_text is None or r.path in seen:
            continue
        seen.add(r.path)
        a, b = r.embedded_source.rstrip("\n"), code_text.rstrip("\n")
        if a != b:
            al, bl = a.splitlines(), b.splitlines()
            first = next((i for i, (x, y) in enumerate(zip(al, bl)) if x != y), min(len(al), len(bl)))
            line = (r.embedded_source_line or 1) + first
            extra = ctx.memo(f"logged_source:{hash(a)}", lambda: code_rules_disagree(ctx, a))
            out.append(RULE.finding("warn" if extra else "info",
                                    f"{r.path}: the source embedded in the log differs from the shipped "
                                    f"{entry.path} (first difference at line {first + 1} of the script); "
                                    + (f"on the logged source the code rules also find: {extra}" if extra else
                                       "the code rules find the same on the logged source as on the shipped one"),
                                    [Evidence(r.path, line), Evidence(entry.path, first + 1)]))
    return out


CODE_RULES = ("c1_causal", "c2_normalized", "c3_score_first", "c4_single_pass", "no_train_data_at_eval",
              "no_network")


def code_rules_disagree(ctx: RuleContext, logged_source: str) -> str:
    """What the code rules find (fail or warn) on the source a log embeds that they do not find on the
    shipped script: evidence over patterns, the script that produced the score is the one that counts."""
    import dataclasses
    import importlib

    from auditor.core.contract import RuleContext as Ctx

    entry = ctx.submission.entry_point
    code = [dataclasses.replace(c, text=logged_source, stub=None, stub_target=None, decode_error=None)
            if c.path == entry.path else c for c in ctx.submission.code]
    other = Ctx(dataclasses.replace(ctx.submission, code=code), ctx.options, ctx.facts)

    def blocking(c) -> set[tuple[str, str]]:
        found = set()
        for name in CODE_RULES:
            module = importlib.import_module(f"rules.{name}")
            check = getattr(module, "static_findings", module.check)
            found |= {(f.rule, str(f.data.get("pattern"))) for f in check(c) if f.severity in ("fail", "warn")}
        return found
    new = blocking(other) - blocking(ctx)
    return ", ".join(f"{rule} ({pattern})" for rule, pattern in sorted(new))


RULE = Rule(
    id="CLAIM_CONSISTENCY",
    title="Claims match the logs and files",
    summary="submission.json's val_bpb is the mean of the per-seed final score lines; sizes and code agree with "
            "what was shipped.",
    explanation=EXPLANATION,
    citations=(README_RULES + "#submission-process", pr(1902)),
    check=check,
)
