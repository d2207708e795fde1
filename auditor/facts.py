"""Figures derived once from a Submission and shared by rules and reports.

Several rules and the review's run table need the same derived figures: which runs are distinct,
which final line a run is scored by (the claim names it when the log prints several), how long each
run's evaluation took, the submission's date and track. Computing them in one place is what keeps the
review's table and the rules' messages from disagreeing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditor.core.contract import Reference
from auditor.core.model import EvalPhase, RunEvidence, Submission

_DATE_PREFIX = re.compile(r"^(20\d\d)-(\d\d)-(\d\d)(?:[_-]|$)")
_ISO_DATE = re.compile(r"(20\d\d)-(\d\d)-(\d\d)")


@dataclass(frozen=True)
class RunTiming:
    """A run's evaluation time: the script's own total, else the final evaluations up to the score line."""

    seconds: float
    basis: str  # "total_eval_time" | "sum of <labels>"
    counted: list[EvalPhase]
    later: list[EvalPhase]  # evaluations printed after the scored one (not part of the claim)


@dataclass
class Facts:
    distinct_runs: list[RunEvidence]
    claimed_label: str | None  # the final-line label the claim is the mean of, when not the parser's default
    date: str | None  # YYYY-MM-DD, the submission's own date
    date_source: str | None  # "folder name" | "submission.json date"
    non_record: bool
    track: str | None = None
    track_source: str | None = None  # "folder path" | "submission.json track" | "submission.json name"
    judged_on: str | None = None  # the date whose rulings apply: --as-of / the PR's open date / the submission date
    judged_on_source: str | None = None
    _score: dict[int, EvalPhase | None] = field(default_factory=dict, repr=False)
    _timing: dict[int, RunTiming | None] = field(default_factory=dict, repr=False)

    def score(self, run: RunEvidence) -> EvalPhase | None:
        """The line this run is scored by."""
        return self._score.get(id(run), run.score_phase)

    def eval_time(self, run: RunEvidence) -> RunTiming | None:
        return self._timing.get(id(run))

    def scored_runs(self) -> list[RunEvidence]:
        return [r for r in self.distinct_runs if self.score(r) is not None]


def derive(sub: Submission, as_of: str | None = None, as_of_source: str | None = None) -> Facts:
    runs = distinct_runs(sub)
    label = claimed_label(sub, runs)
    date, source = submission_date(sub)
    track, track_source = submission_track(sub)
    facts = Facts(runs, label, date, source, "non_record" in (track or "") or "unlimited" in (track or ""),
                  track, track_source, as_of or date, (as_of_source or "--as-of") if as_of else source)
    for run in sub.runs:
        facts._score[id(run)] = _score_phase(run, label)
        facts._timing[id(run)] = _run_eval_time(run, facts._score[id(run)])
    return facts


def submission_track(sub: Submission) -> tuple[str | None, str | None]:
    """The track a folder is judged on: its path (records/<track>/<folder>) first, then submission.json's
    `track`, then a `Non-record:` name. Non-record / unlimited-compute submissions are held to the size
    cap but not to the record bar (seeds, significance, the 10-minute limits)."""
    def norm(text: str) -> str:
        return text.lower().replace("-", "_").replace(" ", "_")
    if sub.track:
        return norm(sub.track), "folder path"
    if sub.meta.track:
        return norm(sub.meta.track), "submission.json track"
    if (sub.meta.name or "").lower().startswith("non-record"):
        return "non_record", "submission.json name"
    return None, None


def submission_date(sub: Submission) -> tuple[str | None, str | None]:
    """The date a folder was submitted: its `YYYY-MM-DD_` name prefix (the repository's convention),
    else the date in submission.json."""
    m = _DATE_PREFIX.match(sub.name)
    if m:
        return "-".join(m.groups()), "folder name"
    m = _ISO_DATE.search(sub.meta.date or "")
    if m:
        return "-".join(m.groups()), "submission.json date"
    return None, None


def distinct_runs(sub: Submission) -> list[RunEvidence]:
    """Runs with duplicates removed: a `train.log` that repeats a seed log (same seed, same score) counts once."""
    seen: set[tuple] = set()
    out = []
    for r in sub.runs:
        score = r.score_phase
        key = (r.seed.value if r.seed else ("?", r.path, r.index),
               None if score is None else (score.label, score.val_bpb))
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


def claim_tolerance(value: float) -> float:
    """How far a claimed figure may sit from a recomputed one: one unit in its last printed decimal
    (submitters round or truncate), plus float noise."""
    s = repr(value)
    decimals = len(s.split(".")[1]) if "." in s and "e" not in s else 8
    return 10.0 ** -min(max(decimals, 4), 8) + 2e-8


def claimed_label(sub: Submission, runs: list[RunEvidence]) -> str | None:
    """The final-line label whose per-run mean is the claimed val_bpb, if the parser's choice is not.

    Logs often print several final evaluations (roundtrip, sliding, TTT); the claim tells which one
    the submitter reports. Only final lines qualify: a claim equal to a diagnostic or periodic line is
    reported by CLAIM_CONSISTENCY, never adopted as the score.
    """
    claim = sub.meta.val_bpb
    scored = [r for r in runs if r.score_phase is not None]
    if claim is None or not scored:
        return None
    tol = claim_tolerance(claim)
    default = sum(r.score_phase.val_bpb for r in scored) / len(scored)
    if abs(default - claim) <= tol:
        return None
    labels: dict[str, list[float]] = {}
    for r in scored:
        last = {p.label: p.val_bpb for p in r.phases if p.is_final}
        for k, v in last.items():
            labels.setdefault(k, []).append(v)
    for k, vs in sorted(labels.items()):
        if len(vs) == len(scored) and abs(sum(vs) / len(vs) - claim) <= tol:
            return k
    return None


def _score_phase(run: RunEvidence, label: str | None) -> EvalPhase | None:
    if label is not None:
        for p in reversed(run.phases):
            if p.is_final and p.label == label:
                return p
    return run.score_phase


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


def _run_eval_time(run: RunEvidence, scored: EvalPhase | None) -> RunTiming | None:
    all_phases = eval_phases_once(run)
    phases = all_phases if scored is None else [p for p in all_phases if p.line <= scored.line]
    kept = {id(p) for p in phases}  # identity, not ==: a flood of phases must stay linear
    later = [p for p in all_phases if id(p) not in kept]
    if run.total_eval_time_s is not None:
        return RunTiming(float(run.total_eval_time_s.value), "total_eval_time", phases, later)
    if phases:
        return RunTiming(sum(p.eval_time_ms for p in phases) / 1000, "sum of " + ", ".join(p.label for p in phases),
                         phases, later)
    return None


def reference_of(sub: Submission, label: str) -> Reference | None:
    """A merged record as the frontier to compare with: its claim, and its per-seed scores from the logs
    (the significance tests need them). None when no val_bpb can be read at all."""
    seeds: dict[int | str, tuple[float, float]] = {}
    for run in sub.runs:
        score = run.score_phase
        if score is None:
            continue
        key = run.seed.value if run.seed is not None else f"{run.path}#{run.index}"
        seeds[key] = (score.val_bpb, score.val_loss)
    ordered = [v for _, v in sorted(seeds.items(), key=lambda kv: str(kv[0]))]
    bpbs = [v[0] for v in ordered]
    losses = [v[1] for v in ordered]
    val_bpb = sub.meta.val_bpb if sub.meta.val_bpb is not None else (sum(bpbs) / len(bpbs) if bpbs else None)
    val_loss = sub.meta.val_loss if sub.meta.val_loss is not None else (sum(losses) / len(losses) if losses else None)
    if val_bpb is None:
        return None
    return Reference(label=label, val_bpb=val_bpb, val_loss=val_loss, seed_bpbs=bpbs, seed_losses=losses)
