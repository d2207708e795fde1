"""EVALUE_RANDOM_STREAM: the submission's own evaluation, run on i.i.d. uniform tokens, must not beat
the uniform distribution by more than chance allows (the gauntlet; dynamic, opt-in with --gauntlet).

The engine runs the gauntlet (auditor/sandbox) and hands its observation to this rule; the blocked
network attempts and training-shard reads it saw are judged by NO_NETWORK and NO_TRAIN_DATA_AT_EVAL.
"""

from __future__ import annotations

from rules._flip import evalue_conditions
from auditor.core.model import Evidence, Finding
from auditor.core.contract import Rule, RuleContext
from rules._cite import issue, pr

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

Per-position capture: inside the sandbox the loss primitives the records score with (F.cross_entropy with
any reduction, nll_loss, log_softmax followed by gather) record, while autograd is off in the script's
main, each per-token loss with its target id. The parent locates the targets in the random stream,
splits the calls into passes (a return to the start of the stream once half of it was covered opens a
new pass), keeps one loss per position and pass by a rule blind to the values (most context, later call
on a tie) and applies the same bound to each pass (union bound over the passes). A captured pass over
the bound fails even when the printed line passes (a mixer printing several numbers) or never came.

Without --gauntlet nothing is executed and this rule reports `not run`. When the run cannot finish
(needs a GPU, crashes, or is stopped by the sandbox's limits) the stage table says where and why.
"""


def check(ctx: RuleContext) -> list[Finding]:
    obs = ctx.observations.get("gauntlet")
    if obs is None:
        return [RULE.finding("info", "not run; use --gauntlet to run the submission's script in the sandbox "
                                     "on a random validation stream")]
    cap = getattr(obs, "capture", None)
    cap_ev = cap.get("evalue") if cap and cap.get("located") else None
    if cap_ev is not None and not cap_ev["passed"]:
        return [_captured_failure(cap, cap_ev, *evalue_conditions(ctx, claimed=True))]
    if obs.evalue is None:
        sev = "info" if obs.needs_gpu or obs.cannot_run_here else "warn"  # the auditor's side: not the script's
        return [RULE.finding(sev, f"random-stream test not completed: {obs.incomplete}", completed=False)]
    worst = obs.evalue["worst"]
    ev = [Evidence("(gauntlet run stdout)", worst["line"], f"{worst['label']} val_loss:{worst['val_loss']}")]
    summary = (f"{worst['label']}: val_loss {worst['val_loss']:.6g} on N={worst['n_targets']:,} targets of i.i.d. "
               f"uniform tokens (V'={worst['v_prime']:,}, ln V'={worst['ln_v_prime']:.4f}); advantage "
               f"{worst['advantage_nats']:.1f} nats vs bound {worst['bound_nats']:.1f}")
    data = {k: worst[k] for k in ("label", "val_loss", "n_targets", "n_random", "v_prime", "advantage_nats",
                                  "advantage_per_token", "bound_nats", "p_value", "log10_p_value", "k_tests")}
    if cap_ev is not None:
        data.update(captured_advantage_nats=cap_ev["advantage_nats"], captured_bound_nats=cap_ev["bound_nats"],
                    captured_passes=cap_ev["passes_tested"], captured_located=cap["located"])
    if worst["passed"]:
        return [RULE.finding("pass", f"no causal-normalized violation detectable: {summary}", ev, completed=True,
                             **data)]
    conditions, why = evalue_conditions(ctx)
    return [RULE.finding("fail", f"the evaluation beats the uniform distribution on random tokens by more than any "
                                 f"causal, normalized, single-pass predictor can (p <= 10^{worst['log10_p_value']:.1f}): "
                                 f"{summary}; {why}", ev, completed=True, conditions=conditions, **data)]


def _captured_failure(cap, ev, conditions: list[str], why: str) -> Finding:
    """The per-token losses the script's own evaluation computed (captured in the sandbox, located in
    the stream) beat the uniform distribution by more than any causal, normalized pass can."""
    ps = cap["passes"][ev["pass"]]
    summary = (f"captured pass {ev['pass']} of {ev['passes_tested']}: {ps['scored']:,} positions, mean loss "
               f"{ps['mean_loss']:.6g}; advantage {ev['advantage_nats']:.1f} nats vs bound {ev['bound_nats']:.1f}")
    return RULE.finding("fail", f"the per-token losses the script's own evaluation computed on random tokens beat the "
                                f"uniform distribution by more than any causal, normalized, single-pass predictor can "
                                f"(p <= 10^{ev['log10_p_value']:.1f}): {summary}; {why}",
                        [Evidence("(gauntlet per-position capture)", None, summary)], completed=True,
                        conditions=conditions,
                        source="captured", advantage_nats=ev["advantage_nats"], bound_nats=ev["bound_nats"],
                        captured_pass=ev["pass"], passes_tested=ev["passes_tested"], scored=ps["scored"],
                        log10_p_value=ev["log10_p_value"])


RULE = Rule(
    id="EVALUE_RANDOM_STREAM",
    title="Evaluation cannot beat chance on random tokens (sandboxed run)",
    summary="The script's own eval on i.i.d. uniform tokens beats ln V' by more than Ville's bound allows",
    explanation=EXPLANATION,
    citations=(issue(1017), pr(779), pr(982), pr(1902)),
    check=check,
    kind="dynamic",
)
