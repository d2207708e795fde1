"""Throughput of the reference trainer and evaluator, each against a plain implementation in one run.

* train: tokens/s of the reference GPT's training step (SDPA attention, grouped-query K/V) versus the
  same network with a plain attention (explicit masked softmax over full multi-head K/V).
* eval: tokens/s of batched V3 sliding-window scoring versus scoring one window at a time.

Usage: python benchmarks/bench_train.py [--dim 128 --layers 3 --seq-len 256 --steps 8 --threads N]
Prints absolute tokens/s and ratios; numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from reference_impl.evaluate import eval_sliding
from reference_impl.model import GPT, CausalSelfAttention, GPTConfig, apply_rotary


def plain_attention_forward(self, x):
    """Textbook attention: K/V repeated to all heads up front, explicit mask and softmax."""
    b, t, d = x.shape
    q = self.c_q(x).reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)
    k = self.c_k(x).reshape(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
    v = self.c_v(x).reshape(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
    q, k = F.rms_norm(q, (self.head_dim,)), F.rms_norm(k, (self.head_dim,))
    cos, sin = self.rotary(t, x.device, q.dtype)
    q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    q = q * self.q_gain.to(q.dtype)[None, :, None, None]
    rep = self.num_heads // self.num_kv_heads
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    att = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
    mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))


def train_tokens_per_s(model, batch, seq_len, steps, vocab):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    data = torch.randint(4, vocab, (steps + 1, batch, seq_len + 1), generator=gen)
    model.train()
    for i in range(steps + 1):
        if i == 1:  # first step warms allocators and is not timed
            t0 = time.perf_counter()
        loss = model(data[i, :, :-1], data[i, :, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * batch * seq_len / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--eval-tokens", type=int, default=8192)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = GPTConfig(vocab_size=a.vocab, num_layers=a.layers, model_dim=a.dim, num_heads=4, num_kv_heads=2)
    torch.manual_seed(0)
    ref = GPT(cfg)
    plain = GPT(cfg)
    plain.load_state_dict(ref.state_dict())
    for block in plain.blocks:
        block.attn.forward = plain_attention_forward.__get__(block.attn, CausalSelfAttention)
    print(f"config: d={a.dim} layers={a.layers} vocab={a.vocab} seq_len={a.seq_len} batch={a.batch} "
          f"threads={torch.get_num_threads()}")
    tr_ref = train_tokens_per_s(ref, a.batch, a.seq_len, a.steps, a.vocab)
    tr_plain = train_tokens_per_s(plain, a.batch, a.seq_len, a.steps, a.vocab)
    print(f"train tok/s: reference {tr_ref:,.0f}  plain-attention {tr_plain:,.0f}  ratio {tr_ref / tr_plain:.2f}x")

    rng = np.random.default_rng(0)
    val = rng.integers(4, a.vocab, size=a.eval_tokens + 1)
    luts = (np.ones(a.vocab, np.int16), np.zeros(a.vocab, bool), np.zeros(a.vocab, bool))
    ref.eval()
    batched = eval_sliding(ref, val, a.seq_len, a.stride, luts, batch_windows=32)
    single = eval_sliding(ref, val, a.seq_len, a.stride, luts, batch_windows=1)
    assert abs(batched.loss_sum - single.loss_sum) <= 1e-6 * abs(single.loss_sum)
    ev_b, ev_s = batched.tokens / batched.elapsed_s, single.tokens / single.elapsed_s
    print(f"eval (V3 sliding, stride {a.stride}) scored tok/s: batched {ev_b:,.0f}  one-window {ev_s:,.0f}  "
          f"ratio {ev_b / ev_s:.2f}x")


if __name__ == "__main__":
    main()
