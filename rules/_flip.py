"""The gauntlet's flip test, read once for the two rules it informs (C1_CAUSAL, C3_SCORE_FIRST).

The run forked at its first loss on validation targets; run B saw the stream re-drawn from position k.
A score of a position before k that changed means tokens at or after k reached it. Which condition that
breaks follows from where the fork happened:
  * the first loss on validation targets had gradients on and no validation position had been scored
    yet: the model was trained on validation tokens before they were scored — C3 (pre-evaluation or
    pre-quantisation TTT);
  * otherwise the scoring itself used later tokens — C1 (a peek at t+1, SLOT on the scored window, an
    update between scoring a chunk's tokens and scoring them again).
"""

from __future__ import annotations

from typing import Any


def complete_flip(ctx) -> dict[str, Any] | None:
    """The flip result when the test compared something, else None."""
    obs = ctx.observations.get("gauntlet")
    flip = getattr(obs, "flip", None) if obs is not None else None
    if not flip or flip.get("incomplete") or not flip.get("compared"):
        return None
    return flip


def trained_before_scoring(flip: dict[str, Any]) -> bool:
    fork = flip.get("fork") or {}
    return bool(fork.get("grad")) and int(fork.get("captured_calls_before") or 0) == 0


def fork_words(flip: dict[str, Any]) -> str:
    fork = flip.get("fork") or {}
    if not fork:
        return ""
    return (f"the run forked at its first loss on validation targets (stream position {fork.get('position', 0):,}, "
            f"{fork.get('phase')} phase, gradients {'on' if fork.get('grad') else 'off'})")
