"""Certification of gold-only scorers: score(tokens) -> log p(tokens[t] | tokens[:t]) for t = 1..len-1.

Why each condition is measured the way it is:
  C1  the gold score at t and sampled candidates' scores are compared across streams whose tokens after t
      differ (same length).
  C2  p_t(v) for every v by substituting v at x_t in the stream truncated after t; with an optional
      `score_batch(streams [B, L]) -> [B, L-1]` the V candidate streams go through in a few calls
      (checked against score() on the gold candidate at every probed position).
  C3  only from a trace (score(tokens, trace=...)): a gold-only scorer that counted x_t before scoring it
      differs from one whose lookup key contains x_t only in the C2 sum, so without a trace C3 is
      "not measured", never a copy of the C2 result.
  C4  repeated calls agree, no state survives between calls, later content (same length) does not move the
      score at t, and a trace scores each position once. A score that moves with the stream's length
      alone (truncation) is information, not a failure.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reference_impl import conditions as cd
from reference_impl.harness_core import (
    HarnessError,
    Prog,
    Target,
    guard,
    perturb,
    random_stream,
)

BATCH_ROWS = 1024  # candidate streams per score_batch call


def call_score(target: Target, tokens: np.ndarray, what: str, trace: cd.Trace | None = None) -> np.ndarray:
    if trace is not None:
        out = guard(lambda: target.score(tokens.copy(), trace=trace), what)
    else:
        out = guard(lambda: target.score(tokens.copy()), what)
    return _check(out, len(tokens), "score()")


def _check(out, n: int, what: str) -> np.ndarray:
    try:
        arr = np.asarray(out, dtype=np.float64).reshape(-1) if np.ndim(out) <= 1 else None
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (n - 1,):
        shape = np.shape(out) if arr is None else arr.shape
        raise HarnessError(f"{what} returned shape {shape} for {n} tokens; expected ({n - 1},)")
    if np.isnan(arr).any():
        raise HarnessError(f"{what} returned NaN")
    return arr


def _last_scores(target: Target, streams: np.ndarray, what: str) -> np.ndarray:
    """Score at the last position of each stream (all the same length), batched when the target can."""
    if target.batch is None:
        return np.array([call_score(target, s, what)[-1] for s in streams])
    out = []
    for i in range(0, len(streams), BATCH_ROWS):
        part = streams[i:i + BATCH_ROWS]
        res = np.asarray(guard(lambda: target.batch(part.copy()), "running score_batch"), dtype=np.float64)
        if res.shape != (len(part), streams.shape[1] - 1):
            raise HarnessError(f"score_batch returned shape {res.shape}; expected {(len(part), streams.shape[1] - 1)}")
        if np.isnan(res).any():
            raise HarnessError("score_batch returned NaN")
        out.append(res[:, -1])
    return np.concatenate(out)


def certify_gold(target: Target, x: np.ndarray, pos: list[int], rng: np.random.Generator, candidates: int,
                 progress: Callable[[str], None] | None, tol: float = 0.0) -> tuple[dict, dict, list[str]]:
    """(conditions, mechanism signals, scale warnings) for a gold-only scorer."""
    V, T = target.vocab, len(x)
    prog = Prog(progress, 2 + len(pos) * 2)
    trace = cd.Trace() if target.traced else None
    s = call_score(target, x, "scoring the reference stream", trace)
    prog.step("reference score")
    c1_fail: list[dict] = []
    c4_fail: list[dict] = []
    c1_checks = c4_checks = 0

    again = call_score(target, x, "re-scoring the reference stream")
    call_score(target, random_stream(V, T, int(rng.integers(1 << 30))), "scoring another stream")
    after = call_score(target, x, "re-scoring after another stream")
    prog.step("repeated calls")
    c4_checks += 2
    for kind, arr in (("repeated_call_differs", again), ("state_carried_across_calls", after)):
        d = cd.max_diff(arr, s)
        if d > tol:
            c4_fail.append({"kind": kind, "max_abs_diff": d})

    sums: list[tuple[int, float]] = []
    gold_p: dict[int, float] = {}
    length_diffs: list[dict] = []
    for t in pos:
        xf = perturb(x, V, t + 1, T, rng)
        sf = call_score(target, xf, f"scoring with tokens after {t} changed")
        c1_checks += 1
        c4_checks += 1
        d = cd.max_diff(sf[:t], s[:t])
        if d > tol:
            c1_fail.append({"position": t, "kind": "future", "max_abs_diff": d})
            c4_fail.append({"position": t, "kind": "later_content_moves_score", "max_abs_diff": d,
                            "logprob": float(s[t - 1]), "other_continuation_logprob": float(sf[t - 1])})
        cand = _candidates(V, int(x[t]), candidates, rng)
        worst = 0.0
        for v in cand:
            a, b = x.copy(), xf.copy()
            a[t] = b[t] = v
            worst = max(worst, cd.max_diff(call_score(target, a, "scoring a candidate")[t - 1:t],
                                           call_score(target, b, "scoring a candidate")[t - 1:t]))
        c1_checks += 1
        if worst > tol:
            c1_fail.append({"position": t, "kind": "future_candidates", "candidates": len(cand),
                            "max_abs_diff": worst})
        st = call_score(target, x[: t + 1], f"scoring the stream truncated after {t}")
        if cd.max_diff(st[t - 1:t], s[t - 1:t]) > tol and d <= tol:
            length_diffs.append({"position": t, "full_stream_logprob": float(s[t - 1]),
                                 "truncated_logprob": float(st[t - 1])})
        prog.step(f"C1/C4 probes at t={t}")
        streams = np.repeat(x[None, : t + 1], V, axis=0)
        streams[:, t] = np.arange(V)
        lp = _last_scores(target, streams, "scoring a substituted candidate")
        if target.batch is not None and cd.max_diff(lp[int(x[t])], st[t - 1]) > max(tol, 1e-9):
            raise HarnessError(f"score_batch disagrees with score() at t={t}: {cd.fmt(lp[int(x[t])])} vs "
                               f"{cd.fmt(st[t - 1])}")
        with np.errstate(over="ignore"):
            sums.append((t, float(np.exp(lp).sum())))
            gold_p[t] = float(np.exp(lp[int(x[t])]))
        prog.step(f"substitution over {V} candidates at t={t}")

    warnings: list[str] = []
    signals = {"future": any(f["kind"] == "future" for f in c1_fail), "gold": True}
    if trace is not None:
        ev = cd.analyse_trace(trace.events, 1, T, pos)
        c3 = cd.score_first_from_trace(ev, T - 1)
        c4_checks += 1
        if ev["rescored"]:
            c4_fail.append({"kind": "rescored_in_trace", "positions": ev["rescored"][:cd.MAX_REPORTED],
                            "count": len(ev["rescored"])})
        if ev["unscored"]:
            c4_fail.append({"kind": "not_scored_in_trace", "positions": ev["unscored"][:cd.MAX_REPORTED],
                            "count": len(ev["unscored"])})
        signals.update(rescored=bool(ev["rescored"]), counted=bool(ev["counted_before"]),
                       lookahead=bool(ev["lookahead"]))
        if ev["consume_events"] and not ev["fired"]:
            warnings.append("the trace reports state updates, but none before any probed position: the "
                            "state-keeping mechanism was not exercised (longer stream, smaller chunks: "
                            "--profile stress)")
    else:
        c3 = cd.not_measured("C3", f"not measurable for a gold-only scorer without a trace: to measure it, "
                             f"{cd.HOW_TO_TRACE}", evidence="none (gold-only, no trace)")
    c4 = cd.single_pass(c4_fail, c4_checks, tol)
    if length_diffs:
        c4["notes"].append(cd.length_note(length_diffs, len(pos)))
    conds = {"C1": cd.causality(c1_fail, c1_checks, tol),
             "C2": cd.normalization(sums, "sampled positions (full-vocabulary substitution)", gold_p),
             "C3": c3, "C4": c4}
    return conds, signals, warnings


def _candidates(V: int, gold: int, cap: int, rng: np.random.Generator) -> list[int]:
    if cap >= V:
        return list(range(V))
    others = rng.choice(np.delete(np.arange(V), gold), size=max(0, cap - 1), replace=False)
    return [gold] + sorted(int(v) for v in others)
