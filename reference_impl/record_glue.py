"""Helpers for wrapping a real record's evaluation code as a conformance target.

Why: a reviewer certifies the record's *own* eval functions, not a re-implementation, but the record's
script also trains, loads shards and needs a GPU. These helpers let a small wrapper (a) compile only the
named top-level definitions of the (decoded) script, (b) replace the neural network by a named stand-in
that is causal and normalized by construction, so any failure belongs to the eval mechanism around it, and
(c) read per-position values a record only accumulates (a loss sum, one BPB) by tapping the numpy or torch
function that receives them.
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
import types
from collections.abc import Iterable
from typing import Any

import numpy as np


def load_definitions(source: str, names: Iterable[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute only the top-level functions, classes and simple assignments called `names` from `source`
    into `namespace` (which supplies the imports they use). KeyError names what is missing. The compiled
    selection is cached: a wrapper may rebuild its namespace on every call (to re-read the environment)."""
    exec(_compiled(source, tuple(names)), namespace)  # noqa: S102
    return namespace


@functools.lru_cache(maxsize=32)
def _compiled(source: str, wanted: tuple[str, ...]):
    picked, found = [], set()
    for node in _top_level(source, wanted):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in wanted:
            picked.append(node)
            found.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            hit = {t.id for t in targets if isinstance(t, ast.Name)} & set(wanted)
            if hit:
                picked.append(node)
                found |= hit
    missing = [n for n in wanted if n not in found]
    if missing:
        raise KeyError(f"not defined at the top level of the record: {', '.join(missing)}")
    return compile(ast.Module(body=picked, type_ignores=[]), "<record>", "exec")


_HEADER = re.compile(r"^(?:@|def |async def |class |[A-Za-z_]\w*\s*[:=])")


def _top_level(source: str, wanted: tuple[str, ...]) -> list[ast.stmt]:
    """Top-level statements of `source`. Records written for a newer Python (3.12 f-strings nesting the same
    quotes) do not parse here as a whole, so then each top-level block that mentions a wanted name is parsed
    on its own: the wrapper needs only those."""
    try:
        return ast.parse(source).body
    except SyntaxError:
        pass
    lines = source.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _HEADER.match(line)
              and not (i and lines[i - 1].startswith("@"))] + [len(lines)]
    nodes: list[ast.stmt] = []
    for a, b in itertools.pairwise(starts):
        block = "".join(lines[a:b])
        if any(name in block for name in wanted):
            try:
                nodes += ast.parse(block).body
            except SyntaxError:
                continue  # an unparsable block the wrapper did not ask for, or a KeyError below
    return nodes


class Tap(types.ModuleType):
    """A stand-in for a module (numpy, torch.nn.functional) that records (first argument, result) of the
    named functions each time the record calls them, uses `replace` for others (e.g. torch.compile -> the
    identity on a CPU), and otherwise behaves as the module."""

    def __init__(self, module: types.ModuleType, names: Iterable[str] = (), replace: dict | None = None):
        super().__init__(module.__name__)
        self._module, self.calls, self._replace = module, {n: [] for n in names}, dict(replace or {})

    def __getattr__(self, attr: str) -> Any:
        if attr in self._replace:
            return self._replace[attr]
        value = getattr(self._module, attr)
        if attr not in self.calls:
            return value
        log = self.calls[attr]

        def tapped(*args, **kwargs):
            out = value(*args, **kwargs)
            log.append((args[0] if args else None, out))
            return out

        return tapped


def bigram_logprobs(vocab_size: int, seed: int = 0, rank: int = 8) -> np.ndarray:
    """[V, V] log p(next | previous) of a fixed low-rank bigram: the numpy stand-in for a neural model
    (causal and normalized by construction)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(vocab_size, rank))
    b = rng.normal(size=(rank, vocab_size))
    logits = a @ b / np.sqrt(rank)
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def make_standin_lm(vocab_size: int, dim: int = 16, seed: int = 0):
    """A torch stand-in for a record's GPT: bigram logits through a small embedding, trainable (so test-time
    training moves it), with the `forward_logits(x)` and `forward(x, y) -> loss` the records call."""
    import torch
    from torch import nn

    class StandinLM(nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            self.emb = nn.Parameter(torch.randn(vocab_size, dim, generator=g, dtype=torch.float64) * 0.5)
            self.out = nn.Parameter(torch.randn(dim, vocab_size, generator=g, dtype=torch.float64) * 0.5)

        def forward_logits(self, x):
            return self.emb[x] @ self.out  # row i depends on x[:, i] only: causal

        def forward(self, x, y):
            logits = self.forward_logits(x)
            return nn.functional.cross_entropy(logits.reshape(-1, vocab_size).float(), y.reshape(-1))

    return StandinLM()
