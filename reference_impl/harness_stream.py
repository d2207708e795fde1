"""Certification of full-distribution predictors (streaming `next_logprobs`/`observe`, batch
`stream_logprobs`, or both).

Why this shape is the easy one: every row is a whole distribution, so C2 is a sum per row, C1 compares
rows under perturbations of x_t and later tokens, and the streaming protocol is itself a score/observe trace
for C3. A batch-only predictor has no trace: a row that moves with x_t is a C1 failure and C3 is not
measured (reading x_t and counting x_t before scoring it look the same from outside).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from reference_impl import conditions as cd
from reference_impl.harness_core import (
    HarnessError,
    Prog,
    Target,
    guard,
    perturb,
    validate_rows,
)


def _emit(pred: Any, vocab: int, t: int) -> np.ndarray:
    row = guard(pred.next_logprobs, f"emitting position {t}")
    try:
        arr = np.asarray(row, dtype=np.float64).reshape(1, -1)
    except (TypeError, ValueError):
        raise HarnessError(f"next_logprobs() at position {t} did not return numbers") from None
    return validate_rows(arr, 1, vocab, f"next_logprobs() at position {t}")


def run_stream(target: Target, tokens: np.ndarray, upto: int | None = None,
               repeat_at: frozenset[int] = frozenset(), trace: list | None = None) -> tuple[np.ndarray, list[int]]:
    """Drive the streaming protocol; rows 0..upto. Returns rows and positions where a second
    next_logprobs() call disagreed with the first (only probed at `repeat_at`)."""
    pred = target.make()
    n = len(tokens) if upto is None else upto + 1
    rows = np.empty((n, target.vocab), dtype=np.float64)
    unstable: list[int] = []
    for t in range(n):
        rows[t] = _emit(pred, target.vocab, t)[0]
        if trace is not None:
            trace.append(("emit", t))
        if t in repeat_at and cd.max_diff(_emit(pred, target.vocab, t)[0], rows[t]) != 0.0:
            unstable.append(t)
        if t < len(tokens):
            guard(lambda: pred.observe(int(tokens[t])), f"observing position {t}")
            if trace is not None:
                trace.append(("observe", t))
    return rows, unstable


def _run_batch(target: Target, tokens: np.ndarray) -> np.ndarray:
    pred = target.make()
    rows = guard(lambda: pred.stream_logprobs(tokens.copy()), "running stream_logprobs")
    return validate_rows(rows, len(tokens), target.vocab, "stream_logprobs()")


def certify_predictor(target: Target, x: np.ndarray, pos: list[int], rng: np.random.Generator,
                      progress: Callable[[str], None] | None, tol: float = 0.0,
                      trace_tol: float = 1e-9) -> tuple[dict, dict, list[str]]:
    """(conditions, mechanism signals, scale warnings) for a predictor target."""
    V, T = target.vocab, len(x)
    futures = {t: perturb(x, V, t + 1, T, rng) for t in pos}
    scored = {t: perturb(x, V, t, t + 1, rng) for t in pos}
    prog = Prog(progress, (3 + 2 * len(pos) if target.has_stream else 0)
                + (2 + 3 * len(pos) if target.has_batch else 0))
    c1_fail: list[dict] = []
    c4_fail: list[dict] = []
    c1_checks = c4_checks = 0
    sums: list[tuple[int, float]] = []
    length_diffs: list[dict] = []
    R = B = None
    trace_ok, trace_events = True, 0

    if target.has_stream:
        trace: list = []
        R, _ = run_stream(target, x, trace=trace)
        trace_ok = trace == [ev for t in range(T) for ev in (("emit", t), ("observe", t))]
        trace_events = len(trace)
        prog.step("streaming reference run")
        R_rep, unstable = run_stream(target, x, repeat_at=frozenset(pos))
        prog.step("streaming run with repeated emissions")
        R_fresh, _ = run_stream(target, x)
        prog.step("fresh-instance rerun")
        c4_checks += 3 + len(pos)
        if not trace_ok:
            c4_fail.append({"kind": "trace_not_one_emission_per_position"})
        c4_fail += [{"position": t, "kind": "repeated_emission_differs"} for t in unstable]
        d = cd.max_diff(R_rep, R)
        if d > tol:
            c4_fail.append({"kind": "emission_changes_state", "max_abs_diff": d})
        d = cd.max_diff(R_fresh, R)
        c1_checks += 1
        if d > tol:
            c1_fail.append({"kind": "instance_leak", "max_abs_diff": d,
                            "detail": "a fresh instance gives different rows on the identical stream"})
        for t in pos:
            for kind, stream in (("future", futures[t]), ("scored_token", scored[t])):
                rows, _ = run_stream(target, stream, upto=t)
                prog.step(f"streaming perturbation ({kind}) at t={t}")
                c1_checks += 1
                d = cd.max_diff(rows, R[: t + 1])
                if d > tol:
                    c1_fail.append({"position": t, "kind": kind, "path": "stream", "max_abs_diff": d})
        sums += [(t, float(s)) for t, s in enumerate(cd.row_sums(R))]

    scored_dep_batch: list[int] = []
    if target.has_batch:
        B = _run_batch(target, x)
        prog.step("batch reference run")
        B2 = _run_batch(target, x)
        prog.step("batch repeated run")
        c4_checks += 1
        d = cd.max_diff(B2, B)
        if d > tol:
            c4_fail.append({"kind": "repeated_call_differs", "path": "batch", "max_abs_diff": d})
        for t in pos:
            Bf = _run_batch(target, futures[t])
            prog.step(f"batch perturbation (future) at t={t}")
            c1_checks += 1
            c4_checks += 1
            d = cd.max_diff(Bf[: t + 1], B[: t + 1])
            if d > tol:
                c1_fail.append({"position": t, "kind": "future", "path": "batch", "max_abs_diff": d})
                c4_fail.append({"position": t, "kind": "later_content_moves_score", "path": "batch",
                                "max_abs_diff": d})
            Bs = _run_batch(target, scored[t])
            prog.step(f"batch perturbation (scored token) at t={t}")
            c1_checks += 1
            d_prev = cd.max_diff(Bs[:t], B[:t])
            if d_prev > tol:
                first = next(r for r in range(t) if cd.max_diff(Bs[r], B[r]) > tol)
                c1_fail.append({"position": first, "kind": "future", "path": "batch", "max_abs_diff": d_prev})
            d = cd.max_diff(Bs[t], B[t])
            if d > tol:
                scored_dep_batch.append(t)
                c1_fail.append({"position": t, "kind": "scored_token", "path": "batch", "max_abs_diff": d})
            pred = target.make()
            Bt = validate_rows(guard(lambda: pred.stream_logprobs(x[: t + 1].copy()),
                                     "running stream_logprobs on a prefix"), t + 1, V, "stream_logprobs()")
            prog.step(f"batch truncated at t={t}")
            d_len = cd.max_diff(Bt[t], B[t])
            if d_len > tol and cd.max_diff(Bf[t], B[t]) <= tol:
                length_diffs.append({"position": t, "full_stream_logprob": float(B[t, x[t]]),
                                     "truncated_logprob": float(Bt[t, x[t]])})
        bsums = cd.row_sums(B)
        sums += [(t, float(s)) for t, s in enumerate(bsums) if R is None or abs(s - 1.0) > cd.SUM_TOL]

    lagged: list[int] = []
    if target.has_stream and target.has_batch:
        diff_rows = [t for t in range(T) if not cd.max_diff(B[t], R[t]) <= trace_tol]
        lagged = [t for t in diff_rows if t + 1 < T and cd.max_diff(B[t], R[t + 1]) <= trace_tol]
        worst = max((cd.max_diff(B[t], R[t]) for t in diff_rows), default=0.0)
        bad = [{"position": t, "kind": "batch_row_equals_trace_after_observe" if t in lagged else "batch_row_differs"}
               for t in diff_rows]
        c3 = cd._base("C3", cd.FAIL if diff_rows else cd.PASS, "", bad, evidence="batch rows vs score-first "
                      "streaming trace", trace_events=trace_events, rows_compared=T, tolerance=trace_tol,
                      mismatched_rows=len(diff_rows), max_abs_diff=worst, lagged_rows=len(lagged))
        if lagged:
            c3["summary"] = (f"batch row t equals the streaming distribution after observing x_t at "
                             f"{len(lagged)}/{T} rows: x_t was counted before p_t was emitted")
        elif diff_rows:
            c3["summary"] = (f"batch path disagrees with the score-first streaming trace at {len(diff_rows)}/{T} "
                             f"rows (max |diff| {cd.fmt(worst)})")
        else:
            c3["summary"] = (f"batch path equals the score-first streaming trace at all {T} rows "
                             f"(tolerance {trace_tol:g})")
    elif target.has_stream:
        c3 = cd._base("C3", cd.PASS if trace_ok else cd.FAIL, f"streaming trace: every p_t emitted before "
                      f"observe(x_t) ({trace_events} events)", evidence="streaming trace", trace_events=trace_events)
    else:
        why = (f"row t moved when only x_t changed at {len(scored_dep_batch)}/{len(pos)} positions (reported "
               "as C1); " if scored_dep_batch else "")
        c3 = cd.not_measured("C3", why + "a batch-only predictor has no trace: reading x_t and counting it "
                             "before scoring look the same; add next_logprobs/observe to measure C3",
                             evidence="none (batch only)")
    c4 = cd.single_pass(c4_fail, c4_checks, tol)
    if length_diffs:
        c4["notes"].append(cd.length_note(length_diffs, len(pos)))
    conds = {"C1": cd.causality(c1_fail, c1_checks, tol),
             "C2": cd.normalization(sums, "positions"), "C3": c3, "C4": c4}
    signals = {"counted": bool(lagged), "future": any(f["kind"] == "future" for f in c1_fail)}
    return conds, signals, []
