"""C1_CAUSAL: the distribution that scores token t may depend only on the artifact and tokens before t."""

from __future__ import annotations

from auditor.analysis.patterns import find_slots
from auditor.analysis.program import CodeAnalysis, c_file_reach
from rules._code import check_code, graded
from auditor.core.model import Finding
from auditor.core.contract import Rule
from rules._cite import issue, pr
from rules._flip import change_words, complete_flip, flip_evidence, fork_words, trained_before_scoring
from rules._rulings import grade


def _mix_findings(ca: CodeAnalysis) -> list[Finding]:
    out = []
    for ev in ca.of("mix"):
        if not ca.val_context(ev):
            continue  # training losses may weight by the gold probability (focal-style); only scoring matters
        wl = ev.data.weight_labels
        if wl & {"target", "gold"}:
            out.append(graded(RULE, ca, ca.reach(ev), "fail", "high",
                              f"the mixing weight `{ev.data.weight_text}` in {ca.where(ev.func)} is computed "
                              f"from the realised target (or the probability of the gold token), so the mixture "
                              f"that scores a token depends on that token",
                              [ca.ev_evidence(ev)], pattern="target_gate"))
        ops = ev.data.operand_labels or []
        if any("hlookup" in o for o in ops):
            lookups = [e for e in ca.of("lookup") if e.data.hashed and e.func is ev.func] or \
                      [e for e in ca.of("lookup") if e.data.hashed][:1]
            out.append(graded(RULE, ca, ca.reach(ev), "fail", "high",
                              f"a table entry looked up with a hash key that includes the target token "
                              f"feeds the mixed probability in {ca.where(ev.func)} (#779 family): the score of a "
                              f"token is shaped by that token",
                              [ca.ev_evidence(e) for e in lookups[:2]] + [ca.ev_evidence(ev)],
                              pattern="target_hash_key"))
    return out


def _hash_score_findings(ca: CodeAnalysis, already: set) -> list[Finding]:
    out = []
    for ev in ca.of("score"):
        if "hlookup" in ev.labels and not ev.data.via and ev.func not in already:
            lookups = [e for e in ca.of("lookup") if e.data.hashed][:2]
            out.append(graded(RULE, ca, ca.reach(ev), "fail", "high",
                              f"the accumulated score in {ca.where(ev.func)} uses a table entry looked up with a hash "
                              f"key that includes the target token",
                              [ca.ev_evidence(e) for e in lookups] + [ca.ev_evidence(ev)], pattern="target_hash_key"))
    return out


def _slot_findings(ca: CodeAnalysis) -> list[Finding]:
    out = []
    for hit in find_slots(ca):
        st, loop, back, scored = hit.step, hit.loop, hit.backward, hit.scored
        ev_list = [ca.evidence(st.path, st.data.opt_line or loop.start), ca.ev_evidence(back),
                   ca.ev_evidence(st), ca.ev_evidence(scored)]
        if hit.context_only:
            out.append(graded(RULE, ca, ca.reach(st), "warn", "medium",
                              f"per-window optimisation (SLOT-style) in {ca.where(st.func)}: parameters created per "
                              f"batch are optimised (loop at line {loop.start}) and the same targets are scored "
                              f"after it (line {scored.line}); the loss appears restricted to context positions. "
                              f"Whether context-only SLOT is legal was asked in #1336 and never ruled; confirm the "
                              f"optimised positions exclude every scored position",
                              ev_list, pattern="context_slot"))
        else:
            out.append(graded(RULE, ca, ca.reach(st), "fail", "high",
                              f"SLOT: in {ca.where(st.func)} parameters created per batch are optimised against the "
                              f"targets (backward at line {back.line}, step at line {st.line}) and those same "
                              f"targets are scored afterwards (line {scored.line}); the score of each token used "
                              f"that token",
                              ev_list, pattern="slot"))
    return out


def _position_findings(ca: CodeAnalysis) -> list[Finding]:
    out = []
    for func, g in ca.pos_gates:
        reach = ca.reach_at(func, g.write_line)
        ev = [ca.evidence(func.path, g.read_line)]
        if g.cond_line and g.cond_line != g.read_line:
            ev.append(ca.evidence(func.path, g.cond_line))
        ev.append(ca.evidence(func.path, g.write_line))
        out.append(graded(RULE, ca, reach, "fail", "high",
                          f"`{g.target}[{g.index}]` in {ca.where(func)} is decided from `{g.seq}[{g.index}]`, the "
                          f"token at the position being predicted; a causal hint may only read "
                          f"`{g.seq}[{g.index} - 1]` "
                          f"and earlier (#1420/#1967 target-gated hints)", ev, pattern="target_gated_hint"))
    for path, hit, owner in ca.c_hits:
        if owner is not None:
            reach = ca.reach_at(owner, hit.line)
            where = f"C source embedded in a Python string in {ca.where(owner)}"
        else:
            reach, ref = c_file_reach(ca, path)
            where = f"C helper {path}" + (f" (compiled from {ref.path}:{ref.line})" if ref is not None else
                                          " (not referenced by the Python code)")
        ev = [ca.evidence(path, hit.read_line), ca.evidence(path, hit.line)]
        if hit.kind == "pos_gate":
            out.append(graded(RULE, ca, reach, "fail", "high",
                              f"{where}: {hit.detail}; a causal hint may only use tokens before the predicted position",
                              ev, pattern="target_gated_hint"))
        else:
            out.append(graded(RULE, ca, reach, "fail", "medium",
                              f"{where}: {hit.detail}; if that entry shapes the probability of the token at that "
                              f"position, the target leaks into its own score. Check how the value is used",
                              ev, pattern="target_hash_key"))
    return out


def _smear_findings(ctx, ca: CodeAnalysis) -> list[Finding]:
    out = []
    for func, s in ca.smears:
        if s.masked:
            continue
        out.append(grade(ctx, graded(RULE, ca, ca.reach_at(func, s.line), "fail", "medium",
                          f"{ca.where(func)} mixes the previous position's state (`{s.text}` shifted by one) into "
                          f"each position, and no document-boundary (BOS) mask reaches that mixing. On the "
                          f"packed validation stream the BOS position then carries the previous document's last "
                          f"token (#1797 audit; the rule itself is disputed in #1988). Question for the author: is "
                          f"the mixing gated off at BOS positions, or does evaluation never cross a document boundary?",
                          [ca.evidence(func.path, s.line)], pattern="cross_document_mixing"), "SMEAR_BOS_MASK"))
    return out


def _search(ctx, ca: CodeAnalysis) -> tuple[list[Finding], str]:
    out = _mix_findings(ca)
    out += _hash_score_findings(ca, {e.func for e in ca.of("mix")
                                     if any("hlookup" in o for o in e.data.operand_labels or [])})
    out += _slot_findings(ca)
    out += _position_findings(ca)
    out += _smear_findings(ctx, ca)
    for path, why in sorted(ca.unreadable.items()):
        out.append(RULE.finding("warn", f"{path}: not analysed ({why}); the code rules could not read that code, "
                                        "check it by hand", confidence="medium", path=path))
    masked = [f"{ca.where(f)} (mask at line {s.mask_line})" for f, s in ca.smears if s.masked]
    extra = ("previous-token mixing with a BOS mask: " + ", ".join(masked)) if masked else ""
    return out, extra

LOOKED_FOR = ("target-dependent gate, target-keyed hash lookup, target-gated hint, SLOT loop "
              "or unmasked previous-token mixing")


def flip_findings(ctx) -> list[Finding]:
    """The gauntlet's flip test (rules/_flip.py): a position before k whose score changed when the stream
    was re-drawn from k was scored with tokens at or after k. A run that trained on validation tokens
    before that score is judged by C3_SCORE_FIRST instead."""
    flip = complete_flip(ctx)
    if flip is None or (flip.get("first_diff") is not None and trained_before_scoring(flip)):
        return []
    k, first = flip["k"], flip.get("first_diff")
    data, ev = dict(dynamic=True, flip=flip), flip_evidence(flip)
    if first is None:
        return [RULE.finding("pass", f"flip test: {flip['compared']:,} scores of positions before k={k:,} are equal "
                                     f"(within {flip['tolerance']:g} nats) when the stream is re-drawn from k on; "
                                     f"{fork_words(flip)}", ev, **data)]
    where = ("just before k: the scoring looks ahead across the window (a peek at later tokens, or optimisation on "
             "the scored window)" if k - first <= 4096 else
             "far before k: the model that scores them was adapted on later validation tokens before scoring them")
    return [RULE.finding("fail", f"flip test: re-drawing the random validation stream from position {k:,} on changed "
                                 f"the loss of earlier positions — {change_words(flip)}, {where}; {fork_words(flip)}",
                         ev, **data)]


def check(ctx) -> list[Finding]:
    return check_code(ctx, RULE, lambda ca: _search(ctx, ca), LOOKED_FOR) + flip_findings(ctx)


RULE = Rule(
    id="C1_CAUSAL",
    title="Strictly causal scoring",
    summary="The probability that scores token t must not depend on token t or later tokens.",
    explanation="""\
What is checked. The decoded code is analysed for values derived from the target tensor (the tokens being
scored) that reach something shaping the scored probability:
  * a mixing weight or gate computed from the target or from the gold-token probability (#1785, #659);
  * a hash key that includes the target token, used to read a count table whose entry feeds the mixture or the
    score (#779 family);
  * a hint/gate/valid flag written at position i under a condition on the token at i, in Python or in a C/C++
    helper (#1420 before its fix, #1967);
  * SLOT: parameters created per batch (delta, logit bias) optimised with a loss over the targets and then used to
    score those same targets (#1240 showed the self-prediction advantage);
  * previous-token mixing (SmearGate-like `x[:, :-1]` added into `x[:, 1:]`) with no BOS/document mask (#1797).

Why it breaks the metric. val_bpb is -log p(x_t | x_<t) averaged over bytes; any path from x_t into p_t turns
the score into a function of the answer, and the gain is not compression.

Legal look-alikes that pass: a token-only prefix-causal tilt (hints read tokens[i-1]; #1514), a learned hashed
bigram embedding over input tokens, a previous-token gate multiplied by a `input_ids != BOS` mask, target
indices used only to gather the gold probability from a full-vocabulary distribution, and code behind an
environment switch that is off by default (reported as info with the switch named).

Confidence. Direct data flow (target label reaching the gate, key or optimised loss) is high; the BOS-mask check
and C-helper hash keys are pattern matches (medium, NEEDS_REVIEW). Context-only SLOT (#1336) is unruled and
reported as warn.

With --gauntlet, the flip test: the run forks at its first loss on validation targets, and the child goes on
with the random validation stream re-drawn from position k; the per-token losses both evaluations computed
(captured in the sandbox) must be equal at every position before k. The first position that differs fails this
rule: just before k, the scoring looked ahead (a peek at later tokens, SLOT-style optimisation on the scored
window); far before k, the scoring model was adapted on later validation tokens first. When the run took a
loss with gradients on validation targets before the first score that changed, C3_SCORE_FIRST judges it.
How to verify by hand. Open the cited lines in the decoded code; follow the named variable back to the target
tensor (usually `y = chunk[1:]`). The dynamic check is #1240's perturbation test: flip one target and see whether
the NLL of that position changes beyond model noise.""",
    citations=(issue(1017), pr(1240), pr(1420), pr(1967), pr(1785), pr(779), pr(1797), issue(1988), pr(1336)),
    check=check,
    kind="code",
)
