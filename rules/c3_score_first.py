"""C3_SCORE_FIRST: validation tokens may only be trained on (or counted) after they have been scored."""

from __future__ import annotations

import re

from auditor.analysis.events import Event
from auditor.analysis.patterns import causal_sweep, find_slots
from auditor.analysis.program import CodeAnalysis
from rules._code import check_code, graded
from auditor.core.model import Finding
from auditor.core.contract import Rule
from rules._cite import README_RULES, issue, pr
from rules._flip import change_words, complete_flip, flip_evidence, fork_words, trained_before_scoring

_THROWAWAY = re.compile(r"(lora|opt|adapter|delta|warm|tmp|temp|scratch|bias|wl|wo|state)", re.I)


def _func_by_qname(ca: CodeAnalysis, qname: str):
    for f in ca.index.funcs:
        if f.qname == qname:
            return f
    return None


def _discarded(ca: CodeAnalysis, u: Event, s_line: int) -> Event | None:
    """The `del` / state-restore that throws the update away before the scoring, if any."""
    opt_names = {n for e in ca.of("opt") if e.func is u.func for n in e.data.names or []}
    fresh = {n for e in ca.of("fresh") if e.func is u.func for n in e.data.names or []}
    passed = set(u.data.argnames or []) if u.data.via else None  # what a called adapter could have changed
    for e in ca.of("del", "restore"):
        if e.func is not u.func or not (u.line < e.line < s_line):
            continue
        if passed is not None:  # an update inside a call is thrown away only with the objects it was given
            touched = set(e.data.names or []) if e.kind == "del" else {(e.data.obj or "").split(".")[0]}
            if touched & passed:
                return e
            continue
        if e.kind == "restore":
            return e
        names = set(e.data.names or [])
        if names & (opt_names | fresh) or any(_THROWAWAY.search(n) for n in names):
            return e
    origin = u.data.origin
    if origin:
        callee = _func_by_qname(ca, origin.get("func", ""))
        if callee is not None:
            for e in ca.of("del", "restore"):
                if e.func is callee and e.line > origin.get("line", 0):
                    return e
    return None


def _search(ca: CodeAnalysis) -> tuple[list[Finding], str]:
    slot_loops = {(h.step.func, h.loop.node_id) for h in find_slots(ca)}
    out: list[Finding] = []
    verified: list[str] = []
    scores_by_func: dict = {}
    for s in ca.of("score"):
        if ca.val_context(s):
            scores_by_func.setdefault(s.func, []).append(s)
    reported: set[tuple] = set()
    for u in ca.of("update"):
        if not ca.val_context(u):
            continue
        if any((u.func, l.node_id) in slot_loops for l in u.loops):
            continue  # per-batch SLOT parameters: reported by C1_CAUSAL
        S = scores_by_func.get(u.func, [])
        if u.data.via and any(s.line == u.line and s.data.via == u.data.via for s in S):
            continue  # a routine that scores and adapts: its own order is checked where it is defined
        scored_before = [(l, x.line) for l in reversed(u.loops) for x in S if x.in_loop(l) and x.line < u.line]
        sweep = causal_sweep(u, ca.of("pos_write")) if not scored_before else None
        if sweep is not None:
            verified.append(f"{ca.where(u.func)} (causal sweep: position output at line {sweep.line} "
                            f"before the update at line {u.line})")
            continue
        if scored_before:
            loop, line = scored_before[0]
            verified.append(f"{ca.where(u.func)} (score line {line} before update line {u.line} in the loop at "
                            f"line {loop.start})")
            continue
        later = sorted((x for x in S if x.line > u.line), key=lambda e: e.line)
        if not later or (u.path, u.line) in reported:
            continue
        reported.add((u.path, u.line))
        s = later[0]
        common = [l for l in u.loops if s.in_loop(l)]
        what = f"`{u.data.how}`" + (f" (inside {u.data.via_name}())" if u.data.via else "")
        if not common:
            disc = _discarded(ca, u, s.line)
            if disc is not None:
                out.append(graded(
                    RULE, ca, ca.reach(u), "warn", "medium",
                    f"{ca.where(u.func)} runs an update {what} on validation tokens at line {u.line} before they "
                    f"are scored (line {s.line}); the updated state appears to be thrown away at line "
                    f"{disc.line} (`{disc.text}`), like the compile warm-up kept in #1530. Confirm that no "
                    f"parameter, optimizer state or cache from this step survives into scoring",
                    [ca.ev_evidence(u), ca.ev_evidence(disc), ca.ev_evidence(s)], pattern="throwaway_warmup"))
            else:
                out.append(graded(
                    RULE, ca, ca.reach(u), "fail", "high",
                    f"{ca.where(u.func)} trains or counts on validation tokens ({what}, line {u.line}) before "
                    f"those tokens are scored (line {s.line}): pre-evaluation / pre-quantisation adaptation on "
                    f"the validation set (#402, #1376)",
                    [ca.ev_evidence(u), ca.ev_evidence(s)], pattern="update_before_score"))
            continue
        inner = common[-1]
        out.append(graded(
            RULE, ca, ca.reach(u), "fail", "medium",
            f"in {ca.where(u.func)} an update {what} on validation tokens (line {u.line}) comes before the "
            f"scoring (line {s.line}) in the same iteration of the loop at line {inner.start}. Question for the "
            f"author: were the tokens used for this update scored in an earlier iteration?",
            [ca.ev_evidence(u), ca.ev_evidence(s)], pattern="update_before_score_in_loop", loop_line=inner.start))
    extra = ("score-first order found in " + "; ".join(sorted(set(verified)))) if verified else ""
    return out, extra

LOOKED_FOR = ("optimizer step, backward pass or count update on validation tokens before "
              "they are scored")


def flip_findings(ctx) -> list[Finding]:
    """The gauntlet's flip test (rules/_flip.py) when the run took a loss with gradients on validation
    targets before the first score that changed."""
    flip = complete_flip(ctx)
    if flip is None or not trained_before_scoring(flip):
        return []
    k, first = flip["k"], flip.get("first_diff")
    data, ev = dict(dynamic=True, flip=flip), flip_evidence(flip)
    if first is None:
        return [RULE.finding("pass", f"flip test: the run trained on validation tokens, and the {flip['compared']:,} "
                                     f"scores of positions before k={k:,} are still equal when the stream is re-drawn "
                                     f"from k on (every update used tokens already scored); {fork_words(flip)}",
                             ev, **data)]
    return [RULE.finding("fail", f"flip test: {fork_words(flip)}; re-drawing the stream from position {k:,} on changed "
                                 f"the loss of earlier positions — {change_words(flip)}: the model was updated on "
                                 f"validation tokens before they were scored", ev, **data)]


def check(ctx) -> list[Finding]:
    return check_code(ctx, RULE, _search, LOOKED_FOR) + flip_findings(ctx)


RULE = Rule(
    id="C3_SCORE_FIRST",
    title="Score before update",
    summary="Test-time training or counting may only use validation tokens that were already scored.",
    explanation="""\
What is checked. Backward passes, optimizer-driven updates and count-table updates are traced to their data;
those computed from the validation tokens are compared, in program order and across helper functions, with the
accumulation of the reported score:
  * an update on validation tokens entirely before the scoring (pre-evaluation TTT, #402 list; pre-quantisation
    TTT, #1376 cluster) is a fail;
  * an update that precedes the scoring inside the same loop iteration is NEEDS_REVIEW with the question whether
    those tokens were scored in an earlier iteration;
  * an update on validation tokens whose state is then deleted or reset before scoring (compile warm-up, #1530,
    kept as a leaderboard row) is a warn with the discard line.

Why it breaks the metric. The README allows training only on validation tokens "you've already evaluated your
model on". Adapting first is equivalent to appending the validation set to the training data (#402).

Legal look-alikes that pass: chunked score-first TTT (score chunk i under no_grad, then train on it; the order is
verified inside the loop), periodic validation during training (updates there are on training batches), GPTQ
calibration on training data, count updates after the score of the position is recorded.

With --gauntlet, the flip test (see C1_CAUSAL): when the run took a loss with gradients on validation targets
before the first score that changed when the stream was re-drawn after position k, an update used tokens that
were not yet scored (had every update used scored tokens only, no score before k could change): a fail here.

How to verify by hand. In the cited function, check that every token entering a loss.backward()/optimizer step
or a count update has already contributed to loss_sum/the score; the dynamic check is to perturb one token and
confirm that no earlier score changes.""",
    citations=(README_RULES, issue(1017), issue(402), pr(1376), pr(1530), pr(568), issue(677)),
    check=check,
    kind="code",
)
