"""C4_SINGLE_PASS: one left-to-right pass; each validation token is scored once."""

from __future__ import annotations

import re

from auditor.analysis.program import CodeAnalysis
from rules._code import check_code, graded
from auditor.core.model import Evidence, Finding
from auditor.core.contract import Rule
from rules._cite import issue, pr

_PASS_VAR = re.compile(r"^(_?ep|epoch\w*|_?pass\w*|p_?idx|rep\w*|run\w*|trial\w*|round\w*|sweep\w*)$", re.I)


_CONFIG = re.compile(r"^(args|h|hp|hparams|config|cfg|opts?|device|rank|world_size|log\w*)$|lut|bytes|_ids$|"
                     r"(^|_)(val|valid|validation)_?(tokens?|toks?|ids|data|stream)$", re.I)


def _shared_state(a, b) -> bool:
    """The second scoring receives an object the adapting call received too (a model or cache, not data
    or configuration); a routine handed a copy (`copy.deepcopy(model)`) leaves the original untouched."""
    shared = set(a.data.argnames or []) & set(b.data.argnames or [])
    return any(not _CONFIG.search(n.rsplit(".", 1)[-1]) for n in shared) or (b.data.via is None)


def _search(ca: CodeAnalysis) -> tuple[list[Finding], str]:
    out: list[Finding] = []
    for ev in ca.of("min_select"):
        if ev.labels & {"gold", "nll"} and ca.val_context(ev):
            out.append(graded(RULE, ca, ca.reach(ev), "fail", "high",
                              f"{ca.where(ev.func)} keeps the minimum ({ev.data.how}) of per-token losses from "
                              f"several passes or experts; choosing the best with the realised target is not a "
                              f"single prediction (#573 min-over-passes)",
                              [ca.ev_evidence(ev)], pattern="min_over_passes"))
    scores = [e for e in ca.of("score") if ca.val_context(e)]
    updates = [e for e in ca.of("update") if ca.val_context(e)]
    seen: set[tuple] = set()
    # scoring inside a pass/epoch loop that also adapts: every pass re-scores the same tokens
    for s in scores:
        for loop in s.loops:
            if not any(_PASS_VAR.match(t) for t in loop.targets):
                continue
            ups = [u for u in updates if u.func is s.func and u.in_loop(loop)]
            if ups and (s.path, loop.start) not in seen:
                seen.add((s.path, loop.start))
                out.append(graded(RULE, ca, ca.reach(s), "fail", "high",
                                  f"{ca.where(s.func)} scores validation tokens (line {s.line}) inside the loop over "
                                  f"passes `{', '.join(loop.targets)}` (line {loop.start}) that also adapts on them "
                                  f"(line {ups[0].line}): tokens are scored again after training on them (#568)",
                                  [ca.evidence(s.path, loop.start), ca.ev_evidence(ups[0]), ca.ev_evidence(s)],
                                  pattern="score_every_pass"))
    # a second scoring loop after a loop that scored and built state from the same tokens
    for s2 in scores:
        for s1 in scores:
            if s1.func is not s2.func or s1.line >= s2.line:
                continue
            for l1 in s1.loops:
                if s2.in_loop(l1):
                    continue
                ups = [u for u in updates if u.func is s1.func and u.in_loop(l1)]
                if not ups or s2.line <= l1.end or (s2.path, l1.start) in seen:
                    continue
                seen.add((s2.path, l1.start))
                out.append(graded(RULE, ca, ca.reach(s2), "fail", "high",
                                  f"{ca.where(s2.func)} scores the validation tokens a second time (line {s2.line}) "
                                  f"after the loop at line {l1.start} scored them and updated state from them "
                                  f"(line {ups[0].line}): two-pass rescoring against a completed cache/model "
                                  f"(#846, #870, #881 family)",
                                  [ca.ev_evidence(s1), ca.ev_evidence(ups[0]), ca.ev_evidence(s2)],
                                  pattern="two_pass"))
    # across calls: a routine that scores and adapts, followed by another scoring of the validation set
    via_both = {}
    for s in scores:
        if s.data.via and any(u.line == s.line and u.func is s.func and u.data.via == s.data.via
                                     for u in updates):
            via_both.setdefault(s.func, []).append(s)
    for func, firsts in via_both.items():
        for a in firsts:
            later = [s for s in scores if s.func is func and s.line > a.line
                     and not ({l.node_id for l in s.loops} & {l.node_id for l in a.loops})
                     and _shared_state(a, s)]
            if later and (a.path, a.line, "x") not in seen:
                seen.add((a.path, a.line, "x"))
                b = later[0]
                out.append(graded(RULE, ca, ca.reach(b), "fail", "medium",
                                  f"{ca.where(func)} calls {a.data.via_name}() (line {a.line}), which scores "
                                  f"and adapts on the validation tokens, and then scores them again (line {b.line}, "
                                  f"{b.data.via_name or 'inline'}) with the adapted state. Question for the "
                                  f"author: which of the two produces the reported val_bpb? Only the first pass is a "
                                  f"single-pass score",
                                  [ca.ev_evidence(a), ca.ev_evidence(b)], pattern="rescore_after_adaptation"))
    return out, ""

LOOKED_FOR = ("second scoring pass after state was built from validation tokens, per-pass "
              "re-scoring, or best-of selection over passes")


def dynamic_findings(ctx) -> list[Finding]:
    """Coverage of the per-token losses the gauntlet captured from the script's own evaluation on the
    random stream (auditor/sandbox/capture.py): positions scored twice with the same context, positions
    never scored, and whether the printed score is the mean of one captured pass."""
    obs = ctx.observations.get("gauntlet")
    cap = getattr(obs, "capture", None) if obs is not None else None
    if not cap or not cap.get("located") or not cap.get("coverage"):
        return []
    cov, claim, n = cap["coverage"], cap.get("claim"), cap["n_positions"]
    data = dict(dynamic=True, passes=len(cap["passes"]), coverage=cov, claim=claim, located=cap["located"],
                captured=cap["captured"])
    ev = [Evidence("(gauntlet run)", None, f"pass {cov['index']}: {cov['scored']:,}/{n:,} positions scored, "
                                           f"{cov['scored_twice']:,} twice")]
    out = []
    matched = bool(claim and claim["matches"])
    if cov["scored_twice"] and matched:
        sev = "fail" if cov["scored_twice"] >= n // 2 else "warn"
        out.append(RULE.finding(sev, f"on the random stream the script's evaluation scored {cov['scored_twice']:,} of "
                                     f"{n:,} positions twice with the same context in the pass whose mean is the "
                                     f"printed val_loss ({claim['printed_val_loss']}): tokens are scored more than once",
                                ev, **data))
    if matched and cov["never_scored"] > max(1, n // 100):
        out.append(RULE.finding("warn", f"on the random stream {cov['never_scored']:,} of {n:,} validation positions "
                                        f"were never scored by the pass whose mean is the printed val_loss; the "
                                        f"score does not cover the full validation set", ev, **data))
    if claim and not matched:
        out.append(RULE.finding("info", f"the printed val_loss {claim['printed_val_loss']} is not the mean of any "
                                        f"captured pass (closest: pass {claim['pass']}, |diff| "
                                        f"{claim['difference']:.3g}): the reported numbers come from code the "
                                        f"capture does not see (a numpy/C mixer?) or from a selection over passes",
                                ev, **data))
    if matched and not out:
        out.append(RULE.finding("pass", f"on the random stream the printed val_loss is the mean of one captured pass "
                                        f"scoring {cov['scored']:,} of {n:,} positions once each", ev, **data))
    return out


def check(ctx) -> list[Finding]:
    return check_code(ctx, RULE, _search, LOOKED_FOR) + dynamic_findings(ctx)


RULE = Rule(
    id="C4_SINGLE_PASS",
    title="Single left-to-right pass",
    summary="Each validation token contributes exactly one score, from one pass.",
    explanation="""\
What is checked.
  * two-pass rescoring: a loop scores the validation tokens while building a cache or adapting a model, and a later
    loop in the same function scores them again against the completed state (#846, #870, #881, #893, #907);
  * scoring inside a loop over passes/epochs that also adapts on the same tokens (#568, ruled out);
  * min/argmin/where-selection over per-token losses of several passes or experts (#573);
  * across functions: a call that scores and adapts, followed by another scoring of the validation set with the
    adapted state (NEEDS_REVIEW: which result is reported?).

Why it breaks the metric. A second pass scores tokens with a state that has already seen them; a minimum over
passes picks per token whatever guessed the realised target best. Neither is the code length of a single
left-to-right prediction.

Legal look-alikes that pass: overlapping sliding windows where each token is scored once; several diagnostic
evaluations of a fixed model (roundtrip, sliding) followed by a single score-first TTT pass; chunked TTT where
the epoch loop only trains.

With --gauntlet: the per-token losses the script's own evaluation computed on the random stream
  (captured in the sandbox, see EVALUE_RANDOM_STREAM) show which positions the pass whose mean is the printed
  val_loss scored, and how often; positions scored twice with the same context fail (half of them or more) or
  warn, more than 1% never scored warns, and a printed number that is the mean of no captured pass is noted.
How to verify by hand. Count scoring events per token: the scored-token total in the log must equal val_tokens,
and the reported number must come from the first pass.""",
    citations=(issue(1017), pr(573), pr(568), pr(846), pr(870), pr(881), pr(959)),
    check=check,
    kind="code",
)
