"""NO_TRAIN_DATA_AT_EVAL: evaluation may not read the training shards (unless their bits are paid for)."""

from __future__ import annotations

import re

from auditor.analysis.program import CodeAnalysis
from rules._code import check_code, graded
from auditor.core.model import Evidence, Finding
from auditor.core.contract import Rule
from rules._cite import README_RULES, issue, pr

_EVAL_NAME = re.compile(r"^_?(eval|score|evaluate)|_eval(_|$)|(^|_)ttt(_|$)|eval_val|sliding", re.I)
_CALIB = re.compile(r"gptq|calib|hessian|quant", re.I)


def dynamic_findings(ctx) -> list[Finding]:
    """Training shards the gauntlet's sandbox saw opened after the model was read back (evaluation)."""
    obs = ctx.observations.get("gauntlet")
    paths = obs.train_shards_at_eval if obs is not None else []
    if not paths:
        return []
    return [RULE.finding("fail", f"the sandboxed run opened {len(paths)} training shard(s) after reading back its "
                                 f"serialized model, i.e. during evaluation: "
                                 f"{', '.join(p.rsplit('/', 1)[-1] for p in paths[:5])}",
                         [Evidence("(gauntlet run)", None, p) for p in paths[:5]],
                         paths=paths[:20], phase="eval", dynamic=True)]


def check(ctx) -> list[Finding]:
    return static_findings(ctx) + dynamic_findings(ctx)


def _search(ca: CodeAnalysis) -> tuple[list[Finding], str]:
    out: list[Finding] = []
    reads = [e for e in ca.of("train_read") if "train" in e.labels]
    own_val_scores = {e.func for e in ca.of("score") if "val" in e.labels and not e.data.via}
    train_updates = [e for e in ca.of("update") if "val" not in e.labels and e.labels & {"target", "train"}
                     and e.data.how in ("backward", "autograd.grad")]
    eval_funcs = {f for f in ca.index.funcs if f.name != "<module>" and
                  (f in own_val_scores or _EVAL_NAME.search(f.name))
                  and not any(u.func is f for u in train_updates)}
    seen = set()
    by_func: dict = {}
    for r in reads:
        if r.func in eval_funcs:
            by_func.setdefault(r.func, []).append(r)
            seen.add((r.path, r.line))
    for func, rs in by_func.items():
        rs = sorted({(r.line): r for r in rs}.values(), key=lambda e: e.line)
        r = rs[0]
        via = f" via {r.data.via_name}()" if r.data.via else ""
        out.append(graded(RULE, ca, ca.reach(r), "fail", "high",
                          f"the evaluation function {ca.where(func)} reads training data (`{r.data.how}`"
                          f"{via}, line {r.line}); the README forbids training-data access during evaluation "
                          f"unless those bits are inside the 16 MB artifact",
                          [ca.ev_evidence(e) for e in rs[:3]], pattern="train_read_in_eval"))
    # after the training loop, in the driver
    for r in reads:
        if r.func in eval_funcs or (r.path, r.line) in seen:
            continue
        mine = [u for u in train_updates if u.func is r.func]
        if not mine:
            continue
        end = max(u.loops[0].end if u.loops else u.line for u in mine)
        if r.line <= end or any(r.in_loop(u.loops[0]) for u in mine if u.loops):
            continue
        seen.add((r.path, r.line))
        scores = [s for s in ca.of("score") if s.func is r.func and "val" in s.labels and s.line > end]
        started = [s for s in scores if s.line < r.line]
        if any(s.line > r.line for s in scores):
            started = []  # read between a diagnostic evaluation and the scored one: post-training work (GPTQ)
        name = f"{r.data.via_name or ''} {r.data.how or ''} {r.text}"
        if started:
            out.append(graded(RULE, ca, ca.reach(r), "warn", "medium",
                              f"{ca.where(r.func)} reads training data (line {r.line}) after evaluation of the "
                              f"validation set has started (line {started[0].line}). Question for the author: is "
                              f"this read part of training (inside the 600 s) or of evaluation?",
                              [ca.ev_evidence(started[0]), ca.ev_evidence(r)], pattern="train_read_after_eval_start"))
        else:
            reserve = sorted(v for v in ca.envm.defaults if "RESERVE" in v)
            note = (f"a reserve is configured ({', '.join(ca.envm.describe(v) for v in reserve)})" if reserve
                    else "no time reserve for it was found")
            kind = "calibration " if _CALIB.search(name) else ""
            out.append(graded(RULE, ca, ca.reach(r), "info", "medium",
                              f"{ca.where(r.func)} reads training data for {kind}work after the training loop "
                              f"(line {r.line}); this is legal only inside the 600 s training budget (GPTQ after the "
                              f"window was ruled out for #535/#569/#593/#609); {note}. TRAIN_TIME checks the clock",
                              [ca.ev_evidence(r)], pattern="train_read_after_training"))
    return out, ""

LOOKED_FOR = "read of training shards inside an evaluation function"


def static_findings(ctx) -> list[Finding]:
    return check_code(ctx, RULE, _search, LOOKED_FOR)


RULE = Rule(
    id="NO_TRAIN_DATA_AT_EVAL",
    title="No training data during evaluation",
    summary="Evaluation code may not open the training shards.",
    explanation="""\
What is checked. Values derived from the training shard paths (train_files, fineweb_train_*.bin, the training
loader) are traced to reads (np.fromfile, load_data_shard, glob, open, loader.next_batch). A read inside an
evaluation function (one that accumulates the validation score, or is named eval*/score*/ttt*) is a fail. A read
in the driver after the training loop is info when it precedes evaluation (usually GPTQ calibration, legal only
inside the 600 s; TRAIN_TIME checks the clock) and NEEDS_REVIEW when it happens after evaluation started.

Why it matters. README: "you aren't allowed to access any training data during evaluation, unless you pay for
those bits in the <16MB limit." Prefilling caches from all training tokens at eval (#925, #945) adds unpaid
capacity.

Legal look-alikes that pass: periodic validation inside the training loop, GPTQ calibration on training batches
within the training budget (GPTQ_RESERVE_SECONDS), statistics computed during training and stored in the artifact.

How to verify by hand. Follow the cited read back to the path it opens and check where in the run (before or
after `stopping_early`/the eval timer) it happens.""",
    citations=(README_RULES, issue(1017), pr(925), pr(945), pr(535)),
    check=check,
    kind="code",
)
