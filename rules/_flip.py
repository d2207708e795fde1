"""The gauntlet's flip test, read once for the two rules it informs (C1_CAUSAL, C3_SCORE_FIRST).

The run forked at its first loss on validation targets; run B saw the stream re-drawn from position k.
A score of a position before k that changed means tokens at or after k reached it. Which condition that
breaks follows from what the run did before the first captured call that differs:
  * it took a loss on validation targets with gradients on (test-time training, pre-quantisation
    fine-tuning, SLOT's per-window optimisation): an update used tokens that were not yet scored —
    C3 (had every update used scored tokens only, no score before k could change);
  * otherwise the scoring itself used later tokens — C1 (a peek at t+1, a lookahead across the window).
"""

from __future__ import annotations

from typing import Any

from auditor.core.model import Evidence


def complete_flip(ctx) -> dict[str, Any] | None:
    """The flip result when the test compared something, else None."""
    obs = ctx.observations.get("gauntlet")
    flip = getattr(obs, "flip", None) if obs is not None else None
    if not flip or flip.get("incomplete") or not flip.get("compared"):
        return None
    return flip


def trained_before_scoring(flip: dict[str, Any]) -> bool:
    """A loss with gradients on validation targets came no later than the first captured call that
    differs (or the fork itself was such a loss)."""
    fork = flip.get("fork") or {}
    trained = fork.get("val_training")
    if fork.get("grad"):
        return True
    if not trained:
        return False
    first = flip.get("first_diff_call")
    return first is None or int(trained.get("captured_calls_before") or 0) <= int(first.get("call") or 0)


def fork_words(flip: dict[str, Any]) -> str:
    fork = flip.get("fork") or {}
    if not fork:
        return ""
    words = (f"the run forked at its first loss on validation targets (stream position {fork.get('position', 0):,}, "
             f"{fork.get('phase')} phase, gradients {'on' if fork.get('grad') else 'off'})")
    trained = fork.get("val_training")
    if trained and not fork.get("grad"):
        words += (f" and later took a loss with gradients on validation targets (stream position "
                  f"{trained.get('position', 0):,}, {trained.get('phase')} phase)")
    return words


def evalue_conditions(ctx, claimed: bool = False) -> tuple[list[str], str]:
    """Which conditions a failed random-stream e-value points to, and why: when the failed number is a
    captured pass (`claimed`, or the printed line is a captured pass's mean), the flip test found every
    score before k unchanged and no position was scored twice, only normalization is left (C2: a hashed
    or byte-level mixture read at the gold token); otherwise any of C1-C4."""
    flip = complete_flip(ctx)
    obs = ctx.observations.get("gauntlet")
    cap = getattr(obs, "capture", None) if obs is not None else None
    cov = (cap or {}).get("coverage") or {}
    claim = (cap or {}).get("claim") or {}
    seen = claimed or bool(claim.get("matches"))  # the flip test compared the scoring behind the failed number
    if seen and flip is not None and flip.get("first_diff") is None and cov and not cov.get("scored_twice"):
        return ["C2"], ("the flip test found no score that depends on later tokens and no position was scored "
                        "twice, so the distribution it scores with is not normalized (C2)")
    return ["C1", "C2", "C3", "C4"], ("it leaks the target, is not normalized, adapts on tokens before scoring them, "
                                      "or rescores (C1-C4)")


def flip_evidence(flip: dict[str, Any]) -> list[Evidence]:
    first = flip.get("first_diff")
    return [Evidence("(gauntlet flip test)", None, f"k={flip['k']}" + (f" first_diff={first}" if first is not None else ""))]


def change_words(flip: dict[str, Any]) -> str:
    """`first at 1,234 (48 of 32,768 compared positions in captured pass 2, max |diff| 0.0018 nats)`."""
    p = flip["passes"][flip["first_pass"]]
    return (f"first at {flip['first_diff']:,} ({p['differing']:,} of {p['compared']:,} compared positions in "
            f"captured pass {flip['first_pass']}, max |diff| {p['max_abs_diff']:.3g} nats)")
