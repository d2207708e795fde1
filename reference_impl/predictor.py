"""The two predictor shapes the conformance harness understands.

(a) A streaming predictor emits a full distribution over the vocabulary for the next position from
    tokens already observed, then is told the realised token. Vectorised implementations may also
    expose `stream_logprobs(tokens)`, which must equal running the streaming protocol token by token.
(b) A gold-only scorer returns only log p(tokens[t] | tokens[:t]) for t = 1..len-1: the shape every
    real submission's evaluation has. The harness turns it into distributions by substitution.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class StreamingPredictor(Protocol):
    vocab_size: int

    def next_logprobs(self) -> np.ndarray:
        """Natural-log probabilities (float64, shape [vocab_size]) for the next token."""
        ...

    def observe(self, token: int) -> None:
        """Reveal the token that was just scored; state may now use it."""
        ...


@runtime_checkable
class BatchPredictor(Protocol):
    vocab_size: int

    def stream_logprobs(self, tokens: np.ndarray) -> np.ndarray:
        """Row t (t = 0..len-1) is the distribution for tokens[t] given tokens[:t]; shape [len, vocab]."""
        ...


GoldScorer = Callable[[np.ndarray], np.ndarray]


def run_stream(predictor: StreamingPredictor, tokens: np.ndarray) -> np.ndarray:
    """Drive a streaming predictor over `tokens`; return the [len, vocab] matrix of log-probabilities."""
    out = np.empty((len(tokens), predictor.vocab_size), dtype=np.float64)
    for t, tok in enumerate(tokens):
        out[t] = predictor.next_logprobs()
        predictor.observe(int(tok))
    return out


def gold_logprobs(matrix: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Pick log p(tokens[t]) from a [len, vocab] matrix."""
    return matrix[np.arange(len(tokens)), np.asarray(tokens, dtype=np.int64)]
