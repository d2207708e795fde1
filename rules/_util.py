"""Small helpers shared by the evidence rules."""

from __future__ import annotations

from auditor.model import EvalPhase, RunEvidence, Submission


def is_non_record(sub: Submission) -> bool:
    """Non-record / unlimited-compute submissions are held to the size cap but not to the record bar."""
    track = " ".join(filter(None, [sub.track, sub.meta.track, sub.meta.name])).lower().replace("-", "_")
    return "non_record" in track or "unlimited" in track or (sub.meta.name or "").lower().startswith("non-record")


def run_label(run: RunEvidence) -> str:
    seed = f"seed {run.seed.value}" if run.seed is not None else "seed ?"
    return f"{run.path}" + (f" (run {run.index + 1})" if run.index else "") + f", {seed}"


def scored_runs(sub: Submission) -> list[RunEvidence]:
    """Runs that produced a final score line."""
    return [r for r in sub.runs if r.score_phase is not None]


def distinct_runs(sub: Submission) -> list[RunEvidence]:
    """Runs with duplicates removed: a `train.log` that repeats a seed log (same seed, same score) counts once."""
    seen: dict[tuple, RunEvidence] = {}
    out = []
    for r in sub.runs:
        score = r.score_phase
        key = (r.seed.value if r.seed else ("?", r.path, r.index),
               None if score is None else (score.label, score.val_bpb))
        if key in seen:
            continue
        seen[key] = r
        out.append(r)
    return out


def eval_phases_once(run: RunEvidence) -> list[EvalPhase]:
    """Final phases with eval times, each evaluation counted once (the 4-decimal line and its `_exact`
    twin, or an alias repeating an earlier line, are one evaluation)."""
    out: list[EvalPhase] = []
    seen: set[tuple] = set()
    for p in run.phases:
        if not p.is_final or p.eval_time_ms is None:
            continue
        stem = p.label.replace("_exact", "")
        same_numbers = ("numbers", round(p.val_loss, 4), round(p.val_bpb, 4))
        if (stem, p.eval_time_ms) in seen or same_numbers in seen:
            continue  # the same evaluation printed twice (exact twin, alias, or a `...:done` summary)
        seen.add((stem, p.eval_time_ms))
        seen.add(same_numbers)
        out.append(p)
    return out


def claim_tolerance(value: float) -> float:
    """How far a claimed figure may sit from a recomputed one: one unit in its last printed decimal
    (submitters round or truncate), plus float noise."""
    s = repr(value)
    decimals = len(s.split(".")[1]) if "." in s and "e" not in s else 8
    return 10.0 ** -min(max(decimals, 4), 8) + 2e-8


def claimed_label(ctx) -> str | None:
    """The final-line label whose per-run mean is the claimed val_bpb, if the parser's choice is not.

    Logs often print several final evaluations (roundtrip, sliding, TTT); the claim tells which one
    the submitter reports. Only final lines qualify: a claim equal to a diagnostic or periodic line is
    reported by CLAIM_CONSISTENCY, never adopted as the score.
    """
    def compute() -> str | None:
        claim = ctx.submission.meta.val_bpb
        runs = [r for r in distinct_runs(ctx.submission) if r.score_phase is not None]
        if claim is None or not runs:
            return None
        tol = claim_tolerance(claim)
        default = sum(r.score_phase.val_bpb for r in runs) / len(runs)
        if abs(default - claim) <= tol:
            return None
        labels: dict[str, list[float]] = {}
        for r in runs:
            last = {p.label: p.val_bpb for p in r.phases if p.is_final}
            for k, v in last.items():
                labels.setdefault(k, []).append(v)
        for k, vs in sorted(labels.items()):
            if len(vs) == len(runs) and abs(sum(vs) / len(vs) - claim) <= tol:
                return k
        return None

    return ctx.memo("claimed_label", compute)


def score_phase(run: RunEvidence, ctx) -> EvalPhase | None:
    """The line this run is scored by: the claimed label's line when the claim names one, else the last final line."""
    label = claimed_label(ctx)
    if label is not None:
        for p in reversed(run.phases):
            if p.is_final and p.label == label:
                return p
    return run.score_phase


def run_eval_time(run: RunEvidence, ctx) -> tuple[float, str, list[EvalPhase], list[EvalPhase]] | None:
    """(seconds, basis, phases counted, later phases not part of the claim) for one run, or None.

    The script's own `total_eval_time` when it prints one; else the final evaluations up to and including
    the line the run is scored by, each evaluation once. Shared by EVAL_TIME and the review's run table so
    both show the same figure.
    """
    all_phases = eval_phases_once(run)
    scored = score_phase(run, ctx)
    phases = all_phases if scored is None else [p for p in all_phases if p.line <= scored.line]
    kept = {id(p) for p in phases}  # identity, not ==: a flood of phases must stay linear
    later = [p for p in all_phases if id(p) not in kept]
    if run.total_eval_time_s is not None:
        return float(run.total_eval_time_s.value), "total_eval_time", phases, later
    if phases:
        return sum(p.eval_time_ms for p in phases) / 1000, "sum of " + ", ".join(p.label for p in phases), phases, later
    return None
