"""C2_NORMALIZED: every scored probability must come from a distribution normalised over the vocabulary."""

from __future__ import annotations

import re
from statistics import fmean

from auditor.analysis.program import CodeAnalysis
from auditor.facts import claim_tolerance
from rules._code import check_code, graded
from auditor.core.model import Figure, Finding
from auditor.core.contract import Rule
from rules._cite import issue, pr


def _near(ca: CodeAnalysis, kind: str, func) -> list:
    same = [e for e in ca.of(kind) if e.func is func]
    return same or ca.of(kind)[:1]


def _search(ca: CodeAnalysis) -> tuple[list[Finding], str]:
    out: list[Finding] = []
    mixed_ratio_funcs = set()
    spread_funcs = set()  # functions whose spread mixture is already reported
    for ev in ca.of("mix"):
        if not ca.val_context(ev):
            continue
        ops = ev.data.operand_labels or []
        all_ops = frozenset().union(frozenset(), *ops)
        if "ratio" in all_ops and all_ops & {"gold", "lookup"}:
            ratios = _near(ca, "ratio", ev.func)
            mixed_ratio_funcs.add(ev.func)
            denom = ratios[0].data.denom if ratios else "?"
            out.append(graded(RULE, ca, ca.reach(ev), "fail", "high",
                              f"in {ca.where(ev.func)} the gold-token probability is mixed with a count ratio "
                              f"(denominator `{denom}`) that is only computed for the realised token; the mixture is "
                              f"never normalised over the vocabulary, so its values at the other tokens would not sum "
                              f"to 1 (#886 measured sums of ~277)",
                              [ca.ev_evidence(e) for e in ratios[:1]] + [ca.ev_evidence(ev)], pattern="gold_only_mix"))
        elif "perbyte" in all_ops:
            spreads = _near(ca, "perbyte", ev.func)
            spread_funcs.add(ev.func)
            out.append(graded(RULE, ca, ca.reach(ev), "fail", "high",
                              f"in {ca.where(ev.func)} a token log-probability is spread over its bytes "
                              f"(`/ {spreads[0].data.denom if spreads else '?'}`) and mixed with a byte-level "
                              f"model; the result is not a normalised distribution over the token vocabulary "
                              f"(#1872 PPM-D class, excluded in #1902)",
                              [ca.ev_evidence(e) for e in spreads[:1]] + [ca.ev_evidence(ev)], pattern="byte_mixture"))
    for ev in ca.of("score"):
        if "perbyte" in ev.labels and ev.func not in spread_funcs and not ev.data.via and ca.val_context(ev):
            # the spread value reaches the score through a mixture written out by hand (max + log1p(exp(..)))
            spreads = _near(ca, "perbyte", ev.func)
            spread_funcs.add(ev.func)
            out.append(graded(RULE, ca, ca.reach(ev), "fail", "high",
                              f"the score accumulated in {ca.where(ev.func)} is built from a token log-probability "
                              f"spread over its bytes (`/ {spreads[0].data.denom if spreads else '?'}`): per-byte "
                              f"scores of that kind are not a normalised distribution over the token vocabulary "
                              f"(#1872 PPM-D class, excluded in #1902)",
                              [ca.ev_evidence(e) for e in spreads[:1]] + [ca.ev_evidence(ev)], pattern="byte_spread_score"))
    for ev in ca.of("score"):
        if "ratio" in ev.labels and ev.func not in mixed_ratio_funcs and not ev.data.via:
            ratios = _near(ca, "ratio", ev.func)
            out.append(graded(RULE, ca, ca.reach(ev), "fail", "medium",
                              f"the score accumulated in {ca.where(ev.func)} uses a count ratio (denominator "
                              f"`{ratios[0].data.denom if ratios else '?'}`) that is not a sum over the "
                              f"vocabulary (#972/#978 wrong denominators). Question for the author: do these "
                              f"probabilities sum to 1 over all tokens at a position? Summing them numerically at a "
                              f"few positions settles it",
                              [ca.ev_evidence(e) for e in ratios[:1]] + [ca.ev_evidence(ev)], pattern="denominator"))
    return out, ""

LOOKED_FOR = ("gold-only mixture with a count ratio, per-byte spreading of token probabilities "
              "or non-vocabulary denominator")


def _decimals(text: str, value: float) -> int:
    m = re.search(re.escape(repr(value)).replace(r"\.", r"\.") + r"\d*", text)
    digits = (m.group(0) if m else repr(value)).split(".")
    return len(digits[1]) if len(digits) == 2 else 0


def claimed_mixture(ctx) -> list[Finding]:
    """Log side: the claimed val_bpb is the mean of the byte-mixture figures the logs print (one per log,
    the last), so the score the submission reports is the byte mixture's, whatever the code looks like."""
    claim = ctx.submission.meta.val_bpb
    by_log: dict[str, Figure] = {}
    for fig in ctx.submission.mixture_scores:
        by_log[fig.path] = fig  # the last mixture line of each log
    if claim is None or not by_log:
        return []
    figs, seen = [], set()
    for k in sorted(by_log):  # a log that repeats another's line (a copy of one seed's log) counts once
        if (by_log[k].value, by_log[k].text) not in seen:
            seen.add((by_log[k].value, by_log[k].text))
            figs.append(by_log[k])
    mean = fmean(float(f.value) for f in figs)
    coarsest = min(_decimals(f.text, float(f.value)) for f in figs)
    if abs(mean - claim) > claim_tolerance(claim) + 0.5 * 10.0 ** -coarsest:
        return []
    return [RULE.finding("fail", f"the claimed val_bpb {claim} is the mean ({mean:.8f}) of the byte-level mixture "
                                 f"figures the {len(figs)} log(s) print (`{figs[0].text[:80]}`): a byte model mixed "
                                 f"with token probabilities spread over bytes is not a distribution over the "
                                 f"vocabulary, so the claimed score is not a valid val_bpb (#1872, #1902)",
                         [f.evidence() for f in figs[:5]], pattern="claimed_byte_mixture",
                         mixture_mean=round(mean, 8))]


ENTROPY_FLOOR_BPB = 0.5  # #959: claims below this on FineWeb are the red flag of an unnormalized cache


def claimed_below_floor(ctx) -> list[Finding]:
    """Log side: the claim sits below the entropy floor and far below the run's own neural evaluation.

    No normalized predictor reaches under 0.5 bits per byte on FineWeb (#959); when the same run's neural
    final line scores more than twice the claim, the difference comes from a cache or mixture evaluated
    only at the realised token, whose 'probabilities' do not sum to 1 over the vocabulary (#886: ~277).
    """
    claim = ctx.submission.meta.val_bpb
    if claim is None or not 0 < claim < ENTROPY_FLOOR_BPB or ctx.options.val_manifest is not None:
        return []
    pairs = []
    for run in ctx.facts.distinct_runs:
        finals = [p for p in run.phases if p.is_final]
        low = min((p for p in finals if p.val_bpb < ENTROPY_FLOOR_BPB), key=lambda p: abs(p.val_bpb - claim),
                  default=None)
        neural = min((p for p in finals if p.val_bpb >= 2 * claim), key=lambda p: p.val_bpb, default=None)
        if low is not None and neural is not None:
            pairs.append((low, neural))
    if not pairs:
        return []
    low, neural = pairs[0]
    return [RULE.finding("fail", f"the claimed val_bpb {claim} is below the entropy floor ({ENTROPY_FLOOR_BPB} "
                                 f"bits per byte, #959) and comes from the `{low.label}` evaluation, while the same "
                                 f"run's neural `{neural.label}` scores {neural.val_bpb}: a gap this size comes from a "
                                 f"cache or mixture scored only at the realised token, which is not a distribution "
                                 f"over the vocabulary (#886 measured sums of ~277)",
                         [p.evidence() for pair in pairs[:3] for p in pair], pattern="below_entropy_floor",
                         runs=len(pairs))]


def check(ctx) -> list[Finding]:
    return check_code(ctx, RULE, _search, LOOKED_FOR) + claimed_mixture(ctx) + claimed_below_floor(ctx)


RULE = Rule(
    id="C2_NORMALIZED",
    title="Normalised distribution over the vocabulary",
    summary="Scores must be -log of a probability from a distribution that sums to 1 over the token vocabulary.",
    explanation="""\
What is checked. Data flow in the decoded code looks for:
  * a mixture (a*p + (1-a)*q, lerp, logaddexp) that combines the gold-token probability with a count ratio whose
    denominator is not a sum over the vocabulary, e.g. full_counts[hash(ctx, y)] / ctx_counts[hash(ctx)] (#779,
    #886: "only computed for the correct token");
  * a token log-probability divided by the token's byte count and mixed with a byte-level model (PPM-D mixtures,
    #1872; excluded as a class in #1902);
  * a score built on a count ratio with such a denominator even without a mixture (#972, corrected in #978).

Why it breaks the metric. Bits per byte is a code length only when p_t is a probability distribution over the
alphabet it is scored on. A ratio evaluated only at the realised token can exceed the mass any normalised
model could give it; with one bucket it is exactly 1 and BPB goes to 0 (#886).

Legal look-alikes that pass: a full-softmax cross-entropy; an n-gram distribution normalised by its row sum and
mixed with the softmax before the gold token is gathered; the closed-form tilt p*exp(b*[t==hint])/Z with
Z = 1 + p(hint)(e^b - 1) (#1514); monotone logit transforms.

Confidence. A mixture of a gold-only ratio is direct data flow (high). A ratio reaching the score without a
mixture is medium: the denominator could be a normaliser under another name.

How to verify by hand. At a few positions compute the mixed value for every token in the vocabulary and sum
it; a sum far from 1 confirms the finding (#886 reported ~277 and ~410).""",
    citations=(issue(1017), pr(779), pr(886), pr(978), pr(1872), pr(1902), pr(1905)),
    check=check,
    kind="code",
)
