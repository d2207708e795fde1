"""The trained GPT as a streaming predictor (reference_impl/predictor.py protocol), so the conformance
harness can certify it like any other scorer.

Causal by construction: the distribution for position t is computed from a window of tokens that ends at
t-1, and the window's start depends only on t (never on tokens at or after t). The window schedule is
the V3 sliding-window one: a BOS token is prepended as fixed conditioning (the model was trained on
BOS-delimited documents and cannot predict from an empty context), and position t is predicted inside
the window that V3 would use to score it. `stream_logprobs` runs each window once; `next_logprobs`
runs the window prefix up to t. Causal attention makes the two equal up to float rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from .evaluate import autocast_for


def window_start(t: int, seq_len: int, stride: int) -> int:
    """Start (in BOS-prefixed coordinates) of the V3 window that scores target t."""
    if t < seq_len:
        return 0
    return ((t - (seq_len - stride)) // stride) * stride


class NeuralPredictor:
    """Full-vocabulary natural-log probabilities from a GPT exposing `forward_logits`."""

    def __init__(self, model, seq_len: int, stride: int | None = None, bos_id: int = 1, device="cpu"):
        self.model = model.eval()
        self.vocab_size = int(model.cfg.vocab_size)
        self.seq_len = int(seq_len)
        self.stride = int(stride or seq_len)
        if not 0 < self.stride <= self.seq_len:
            raise ValueError("need 0 < stride <= seq_len")
        self.bos_id, self.device = int(bos_id), device
        self.history: list[int] = [self.bos_id]

    def reset(self) -> None:
        self.history = [self.bos_id]

    @torch.no_grad()
    def _logprobs(self, ids: list[int]) -> torch.Tensor:
        x = torch.tensor([ids], dtype=torch.int64, device=self.device)
        with autocast_for(self.device):
            logits = self.model.forward_logits(x)
        return torch.log_softmax(logits[0].double(), dim=-1)

    def next_logprobs(self) -> np.ndarray:
        t = len(self.history) - 1
        ws = window_start(t, self.seq_len, self.stride)
        return self._logprobs(self.history[ws : t + 1])[-1].cpu().numpy()

    def observe(self, token: int) -> None:
        self.history.append(int(token))

    def stream_logprobs(self, tokens) -> np.ndarray:
        """Row t is the distribution for tokens[t] given tokens[:t]; one forward per V3 window."""
        tokens = [int(t) for t in np.asarray(tokens)]
        z = [self.bos_id] + tokens
        n = len(tokens)
        out = np.empty((n, self.vocab_size), dtype=np.float64)
        t = 0
        while t < n:
            ws = window_start(t, self.seq_len, self.stride)
            end = min(ws + self.seq_len, n)  # targets [t, end) share this window
            lp = self._logprobs(z[ws:end]).cpu().numpy()
            out[t:end] = lp[t - ws : end - ws]
            t = end
        return out


def make_tiny_gpt(vocab_size: int, seq_len: int = 32, stride: int = 8, seed: int = 0) -> NeuralPredictor:
    """A small randomly initialised reference GPT as a predictor, in float64 so that the streaming and
    windowed paths agree to ~1e-15 (the harness compares them). For `auditor conform catalog:gpt-tiny`."""
    from .model import GPT, GPTConfig

    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab_size, num_layers=2, model_dim=32, num_heads=4, num_kv_heads=2)).double()
    return NeuralPredictor(model, seq_len=seq_len, stride=stride)
