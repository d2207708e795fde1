"""Per-position statistics from the losses the script's own evaluation computed (the parent's side of
shims/gauntlet_capture.py): locate each captured target in the synthetic validation stream, split the
captured calls into passes, and compute coverage and the Ville e-value from the captured losses.

Locating: the stream is i.i.d. uniform, so K consecutive target ids (K=4) identify a stream position
with overwhelming probability; a run of targets that continues the stream token by token is one
segment, and a token's offset in its segment is the context it was scored with (sliding windows score
a position at several offsets; a rescan scores it again at the same offset).

Passes: a call whose first located target returns to the start of the current pass, once that pass
covers at least half the stream, starts a new pass (a pre-quantization evaluation followed by the final
one; a full second scan). Within a pass each position keeps one loss by a rule that never looks at
the values (the largest offset — the most context — the later call on a tie), so the e-value of a
pass is a valid Ville test for any causal, normalized predictor; k passes are tested with a union
bound. The parent only measures here; rules/ judge (EVALUE_RANDOM_STREAM, C4_SINGLE_PASS).
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

K = 4
MATCH_ABS_TOL = 5e-4  # |printed - captured mean| beyond the printed rounding still counted as a match


def decode_calls(events: list[dict]) -> list[dict[str, Any]]:
    """Captured calls in order: {"call", "prim", "loss": float32[n], "tgt": int64[n]}."""
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if e.get("event") != "capture":
            continue
        try:
            c = int(e["call"])
            lo = np.frombuffer(base64.b64decode(e["loss"], validate=True), dtype="<f4")
            tg = np.frombuffer(base64.b64decode(e["tgt"], validate=True), dtype="<i4").astype(np.int64)
        except (KeyError, ValueError, TypeError):
            continue
        if lo.size != tg.size or not lo.size:
            continue
        slot = calls.setdefault(c, {"call": c, "prim": str(e.get("prim")), "loss": [], "tgt": []})
        slot["loss"].append(lo)
        slot["tgt"].append(tg)
    out = []
    for c in sorted(calls):
        s = calls[c]
        out.append({"call": c, "prim": s["prim"], "loss": np.concatenate(s["loss"]), "tgt": np.concatenate(s["tgt"])})
    return out


class StreamIndex:
    def __init__(self, stream: np.ndarray):
        self.stream = np.asarray(stream, dtype=np.int64)
        keys = self.stream.astype("<i4")
        self.index: dict[bytes, int] = {}
        raw = keys.tobytes()
        for p in range(self.stream.size - K + 1):
            self.index.setdefault(raw[4 * p:4 * (p + K)], p)

    def locate(self, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(stream position or -1, offset within its segment) for every target."""
        n = tgt.size
        pos = np.full(n, -1, dtype=np.int64)
        off = np.full(n, -1, dtype=np.int64)
        raw = tgt.astype("<i4").tobytes()
        s = self.stream
        i = 0
        while i + K <= n:
            p = self.index.get(raw[4 * i:4 * (i + K)])
            if p is None:
                i += 1
                continue
            m = min(n - i, s.size - p)
            bad = np.nonzero(tgt[i:i + m] != s[p:p + m])[0]
            length = int(bad[0]) if bad.size else m
            if length < K:
                i += 1
                continue
            pos[i:i + length] = p + np.arange(length)
            off[i:i + length] = np.arange(length)
            i += length
        return pos, off


def _pass_stats(loss_sel: np.ndarray, count: np.ndarray, twice: np.ndarray, all_sum: float, all_n: int,
                n_pos: int, bos_every: int, v_prime: int) -> dict[str, Any]:
    scored = np.nonzero(count[1:n_pos + 1] > 0)[0] + 1
    losses = loss_sel[scored].astype(np.float64)
    n_bos = int(np.sum(scored % bos_every == 0)) if bos_every else 0
    n = int(scored.size)
    total = float(losses.sum())
    return {
        "scored": n,
        "never_scored": n_pos - n,
        "fraction_scored": n / n_pos if n_pos else 0.0,
        "computed_more_than_once": int(np.sum(count[1:n_pos + 1] > 1)),
        "scored_twice": int(np.sum(twice[1:n_pos + 1])),  # same position, same context offset, twice
        "mean_loss": total / n if n else None,
        "mean_all_computed": all_sum / all_n if all_n else None,
        "n_bos": n_bos,
        "advantage_nats": (n - n_bos) * math.log(v_prime) - total,
    }


def analyse(events: list[dict], stream: np.ndarray, bos_every: int, v_prime: int, printed: float | None = None,
            printed_decimals: int | None = None, alpha: float = 1e-6,
            arrays: list | None = None) -> dict[str, Any] | None:  # one pass over the captured calls: locate, split into passes, score
    """The capture statistics for one run, or None when the run captured nothing. `arrays`, when given,
    receives each pass's (selected loss per position, count per position) for the flip test."""
    calls = decode_calls(events)
    end = next((e for e in events if e.get("event") == "capture_end"), None)
    if not calls:
        return None
    n_pos = int(stream.size) - 1
    idx = StreamIndex(stream)
    prims: dict[str, int] = {}
    passes: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    captured = located = 0

    def new_pass() -> dict[str, Any]:
        return {"calls": 0, "count": np.zeros(n_pos + 1, np.int32), "twice": np.zeros(n_pos + 1, bool),
                "best_off": np.full(n_pos + 1, -1, np.int64), "best_off_seen": np.full(n_pos + 1, -1, np.int64),
                "loss": np.zeros(n_pos + 1, np.float32), "start": None, "all_sum": 0.0, "all_n": 0}

    for c in calls:
        captured += c["tgt"].size
        prims[c["prim"]] = prims.get(c["prim"], 0) + int(c["tgt"].size)
        pos, off = idx.locate(c["tgt"])
        ok = (pos >= 1) & (pos <= n_pos)
        if not ok.any():
            continue
        p, o, lo = pos[ok], off[ok], c["loss"][ok]
        located += int(p.size)
        first = int(p[0])
        if cur is None or (first <= cur["start"] and np.count_nonzero(cur["count"]) >= n_pos // 2):
            cur = new_pass()
            cur["start"] = first
            passes.append(cur)
        cur["start"] = min(cur["start"], first)
        cur["calls"] += 1
        cur["twice"][p] |= cur["best_off_seen"][p] == o  # seen before at this exact context
        np.maximum.at(cur["best_off_seen"], p, o)
        np.add.at(cur["count"], p, 1)
        better = o >= cur["best_off"][p]
        cur["best_off"][p[better]] = o[better]
        cur["loss"][p[better]] = lo[better]
        cur["all_sum"] += float(lo.astype(np.float64).sum())
        cur["all_n"] += int(lo.size)

    if arrays is not None:
        arrays.extend((ps["loss"], ps["count"]) for ps in passes)
    k = max(1, len(passes))
    bound = math.log(k / alpha)
    out_passes = []
    for i, ps in enumerate(passes):
        st = _pass_stats(ps["loss"], ps["count"], ps["twice"], ps["all_sum"], ps["all_n"], n_pos, bos_every, v_prime)
        st.update(index=i, calls=ps["calls"], bound_nats=bound, passed=st["advantage_nats"] <= bound)
        out_passes.append(st)
    claim = None
    if printed is not None and out_passes:
        tol = (0.5 * 10.0 ** (-printed_decimals) if printed_decimals is not None else 0.0) + MATCH_ABS_TOL
        best = None
        for st in out_passes:
            for key in ("mean_loss", "mean_all_computed"):
                if st[key] is None:
                    continue
                d = abs(st[key] - printed)
                if best is None or d < best[0]:
                    best = (d, st["index"], key)
        claim = {"printed_val_loss": printed, "tolerance": tol, "pass": best[1], "statistic": best[2],
                 "difference": best[0], "matches": best[0] <= tol}
    worst = max(out_passes, key=lambda s: s["advantage_nats"]) if out_passes else None
    target = out_passes[claim["pass"]] if claim and claim["matches"] else (out_passes[-1] if out_passes else None)
    return {
        "captured": captured,
        "located": located,
        "dropped": int(end.get("dropped", 0)) if isinstance(end, dict) else 0,
        "complete": end is not None,
        "calls": len(calls),
        "primitives": prims,
        "n_positions": n_pos,
        "passes": out_passes,
        "claim": claim,
        "coverage": None if target is None else {k2: target[k2] for k2 in (
            "index", "scored", "never_scored", "fraction_scored", "scored_twice", "computed_more_than_once")},
        "evalue": None if worst is None else {"pass": worst["index"], "advantage_nats": worst["advantage_nats"],
                                              "bound_nats": bound, "passes_tested": k, "alpha": alpha,
                                              "passed": worst["passed"],
                                              "log10_p_value": min(0.0, (math.log(k) - worst["advantage_nats"])
                                                                   / math.log(10))},
    }


FLIP_TOL = 1e-3  # nats: per-position losses of two CPU runs of the same script on the same prefix


def flip_compare(a: list, b: list, k: int, tol: float = FLIP_TOL) -> dict[str, Any]:
    """The flip test: passes of run A (stream S) and run B (S up to position k, re-drawn after) compared
    pass by pass on the positions < k that both scored. A causal evaluation gives every such position
    the same loss; the first position that differs, and the first pass (in run order) where it does,
    say where tokens at or after k reached an earlier score."""
    out = []
    for i, ((la, ca), (lb, cb)) in enumerate(zip(a, b)):
        both = np.nonzero((ca[1:k] > 0) & (cb[1:k] > 0))[0] + 1
        diff = np.abs(la[both].astype(np.float64) - lb[both].astype(np.float64))
        bad = both[diff > tol]
        out.append({"index": i, "compared": int(both.size), "differing": int(bad.size),
                    "first_diff": int(bad[0]) if bad.size else None,
                    "max_abs_diff": float(diff.max()) if diff.size else 0.0})
    firsts = [p for p in out if p["first_diff"] is not None]
    return {"k": k, "tolerance": tol, "passes_a": len(a), "passes_b": len(b), "passes": out,
            "first_pass": firsts[0]["index"] if firsts else None,
            "first_diff": min(p["first_diff"] for p in firsts) if firsts else None,
            "compared": sum(p["compared"] for p in out)}


def first_differing_call(events_a: list[dict], events_b: list[dict], stream_a: np.ndarray, k: int,
                         tol: float = FLIP_TOL) -> int | None:
    """The first captured call (in run order) whose losses on positions < k differ between the two
    runs of the flip test: where the difference arose (its phase says train / serialize / eval)."""
    calls_b = {c["call"]: c for c in decode_calls(events_b)}
    idx = StreamIndex(stream_a)
    for c in decode_calls(events_a):
        other = calls_b.get(c["call"])
        if other is None or other["loss"].size != c["loss"].size:
            continue
        pos, _ = idx.locate(c["tgt"])
        early = (pos >= 1) & (pos < k)
        if early.any() and np.any(np.abs(c["loss"][early].astype(np.float64)
                                         - other["loss"][early].astype(np.float64)) > tol):
            return int(c["call"])
    return None
