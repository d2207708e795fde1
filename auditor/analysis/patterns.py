"""Patterns that span several events of one function: per-window parameters optimised on the positions
they score (SLOT), and count tables swept forward causally. Read by C1_CAUSAL and C3_SCORE_FIRST."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from auditor.analysis.events import Event

if TYPE_CHECKING:  # the analysis imports causal_sweep from here; no import cycle at run time
    from auditor.analysis.program import CodeAnalysis


def causal_sweep(ev: Event, events: Iterable[Event]) -> Event | None:
    """The per-position write that precedes `ev` (an update) in its innermost loop, if any: in such a
    sweep the output for position i is produced before the state absorbs token i, so the update is
    causal by construction (the n-gram tilt precompute of #1514 has this shape)."""
    if ev.kind != "update" or not ev.loops:
        return None
    inner = ev.loops[-1]
    for w in events:
        if w.kind == "pos_write" and w.func is ev.func and w.in_loop(inner) and w.line < ev.line:
            return w
    return None


# A slice that stops before the scored suffix (`[:, :-stride]`, `[:-n_pred]`) restricts the loss to context
# positions; dropping only the last position (`[:, :-1]`) is the next-token shift, not such a restriction.
_CONTEXT_ONLY = re.compile(r"(context|ctx|prefix|already|scored|causal|past)_?(mask|only|pos|positions|idx)|"
                           r"\[\s*:\s*,\s*:\s*-\s*(?!1\s*\])\w|\[\s*:\s*-\s*(?!1\s*\])\w+\s*\]", re.I)


@dataclass
class SlotHit:
    """Per-batch parameters optimised on targets that are scored after the optimisation loop."""

    step: Event
    loop: object
    backward: Event
    scored: Event
    context_only: bool


def find_slots(ca: CodeAnalysis) -> list[SlotHit]:
    cached = getattr(ca, "_slots", None)
    if cached is not None:
        return cached
    hits: list[SlotHit] = []
    seen: set[tuple] = set()
    for st in ca.of("step"):
        if not st.data.fresh or not st.loops:
            continue
        loop = st.loops[-1]
        if (st.path, loop.node_id) in seen:
            continue
        outer_ids = {l.node_id for l in st.loops[:-1]}
        backs = [e for e in ca.of("update") if e.func is st.func and e.data.how in ("backward", "autograd.grad")
                 and e.in_loop(loop) and e.labels & {"target", "gold", "nll"} and ca.val_context(e)]
        if not backs:
            continue
        tvs = {l for b in backs for l in b.labels if l.startswith("tv:")}
        after = [s for s in ca.of("score", "loss") if s.func is st.func and s.line > loop.end
                 and outer_ids <= {l.node_id for l in s.loops}
                 and {l for l in s.labels if l.startswith("tv:")} & tvs]
        if not after:
            continue
        seen.add((st.path, loop.node_id))
        cf = ca.code(st.path)
        lines = cf.text.splitlines()[loop.start - 1: loop.end] if cf is not None and cf.text else []
        ctx_only = any(_CONTEXT_ONLY.search(l) for l in lines)
        preferred = [e for e in after if e.kind == "score"] or after
        hits.append(SlotHit(st, loop, backs[0], sorted(preferred, key=lambda e: e.line)[0], ctx_only))
    ca._slots = hits  # type: ignore[attr-defined]
    return hits
