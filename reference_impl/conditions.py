"""The four condition tests of issue #1017, each measured alone, and how one mechanism's failures relate.

Why a separate module: the conformance harness (`reference_impl.harness`) and any per-position capture of a
real script (the gauntlet) produce the same raw evidence -- per-position scores under perturbations,
substitution sums, a score/consume trace -- and must judge it the same way. The functions here take that
evidence and return one JSON-ready report per condition; they never run a predictor.

Each report has `status` ("pass", "fail" or "not_measured"), `summary`, `examples`, `notes` (information,
never a failure) and, when it fails, either `primary: true` or `follows_from` + `because`: #1017's
conditions overlap (a state that saw x_t breaks C1 and C3; a best-of-two-passes choice is also
unnormalized), so the certificate names the condition the mechanism breaks first and says why the others
fail with it. `SEES` and `CANNOT_SEE` are the sentences `auditor conform --help`, `--list` and the docs show.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from reference_impl.condition_text import CANNOT_SEE, HOW_TO_TRACE, SEES, TITLES  # noqa: F401 (re-exported)

SUM_TOL = 1e-6
MAX_REPORTED = 10
PASS, FAIL, NOT_MEASURED = "pass", "fail", "not_measured"

C2_MECHANISMS = ("the scored token inside a hashed lookup key (#779 family), counts that already include x_t "
                 "(update before score), a per-byte spread of the token probability (#1872 family), or a "
                 "choice between passes")


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| (NaN == NaN; shape mismatch is infinitely different)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return math.inf
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if same.all():
        return 0.0
    with np.errstate(invalid="ignore"):
        d = np.abs(a - b)
    return float(np.where(same, 0.0, np.where(np.isnan(d), np.inf, d)).max())


def fmt(x: float) -> str:
    return f"{x:.6g}"


def _base(cond: str, status: str, summary: str, examples: list | None = None, **extra) -> dict:
    return {"status": status, "summary": summary, "sees": SEES[cond], "cannot_see": CANNOT_SEE[cond],
            "examples": (examples or [])[:MAX_REPORTED], "notes": [], **extra}


# --------------------------------------------------------------------------------------------------
# C1


def causality(failures: list[dict], checks: int, tol: float = 0.0) -> dict:
    """C1 from perturbation comparisons: `failures` are the checks where p_t moved (kind: future,
    future_candidates, scored_token, instance_leak)."""
    same = "bit-identical" if tol == 0.0 else f"equal within {tol:g}"
    if failures:
        kinds = sorted({f["kind"] for f in failures})
        summary = f"p_t changed at {len(failures)}/{checks} checks ({', '.join(kinds)})"
    else:
        summary = f"p_t {same} under {checks} perturbations of tokens after t"
    return _base("C1", FAIL if failures else PASS, summary, failures, checks=checks, failures=len(failures))


# --------------------------------------------------------------------------------------------------
# C2


def normalization(sums: list[tuple[int, float]], what: str, gold: dict[int, float] | None = None,
                  tol: float = SUM_TOL) -> dict:
    """C2 from observed Σ_v p_t(v) at positions t (gold: p_t(x_t), reported with each failure)."""
    bad = [(t, s) for t, s in sums if not abs(s - 1.0) <= tol]
    values = [s for _, s in sums]
    examples = [{"position": t, "sum": float(s), **({"gold_prob": gold[t]} if gold and t in gold else {})}
                for t, s in bad]
    rep = _base("C2", FAIL if bad else PASS, "", examples, tolerance=tol, checked_positions=len(sums),
                min_sum=float(min(values)) if values else None, max_sum=float(max(values)) if values else None,
                failed_positions=len(bad))
    if bad:
        rep["summary"] = (f"sum over the vocabulary is {fmt(rep['min_sum'])}..{fmt(rep['max_sum'])}, not 1, "
                          f"at {len(bad)}/{len(sums)} {what}")
    else:
        rep["summary"] = f"sum over the vocabulary is 1 within {tol:g} at {len(sums)} {what}"
    return rep


def row_sums(rows: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(rows).sum(axis=1)


# --------------------------------------------------------------------------------------------------
# C3 and C4 from a score/consume trace


class Trace:
    """What a wrapper reports while it scores: `scored(positions)` where the record accumulates the loss of
    those positions, `consumed(positions)` where its state absorbs those tokens. Positions index the token
    array the scorer was given (targets 1..len-1 for a gold scorer)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, np.ndarray]] = []

    @staticmethod
    def _arr(positions) -> np.ndarray:
        if isinstance(positions, (int, np.integer)):
            return np.array([int(positions)], dtype=np.int64)
        return np.asarray(list(positions) if isinstance(positions, range) else positions, dtype=np.int64).ravel()

    def scored(self, positions) -> None:
        self.events.append(("scored", self._arr(positions)))

    def consumed(self, positions) -> None:
        self.events.append(("consumed", self._arr(positions)))


def analyse_trace(events: Iterable[tuple[str, np.ndarray]], first: int, stop: int,
                  probes: Iterable[int] = ()) -> dict:
    """Walk a trace over positions [first, stop). Returns the C3 and C4 evidence:
    `counted_before` (t scored after x_t was consumed), `lookahead` (t scored after a later token was
    consumed), `rescored` (t scored twice), `unscored`, and `fired` (probes scored after some update)."""
    n = stop
    consumed = np.zeros(n + 1, dtype=bool)
    max_consumed = -1
    times = np.zeros(n + 1, dtype=np.int64)
    counted_before: list[int] = []
    lookahead: list[int] = []
    rescored: list[int] = []
    updated_before: dict[int, bool] = {}
    n_consume = n_score = 0
    probe_set = {int(p) for p in probes}
    for kind, pos in events:
        pos = pos[(pos >= 0) & (pos <= n)]
        if kind == "consumed":
            n_consume += 1
            consumed[pos] = True
            if len(pos):
                max_consumed = max(max_consumed, int(pos.max()))
            continue
        n_score += 1
        for t in pos.tolist():
            times[t] += 1
            if times[t] > 1:
                rescored.append(t)
                continue  # C3 judges the first (counted) score; a second one is C4
            if consumed[t]:
                counted_before.append(t)
            elif max_consumed > t:
                lookahead.append(t)
            if t in probe_set:
                updated_before[t] = max_consumed >= 0
    unscored = [t for t in range(first, stop) if times[t] == 0]
    return {"counted_before": counted_before, "lookahead": lookahead, "rescored": sorted(set(rescored)),
            "unscored": unscored, "score_events": n_score, "consume_events": n_consume,
            "fired": any(updated_before.values()), "probes_after_update": sum(updated_before.values())}


def score_first_from_trace(ev: dict, positions: int) -> dict:
    """C3 from `analyse_trace` evidence: the first score of every position precedes any update using x_t."""
    bad = [{"position": t, "kind": "consumed_before_scored"} for t in ev["counted_before"]]
    bad += [{"position": t, "kind": "later_token_consumed_before_scored"} for t in ev["lookahead"]]
    if ev["counted_before"]:
        summary = (f"x_t was consumed before position t was scored at {len(ev['counted_before'])}/{positions} "
                   "positions (update before score)")
    elif ev["lookahead"]:
        summary = (f"state had consumed later tokens when position t was scored at {len(ev['lookahead'])}/"
                   f"{positions} positions (adaptation before scoring)")
    else:
        summary = (f"trace: every position scored before any update that used it ({ev['score_events']} score, "
                   f"{ev['consume_events']} consume events)")
    return _base("C3", FAIL if bad else PASS, summary, bad, evidence="score/consume trace")


def not_measured(cond: str, summary: str, **extra) -> dict:
    return _base(cond, NOT_MEASURED, summary, **extra)


def single_pass(failures: list[dict], checks: int, tol: float = 0.0) -> dict:
    """C4 from repeat, state, same-length-continuation and trace checks (failure kinds say which)."""
    same = "bit-identical" if tol == 0.0 else f"equal within {tol:g}"
    if failures:
        kinds = sorted({f["kind"] for f in failures})
        summary = f"scores not final after one pass at {len(failures)}/{checks} checks ({', '.join(kinds)})"
    else:
        summary = f"each position scored once and final: {checks} repeat/continuation checks {same}"
    return _base("C4", FAIL if failures else PASS, summary, failures, checks=checks, failures=len(failures))


def length_note(diffs: list[dict], probed: int) -> str:
    """Information (never a failure): the score at t moved with the stream's length, not its content."""
    ex = diffs[0]
    return (f"the score at t depends on the stream's length alone at {len(diffs)}/{probed} positions "
            f"(t={ex['position']}: {fmt(ex['full_stream_logprob'])} on the full stream, "
            f"{fmt(ex['truncated_logprob'])} truncated after t; unchanged when later content changes): "
            "consistent with a schedule keyed to the number of chunks or a final partial window, not a "
            "second pass")


# --------------------------------------------------------------------------------------------------
# attribution


def attribute(conds: dict, signals: dict) -> dict:
    """Mark each failed condition primary or `follows_from` another, from the mechanism signals:

    rescored      the trace scored a position twice            -> C4 primary; C1, C2 follow
    counted       x_t consumed before scoring (trace or lag)   -> C3 primary; C1, C2 follow
    lookahead     later tokens consumed before scoring t       -> C3 primary; C1 follows
    future        later content moves p_t (no trace cause)     -> C1 primary; C4 follows
    """
    failed = {k for k, c in conds.items() if c["status"] == FAIL}
    follows: dict[str, tuple[str, str]] = {}
    if signals.get("rescored") and "C4" in failed:
        follows["C1"] = ("C4", "the second pass scores t with a state that saw later tokens")
        follows["C2"] = ("C4", "a choice between passes is not one distribution over the vocabulary")
        follows["C3"] = ("C4", "the re-scoring pass runs after the updates that used x_t")
    elif signals.get("counted") and "C3" in failed:
        follows["C1"] = ("C3", "a state that counted x_t before scoring it makes p_t depend on x_t")
        follows["C2"] = ("C3", ("the substituted candidate is counted before it is scored, so every "
                               "candidate gains mass"))
    elif signals.get("lookahead") and "C3" in failed:
        follows["C1"] = ("C3", "the state used at t was built from later tokens")
    if "C1" in failed and "C4" in failed and "C4" not in follows and "C1" not in follows:
        follows["C4"] = ("C1", ("a score that later content can change is not final when a single pass "
                               "reaches t; a gold-only scorer cannot tell a look-ahead from a second pass "
                               "without a trace"))
    for key in sorted(failed):
        if key in follows and follows[key][0] in failed:
            conds[key]["follows_from"], conds[key]["because"] = follows[key]
        else:
            conds[key]["primary"] = True
    if "C2" in failed and conds["C2"].get("primary") and signals.get("gold"):
        conds["C2"]["notes"].append(f"consistent with {C2_MECHANISMS}")
    return conds


def verdict(conds: dict, scale_warnings: list[str]) -> str:
    """fail: a condition failed; incomplete: nothing failed but a condition was not measured or the stream
    never reached the state-keeping mechanism; pass otherwise."""
    if any(c["status"] == FAIL for c in conds.values()):
        return "fail"
    if scale_warnings or any(c["status"] == NOT_MEASURED for c in conds.values()):
        return "incomplete"
    return "pass"
