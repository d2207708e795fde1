"""EVALUE_RANDOM_STREAM: the submission's own evaluation, run on i.i.d. uniform tokens, must not beat
the uniform distribution by more than chance allows (the gauntlet; dynamic, opt-in with --gauntlet).

This rule also carries the gauntlet's dynamic NO_NETWORK and NO_TRAIN_DATA_AT_EVAL findings (blocked
network attempts and training-shard reads seen by the sandbox's audit hook, by phase).
"""

from __future__ import annotations

from auditor.model import Finding
from rules.base import AuditContext, Rule, issue, pr

EXPLANATION = """
With --gauntlet the auditor runs the submission's own script (the decoded payload of a self-extracting
stub included) in a sandbox: a private copy of the folder in a temporary directory, run as an
unprivileged user without network (network namespace where available, else an audit hook that blocks
Python sockets), under CPU, memory, file-size and process limits and a wall-clock timeout. On a CPU,
shims map CUDA, torch.compile, FlashAttention and torch.distributed to CPU equivalents; what cannot
run on a CPU (triton kernels, custom CUDA ops) is reported as `needs GPU`.

The data are synthetic: a tokenizer with the vocabulary size the script expects, training shards of
English-like text, and a validation stream of i.i.d. uniformly random tokens over the non-special ids
(V' of them), with BOS tokens only at fixed positions. For any causal, normalized predictor — however
adaptive: caches, test-time training, mixtures — the likelihood ratio against the uniform distribution
is a non-negative supermartingale, so by Ville's inequality its total log-likelihood advantage exceeds
a nats with probability at most e^-a. The rule reads the run's own final val_loss lines and computes
A = N_random ln V' - N val_loss (with the printed value's rounding counted against the test). A > a
with a = ln(k/1e-6) for k tested lines fails: the evaluation leaks the target (C1), is not a
normalized distribution (C2), adapts on tokens before scoring them (C3) or scores tokens twice (C4).
The test needs no knowledge of how the evaluation works, and its false-alarm probability is at most
1e-6. A control run of the reference evaluator on the same stream is shown for comparison.

Without --gauntlet nothing is executed and this rule reports `not run`. When the run cannot finish
(needs a GPU, crashes, or is stopped by the sandbox's limits) the stage table says where and why.
"""


def attach_sections(result, ctx: AuditContext) -> None:
    """Post-hook: copy the gauntlet's stage table into the review (JSON section + Markdown block)."""
    gauntlet = ctx.cache.get("gauntlet")
    if gauntlet is None or "gauntlet" in result.sections:
        return
    from auditor.sandbox.gauntlet import render_markdown

    result.sections["gauntlet"] = gauntlet.to_json()
    result.sections.setdefault("extra_markdown", []).append(render_markdown(gauntlet))
    gpu = [s.name for s in gauntlet.stages if s.status == "needs_gpu"]
    if gpu:
        result.sections.setdefault("not_checked", []).append(
            "gauntlet stages that need a GPU (" + ", ".join(gpu) + "); rerun with --gauntlet --device cuda")


def _run(ctx: AuditContext):
    from auditor.sandbox.gauntlet import run_gauntlet

    opts = ctx.options
    return run_gauntlet(ctx.submission, device=opts.device or "cpu",
                        timeout=float(opts.extra.get("gauntlet_timeout", 120.0)),
                        control=bool(opts.extra.get("gauntlet_control", True)))


def check(ctx: AuditContext) -> list[Finding]:
    if not ctx.options.gauntlet:
        return [RULE.finding("info", "not run; use --gauntlet to run the submission's script in the sandbox "
                                     "on a random validation stream")]
    hooks = ctx.options.extra.setdefault("post_hooks", [])
    if attach_sections not in hooks:
        hooks.append(attach_sections)
    result = ctx.memo("gauntlet", lambda: _run(ctx))
    return list(result.findings)


RULE = Rule(
    id="EVALUE_RANDOM_STREAM",
    title="Evaluation cannot beat chance on random tokens (sandboxed run)",
    summary="The script's own eval on i.i.d. uniform tokens beats ln V' by more than Ville's bound allows",
    explanation=EXPLANATION,
    citations=(issue(1017), pr(779), pr(982), pr(1902)),
    check=check,
    kind="dynamic",
)
