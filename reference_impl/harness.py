"""Exact conformance harness for the four conditions of issue #1017 (C1-C4).

Why numerical: most invalid records were caught by someone *measuring* (summing a hashed cache over the
vocabulary, flipping one target and watching other scores move), not by reading code. This module does those
measurements on a random stream for any predictor of the two shapes in `reference_impl.predictor`:

* stream / batch predictors (`next_logprobs` + `observe`, and/or `stream_logprobs`);
* gold-only scorers `score(tokens) -> log p(tokens[t] | tokens[:t])` for t = 1..len-1, turned into
  distributions by candidate substitution: p_t(v) = exp(score(tokens[:t] + [v])[t-1]).

Conditions and what is measured (all comparisons of distributions for C1/C4 are bit-identical):
  C1 strict causality  p_t is unchanged when tokens after t change (and, where the shape allows telling
                       them apart, when x_t itself changes); fresh instances agree on identical prefixes.
  C2 normalization     Σ_v p_t(v) = 1 within 1e-6 at every checked position (observed sums reported).
  C3 score-first       stream+batch: the batch rows equal the score-first streaming trace (1e-9); a batch
                       row t equal to the trace row t+1 is reported as "counted x_t before scoring it".
                       batch only / gold scorer: no trace exists, so a dependence of the score at t on the
                       scored token (row t moves with x_t; substitution mass != 1) is reported here.
  C4 single pass       repeated calls agree, emitting a distribution does not change state, and the score
                       at t on the stream truncated after t equals the score at t on the full stream (no
                       retrospective revision, e.g. min over two passes).
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

SUM_TOL = 1e-6
TRACE_TOL = 1e-9
DEFAULT_CANDIDATES = 16
MAX_REPORTED = 10
_VOCAB_PARAM_NAMES = {"vocab_size", "vocab", "V", "n_vocab", "vocab_sz"}


class HarnessError(ValueError):
    """The target cannot be certified (wrong shape, bad settings, or it raised): one line, no traceback."""


@dataclass
class Target:
    name: str
    kind: str  # "predictor" or "gold"
    vocab: int
    make: Callable[[], Any] | None = None
    score: Callable[[np.ndarray], Any] | None = None
    has_stream: bool = False
    has_batch: bool = False

    @property
    def shape(self) -> str:
        if self.kind == "gold":
            return "gold"
        return "+".join(s for s, ok in (("stream", self.has_stream), ("batch", self.has_batch)) if ok)


# --------------------------------------------------------------------------------------------------
# target resolution


def _is_predictor(obj: Any) -> bool:
    return callable(getattr(obj, "stream_logprobs", None)) or (
        callable(getattr(obj, "next_logprobs", None)) and callable(getattr(obj, "observe", None)))


def _required_params(fn: Callable) -> list[inspect.Parameter] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [p for p in sig.parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _accepts_vocab(fn: Callable) -> str | None:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    for name in params:
        if name in _VOCAB_PARAM_NAMES:
            return name
    return None


def _call_factory(factory: Callable, vocab: int | None) -> Any:
    name = _accepts_vocab(factory)
    if name is not None:
        if vocab is None:
            raise HarnessError(f"factory needs `{name}`: pass --vocab")
        return _guard(lambda: factory(**{name: vocab}), "constructing the predictor")
    return _guard(factory, "constructing the predictor")


def resolve_target(obj: Any, vocab: int | None = None, shape: str = "auto", name: str | None = None) -> Target:
    """Decide which shape `obj` has and how to get fresh instances of it.

    obj may be a predictor class or factory (called with the vocabulary when it takes a `vocab_size`-like
    parameter), a predictor instance (deep-copied for every run), or a gold scorer function (one required
    parameter that is not a vocabulary size). `shape` ("stream" or "gold") overrides the guess.
    """
    name = name or getattr(obj, "__qualname__", None) or type(obj).__name__
    if shape not in ("auto", "stream", "gold"):
        raise HarnessError(f"unknown shape {shape!r} (use auto, stream or gold)")
    if shape != "gold" and _is_predictor(obj) and not inspect.isclass(obj):
        template = obj
        return _predictor_target(name, lambda: copy.deepcopy(template), vocab)
    if not callable(obj):
        raise HarnessError(f"{name} is neither a predictor nor callable")
    if shape == "auto":
        if inspect.isclass(obj):
            shape = "stream"
        else:
            req = _required_params(obj)
            if req is None:
                shape = "gold"
            elif not req or (len(req) == 1 and req[0].name in _VOCAB_PARAM_NAMES):
                shape = "stream"
            elif len(req) == 1:
                shape = "gold"
            else:
                raise HarnessError(f"{name} takes {len(req)} required arguments; expected a factory "
                                   "(no argument or vocab_size) or a scorer score(tokens)")
    if shape == "gold":
        if vocab is None:
            raise HarnessError("a gold-only scorer does not know its alphabet: pass --vocab")
        return Target(name=name, kind="gold", vocab=int(vocab), score=obj)
    return _predictor_target(name, lambda: _call_factory(obj, vocab), vocab)


def _predictor_target(name: str, make: Callable[[], Any], vocab: int | None) -> Target:
    probe = make()
    if callable(probe) and not _is_predictor(probe):  # a factory of scorers (catalog style)
        if vocab is None:
            raise HarnessError("a gold-only scorer does not know its alphabet: pass --vocab")
        return Target(name=name, kind="gold", vocab=int(vocab), score=probe)
    if not _is_predictor(probe):
        raise HarnessError(f"{name} produced {type(probe).__name__}, which has neither "
                           "next_logprobs()/observe() nor stream_logprobs()")
    v = getattr(probe, "vocab_size", None)
    if not isinstance(v, (int, np.integer)) or v < 2:
        raise HarnessError(f"{name}: predictor has no usable integer vocab_size")
    if vocab is not None and int(v) != int(vocab):
        raise HarnessError(f"{name}: predictor vocab_size {int(v)} differs from --vocab {vocab}")
    return Target(name=name, kind="predictor", vocab=int(v), make=make,
                  has_stream=callable(getattr(probe, "next_logprobs", None)) and callable(getattr(probe, "observe", None)),
                  has_batch=callable(getattr(probe, "stream_logprobs", None)))


def _guard(fn: Callable[[], Any], what: str) -> Any:
    try:
        return fn()
    except HarnessError:
        raise
    except Exception as exc:  # the target is user code: report, never propagate a traceback
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise HarnessError(f"target raised {type(exc).__name__} while {what}: {msg}"[:300]) from None


# --------------------------------------------------------------------------------------------------
# streams and comparisons


def random_stream(vocab: int, length: int, seed: int) -> np.ndarray:
    """Zipf-distributed tokens with copied spans, so caches see repeats (uniform noise would leave
    every count at zero and hide count-based leaks)."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1, dtype=np.float64))
    cdf /= cdf[-1]
    perm = rng.permutation(vocab)
    out = np.empty(length, dtype=np.int64)
    t = 0
    while t < length:
        if t >= 8 and rng.random() < 0.4:
            span = min(int(rng.integers(2, 9)), length - t)
            src = int(rng.integers(0, t - span)) if t > span else 0
            out[t:t + span] = out[src:src + span]
            t += span
        else:
            out[t] = perm[min(vocab - 1, int(np.searchsorted(cdf, rng.random(), side="right")))]
            t += 1
    return out


def _perturb(tokens: np.ndarray, vocab: int, start: int, stop: int, rng: np.random.Generator) -> np.ndarray:
    """Copy of tokens with every token in [start, stop) replaced by a different one."""
    out = tokens.copy()
    n = max(0, stop - start)
    if n:
        out[start:stop] = (tokens[start:stop] + rng.integers(1, vocab, size=n)) % vocab
    return out


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return math.inf
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if same.all():
        return 0.0
    with np.errstate(invalid="ignore"):
        d = np.abs(a - b)
    d = np.where(same, 0.0, np.where(np.isnan(d), np.inf, d))
    return float(d.max())


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _status(ok: bool) -> str:
    return "pass" if ok else "fail"


def _sum_report(sums: list[tuple[int, float]], tol: float, what: str, gold: dict[int, float] | None = None) -> dict:
    bad = [(t, s) for t, s in sums if not (abs(s - 1.0) <= tol)]
    values = [s for _, s in sums]
    rep = {
        "status": _status(not bad),
        "tolerance": tol,
        "checked_positions": len(sums),
        "min_sum": float(min(values)) if values else None,
        "max_sum": float(max(values)) if values else None,
        "failed_positions": len(bad),
        "examples": [{"position": t, "sum": float(s), **({"gold_prob": gold[t]} if gold and t in gold else {})}
                     for t, s in bad[:MAX_REPORTED]],
    }
    if bad:
        rep["summary"] = (f"sum over the vocabulary is {_fmt(rep['min_sum'])}..{_fmt(rep['max_sum'])}, "
                          f"not 1, at {len(bad)}/{len(sums)} {what}")
    else:
        rep["summary"] = f"sum over the vocabulary is 1 within {tol:g} at {len(sums)} {what}"
    return rep


def _row_sums(rows: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(rows).sum(axis=1)


# --------------------------------------------------------------------------------------------------
# predictor shape (stream and/or batch)


class _Prog:
    def __init__(self, progress: Callable[[str], None] | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def step(self, what: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(f"[{self.done}/{self.total}] {what}")


def _validate_rows(rows: Any, n: int, vocab: int, what: str) -> np.ndarray:
    arr = np.asarray(rows, dtype=np.float64)
    if arr.shape != (n, vocab):
        raise HarnessError(f"{what} returned shape {arr.shape}, expected {(n, vocab)}")
    if np.isnan(arr).any() or (arr == np.inf).any():
        raise HarnessError(f"{what} returned NaN or +inf log-probabilities")
    return arr


def _run_stream(target: Target, tokens: np.ndarray, upto: int | None = None,
                repeat_at: frozenset[int] = frozenset(), trace: list | None = None) -> tuple[np.ndarray, list[int]]:
    """Drive the streaming protocol; rows 0..upto. Returns rows and positions where a second
    next_logprobs() call disagreed with the first (only probed at `repeat_at`). `trace` collects
    ("emit" | "observe", t) events in call order."""
    pred = target.make()
    n = len(tokens) if upto is None else upto + 1
    rows = np.empty((n, target.vocab), dtype=np.float64)
    unstable: list[int] = []
    for t in range(n):
        rows[t] = _emit(pred, target.vocab, t)[0]
        if trace is not None:
            trace.append(("emit", t))
        if t in repeat_at:
            again = _emit(pred, target.vocab, t)
            if _max_diff(again[0], rows[t]) != 0.0:
                unstable.append(t)
        if t < len(tokens):
            _guard(lambda: pred.observe(int(tokens[t])), f"observing position {t}")
            if trace is not None:
                trace.append(("observe", t))
    return rows, unstable


def _trace_ok(trace: list, n: int) -> tuple[bool, int]:
    """Every position emitted exactly once, strictly before its token was observed, in stream order."""
    expected = [ev for t in range(n) for ev in (("emit", t), ("observe", t))]
    return trace == expected, len(trace)


def _emit(pred: Any, vocab: int, t: int) -> np.ndarray:
    row = _guard(pred.next_logprobs, f"emitting position {t}")
    try:
        arr = np.asarray(row, dtype=np.float64).reshape(1, -1)
    except (TypeError, ValueError):
        raise HarnessError(f"next_logprobs() at position {t} did not return numbers") from None
    return _validate_rows(arr, 1, vocab, f"next_logprobs() at position {t}")


def _run_batch(target: Target, tokens: np.ndarray) -> np.ndarray:
    pred = target.make()
    rows = _guard(lambda: pred.stream_logprobs(tokens.copy()), "running stream_logprobs")
    return _validate_rows(rows, len(tokens), target.vocab, "stream_logprobs()")


def _certify_predictor(target: Target, x: np.ndarray, pos: list[int], rng: np.random.Generator,
                       progress: Callable[[str], None] | None, tol: float = 0.0,
                       trace_tol: float = TRACE_TOL) -> dict:
    V, T = target.vocab, len(x)
    futures = {t: _perturb(x, V, t + 1, T, rng) for t in pos}
    scored = {t: _perturb(x, V, t, t + 1, rng) for t in pos}
    steps = (3 + 2 * len(pos) if target.has_stream else 0) + (2 + 3 * len(pos) if target.has_batch else 0)
    prog = _Prog(progress, steps)

    c1_fail: list[dict] = []
    c1_checks = 0
    c4_fail: list[dict] = []
    c4_checks = 0
    c3: dict = {}
    sums: list[tuple[int, float]] = []
    R = B = None
    scored_dep_batch: list[int] = []

    if target.has_stream:
        trace: list = []
        R, _ = _run_stream(target, x, trace=trace)
        trace_ok, trace_events = _trace_ok(trace, T)
        prog.step("streaming reference run")
        R_rep, unstable = _run_stream(target, x, repeat_at=frozenset(pos))
        prog.step("streaming run with repeated emissions")
        R_fresh, _ = _run_stream(target, x)
        prog.step("fresh-instance rerun")
        c4_checks += 3 + len(pos)
        if not trace_ok:
            c4_fail.append({"kind": "trace_not_one_emission_per_position"})
        for t in unstable:
            c4_fail.append({"position": t, "kind": "repeated_emission_differs"})
        d = _max_diff(R_rep, R)
        if d > tol:
            c4_fail.append({"kind": "emission_changes_state", "max_abs_diff": d})
        d = _max_diff(R_fresh, R)
        c1_checks += 1
        if d > tol:
            c1_fail.append({"kind": "instance_leak", "max_abs_diff": d,
                            "detail": "a fresh instance gives different rows on the identical stream"})
        for t in pos:
            for kind, stream in (("future", futures[t]), ("scored_token", scored[t])):
                rows, _ = _run_stream(target, stream, upto=t)
                prog.step(f"streaming perturbation ({kind}) at t={t}")
                c1_checks += 1
                d = _max_diff(rows, R[: t + 1])
                if d > tol:
                    c1_fail.append({"position": t, "kind": kind, "path": "stream", "max_abs_diff": d})
        sums += [(t, float(s)) for t, s in enumerate(_row_sums(R))]

    if target.has_batch:
        B = _run_batch(target, x)
        prog.step("batch reference run")
        B2 = _run_batch(target, x)
        prog.step("batch repeated run")
        c4_checks += 1
        d = _max_diff(B2, B)
        if d > tol:
            c4_fail.append({"kind": "repeated_call_differs", "path": "batch", "max_abs_diff": d})
        for t in pos:
            Bf = _run_batch(target, futures[t])
            prog.step(f"batch perturbation (future) at t={t}")
            c1_checks += 1
            d = _max_diff(Bf[: t + 1], B[: t + 1])
            if d > tol:
                c1_fail.append({"position": t, "kind": "future", "path": "batch", "max_abs_diff": d})
            Bs = _run_batch(target, scored[t])
            prog.step(f"batch perturbation (scored token) at t={t}")
            c1_checks += 1
            d_prev = _max_diff(Bs[:t], B[:t])
            if d_prev > tol:
                first = next(r for r in range(t) if _max_diff(Bs[r], B[r]) > tol)
                c1_fail.append({"position": first, "kind": "future", "path": "batch", "max_abs_diff": d_prev})
            d = _max_diff(Bs[t], B[t])
            if d > tol:
                scored_dep_batch.append(t)
                c1_fail.append({"position": t, "kind": "scored_token", "path": "batch", "max_abs_diff": d})
            Bt = _run_batch_prefix(target, x, t)
            prog.step(f"batch truncated at t={t}")
            c4_checks += 1
            d = _max_diff(Bt, B[: t + 1])
            if d > tol:
                c4_fail.append({"position": t, "kind": "truncation_changes_score", "path": "batch",
                                "max_abs_diff": d})
        if R is None:
            sums += [(t, float(s)) for t, s in enumerate(_row_sums(B))]
        else:
            sums += [(t, float(s)) for t, s in enumerate(_row_sums(B)) if abs(s - 1.0) > SUM_TOL]

    # C3
    if target.has_stream and target.has_batch:
        diff_rows = [t for t in range(T) if not _max_diff(B[t], R[t]) <= trace_tol]
        lagged = [t for t in diff_rows if t + 1 < T and _max_diff(B[t], R[t + 1]) <= trace_tol]
        worst = max((_max_diff(B[t], R[t]) for t in diff_rows), default=0.0)
        c3 = {"status": _status(not diff_rows), "evidence": "batch rows vs score-first streaming trace",
              "trace_events": trace_events, "rows_compared": T, "tolerance": trace_tol,
              "mismatched_rows": len(diff_rows), "max_abs_diff": worst,
              "lagged_rows": len(lagged), "examples": diff_rows[:MAX_REPORTED]}
        if lagged:
            c3["summary"] = (f"batch row t equals the streaming distribution after observing x_t at "
                             f"{len(lagged)}/{T} rows: x_t was counted before p_t was emitted")
        elif diff_rows:
            c3["summary"] = (f"batch path disagrees with the score-first streaming trace at {len(diff_rows)}/{T} "
                             f"rows (max |diff| {_fmt(worst)})")
        else:
            c3["summary"] = (f"batch path equals the score-first streaming trace at all {T} rows "
                             f"(tolerance {trace_tol:g})")
    elif target.has_stream:
        c3 = {"status": _status(trace_ok), "evidence": "streaming trace", "trace_events": trace_events,
              "summary": f"streaming trace: every p_t emitted before observe(x_t) ({trace_events} events); "
                         "rows on streams differing only at x_t agree (see C1)"}
        if any(f.get("kind") == "scored_token" for f in c1_fail):
            c3.update(status="fail", summary="p_t moved when only x_t changed although x_t was never observed: "
                                              "state reaches the predictor outside observe()")
    else:
        c3 = {"status": _status(not scored_dep_batch), "evidence": "scored-token perturbation (no streaming trace)",
              "positions_checked": len(pos), "failed_positions": scored_dep_batch[:MAX_REPORTED]}
        c3["summary"] = ("score depends on the scored token: row t moved when only x_t changed at "
                         f"{len(scored_dep_batch)}/{len(pos)} positions (batch-only: cannot be told apart from "
                         "an update before scoring)" if scored_dep_batch else
                         f"row t unchanged when only x_t changes at {len(pos)} positions")

    return _assemble(c1_fail, c1_checks, _sum_report(sums, SUM_TOL, "positions"), c3, c4_fail, c4_checks, tol)


def _run_batch_prefix(target: Target, x: np.ndarray, t: int) -> np.ndarray:
    pred = target.make()
    rows = _guard(lambda: pred.stream_logprobs(x[: t + 1].copy()), "running stream_logprobs on a prefix")
    return _validate_rows(rows, t + 1, target.vocab, "stream_logprobs()")


def _assemble(c1_fail: list[dict], c1_checks: int, c2: dict, c3: dict, c4_fail: list[dict], c4_checks: int,
              tol: float = 0.0) -> dict:
    same = "bit-identical" if tol == 0.0 else f"equal within {tol:g}"
    c1 = {"status": _status(not c1_fail), "checks": c1_checks, "failures": len(c1_fail),
          "examples": c1_fail[:MAX_REPORTED]}
    if c1_fail:
        kinds = sorted({f["kind"] for f in c1_fail})
        c1["summary"] = f"p_t changed at {len(c1_fail)}/{c1_checks} checks ({', '.join(kinds)})"
    else:
        c1["summary"] = f"p_t {same} under {c1_checks} perturbations of tokens at or after t"
    c4 = {"status": _status(not c4_fail), "checks": c4_checks, "failures": len(c4_fail),
          "examples": c4_fail[:MAX_REPORTED]}
    if c4_fail:
        kinds = sorted({f["kind"] for f in c4_fail})
        c4["summary"] = f"scores not final after one pass at {len(c4_fail)}/{c4_checks} checks ({', '.join(kinds)})"
    else:
        c4["summary"] = f"each position scored once: {c4_checks} repeat/truncation checks {same}"
    return {"C1": c1, "C2": c2, "C3": c3, "C4": c4}


# --------------------------------------------------------------------------------------------------
# gold-only scorer shape


def _call_score(target: Target, tokens: np.ndarray, what: str) -> np.ndarray:
    out = _guard(lambda: target.score(tokens.copy()), what)
    try:
        arr = np.asarray(out, dtype=np.float64).reshape(-1) if np.ndim(out) <= 1 else None
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (len(tokens) - 1,):
        shape = np.shape(out) if arr is None else arr.shape
        raise HarnessError(f"score() returned shape {shape} for {len(tokens)} tokens; expected ({len(tokens) - 1},)")
    if np.isnan(arr).any():
        raise HarnessError("score() returned NaN")
    return arr


def _certify_gold(target: Target, x: np.ndarray, pos: list[int], rng: np.random.Generator,
                  candidates: int, progress: Callable[[str], None] | None, tol: float = 0.0) -> dict:
    V, T = target.vocab, len(x)
    prog = _Prog(progress, 3 + len(pos) * 3)
    s = _call_score(target, x, "scoring the reference stream")
    prog.step("reference score")
    c1_fail: list[dict] = []
    c4_fail: list[dict] = []
    c1_checks = c4_checks = 0

    again = _call_score(target, x, "re-scoring the reference stream")
    other = random_stream(V, T, int(rng.integers(1 << 30)))
    _call_score(target, other, "scoring another stream")
    after = _call_score(target, x, "re-scoring after another stream")
    prog.step("repeated calls")
    c4_checks += 2
    for kind, arr in (("repeated_call_differs", again), ("state_carried_across_calls", after)):
        d = _max_diff(arr, s)
        if d > tol:
            c4_fail.append({"kind": kind, "max_abs_diff": d})

    sums: list[tuple[int, float]] = []
    gold_p: dict[int, float] = {}
    for t in pos:
        # C4: the score at t must already be final when a single pass reaches t
        st = _call_score(target, x[: t + 1], f"scoring the stream truncated after {t}")
        c4_checks += 1
        d = _max_diff(st[t - 1:t], s[t - 1:t])
        if d > tol:
            c4_fail.append({"position": t, "kind": "truncation_changes_score", "max_abs_diff": d,
                            "full_stream_logprob": float(s[t - 1]), "truncated_logprob": float(st[t - 1])})
        # C1: later tokens must not move the gold score at t, nor p_t(v) for sampled candidates v
        xf = _perturb(x, V, t + 1, T, rng)
        sf = _call_score(target, xf, f"scoring with tokens after {t} changed")
        c1_checks += 1
        d = _max_diff(sf[:t], s[:t])
        if d > tol:
            c1_fail.append({"position": t, "kind": "future", "max_abs_diff": d})
        cand = _candidates(V, int(x[t]), candidates, rng)
        worst = 0.0
        for v in cand:
            a, b = x.copy(), xf.copy()
            a[t] = b[t] = v
            worst = max(worst, _max_diff(_call_score(target, a, "scoring a candidate")[t - 1:t],
                                         _call_score(target, b, "scoring a candidate")[t - 1:t]))
        c1_checks += 1
        if worst > tol:
            c1_fail.append({"position": t, "kind": "future_candidates", "candidates": len(cand), "max_abs_diff": worst})
        prog.step(f"C1/C4 probes at t={t}")
        # C2: full alphabet by substitution on the stream truncated after t
        lp = np.empty(V, dtype=np.float64)
        stream = x[: t + 1].copy()
        for v in range(V):
            stream[t] = v
            lp[v] = _call_score(target, stream, "scoring a substituted candidate")[t - 1]
        with np.errstate(over="ignore"):
            sums.append((t, float(np.exp(lp).sum())))
            gold_p[t] = float(np.exp(lp[int(x[t])]))
        prog.step(f"substitution over {V} candidates at t={t}")

    c2 = _sum_report(sums, SUM_TOL, "sampled positions (full-vocabulary substitution)", gold_p)
    dep = [{"position": t, "sum": sm} for t, sm in sums if not abs(sm - 1.0) <= SUM_TOL]
    c3 = {"status": _status(not dep), "evidence": "substitution mass at t (gold-only scorer: no trace)",
          "positions_checked": len(sums), "failed_positions": len(dep), "examples": dep[:MAX_REPORTED]}
    c3["summary"] = (f"score depends on the scored token: the scores of the {V} possible x_t do not form one "
                     f"distribution at {len(dep)}/{len(sums)} positions" if dep else
                     f"the scores of the {V} possible x_t form one distribution at {len(sums)} positions")
    return _assemble(c1_fail, c1_checks, c2, c3, c4_fail, c4_checks, tol)


def _candidates(V: int, gold: int, cap: int, rng: np.random.Generator) -> list[int]:
    if cap >= V:
        return list(range(V))
    others = rng.choice(np.delete(np.arange(V), gold), size=max(0, cap - 1), replace=False)
    return [gold] + sorted(int(v) for v in others)


# --------------------------------------------------------------------------------------------------
# entry point


def certify(target: Any, *, vocab: int | None = None, length: int = 96, positions: int = 6, seed: int = 0,
            candidates: int | None = None, shape: str = "auto", name: str | None = None,
            progress: Callable[[str], None] | None = None, tolerance: float = 0.0,
            trace_tolerance: float = TRACE_TOL) -> dict:
    """Certify `target` against C1-C4; returns the JSON-ready report (byte-identical for identical input).

    `tolerance` (default 0: bit-identical) applies to the C1/C4 comparisons of the same code path on
    different or repeated input; `trace_tolerance` to the batch-vs-streaming comparison of C3, where two
    implementations legitimately round differently (float32 models may need ~1e-5).

    Raises HarnessError for a target that cannot be run (bad shape, wrong vocab, exception inside it).
    """
    if length < 3:
        raise HarnessError("--length must be at least 3")
    if positions < 1:
        raise HarnessError("--positions must be at least 1")
    if vocab is not None and vocab < 2:
        raise HarnessError("--vocab must be at least 2")
    if vocab is not None and vocab > 1 << 20:
        raise HarnessError("--vocab larger than 2^20 is not supported")
    tg = target if isinstance(target, Target) else resolve_target(target, vocab=vocab, shape=shape, name=name)
    x = random_stream(tg.vocab, length, seed)
    rng = np.random.default_rng([seed, 1])
    lo = 1 if tg.kind == "gold" else 0
    k = min(positions, length - lo)
    pos = sorted(int(t) for t in rng.choice(np.arange(lo, length), size=k, replace=False))
    if not (0.0 <= tolerance < 1.0 and 0.0 <= trace_tolerance < 1.0):
        raise HarnessError("tolerances must be in [0, 1)")
    cap = DEFAULT_CANDIDATES if candidates is None else int(candidates)
    if cap < 1:
        raise HarnessError("--candidates must be at least 1")
    if tg.kind == "gold":
        conds = _certify_gold(tg, x, pos, rng, cap, progress, tolerance)
    else:
        conds = _certify_predictor(tg, x, pos, rng, progress, tolerance, trace_tolerance)
    verdict = "pass" if all(c["status"] == "pass" for c in conds.values()) else "fail"
    return _json_safe({
        "target": tg.name,
        "shape": tg.shape,
        "settings": {"vocab": tg.vocab, "length": length, "positions": pos, "seed": seed,
                     "candidates": cap if tg.kind == "gold" else None, "tolerance": tolerance,
                     "trace_tolerance": trace_tolerance},
        "conditions": conds,
        "verdict": verdict,
    })


def _json_safe(obj: Any) -> Any:
    """Non-finite floats become the strings "inf", "-inf", "nan" so the report is strict JSON."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf"))
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


CONDITION_TITLES = {"C1": "strict causality", "C2": "normalization", "C3": "score before update",
                    "C4": "single pass"}


def format_text(report: dict) -> str:
    """Readable form of a `certify` report (deterministic)."""
    st = report["settings"]
    lines = [f"conform {report['target']}  [{report['shape']}; vocab {st['vocab']}, length {st['length']}, "
             f"{len(st['positions'])} positions, seed {st['seed']}]"]
    for key, cond in report["conditions"].items():
        lines.append(f"  {key} {CONDITION_TITLES[key]:<20} {cond['status'].upper():<4}  {cond['summary']}")
    failed = [k for k, c in report["conditions"].items() if c["status"] != "pass"]
    lines.append(f"verdict: {report['verdict'].upper()}" + (f" (violates {', '.join(failed)})" if failed else ""))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# loading targets by name


def load_spec(spec: str, vocab: int | None = None) -> tuple[Any, int | None, str]:
    """Resolve "catalog:NAME" or "FILE.py:NAME" to (object, vocab, display name).

    Loading FILE.py executes it: certifying a file means running the predictor it defines, so only use it
    on code you would run anyway (the auditor's sandbox is the place for untrusted submissions).
    """
    import importlib.util
    import sys
    from pathlib import Path

    if spec.startswith("catalog:"):
        from reference_impl import catalog

        name = spec[len("catalog:"):]
        try:
            make, v = catalog.factory_for(name, vocab)
        except (KeyError, ValueError) as exc:
            raise HarnessError(str(exc).strip("'\"")) from None
        return make, v, spec
    path_text, sep, attr = spec.rpartition(":")
    if not sep or not path_text or not attr:
        raise HarnessError(f"target {spec!r} must look like FILE.py:NAME or catalog:NAME")
    path = Path(path_text)
    if not path.is_file():
        raise HarnessError(f"{path_text}: no such file")
    if path.suffix != ".py":
        raise HarnessError(f"{path_text}: expected a .py file")
    mod_name = f"_conform_target_{abs(hash(str(path.resolve())))}"
    try:
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module  # dataclasses/pickle look the module up by name
        module_spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise HarnessError(f"{path_text}: syntax error on line {exc.lineno}") from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise HarnessError(f"{path_text}: importing it raised {type(exc).__name__}: {first}"[:300]) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise HarnessError(f"{path_text} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj, vocab, f"{path.name}:{attr}"
