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
        key = (stem, p.eval_time_ms)
        if key in seen:
            continue
        seen.add(key)
        out.append(p)
    return out
