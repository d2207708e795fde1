"""A small GPT in the challenge baseline's shape (format_spec §5.1).

RMSNorm, grouped-query attention with rotary embeddings and a learned per-head query gain, relu^2 MLP,
per-block residual mixing with the input embedding, a U-Net skip between the first and second half of
the blocks, tied input/output embeddings and a tanh logit soft-cap. Any size from test-sized (d=64) to
the challenge baseline (9 layers x 512).

Bundled verbatim into the single-file training script (bundle.py): standard library and torch only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: int = 2
    rope_base: float = 10000.0
    logit_softcap: float = 30.0
    qk_gain_init: float = 1.5
    tied_embed_init_std: float = 0.005

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return F.rms_norm(x, (x.size(-1),), eps=self.eps)


class CastedLinear(nn.Linear):
    """Keeps fp32 master weights and computes in the activation dtype (bf16 under autocast on CUDA)."""

    def forward(self, x):
        return F.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))


class Rotary(nn.Module):
    def __init__(self, head_dim: int, base: float):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, seq_len: int, device, dtype):
        t = torch.arange(seq_len, device=device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq.to(device))
        return freqs.cos()[None, None].to(dtype), freqs.sin()[None, None].to(dtype)


def apply_rotary(x, cos, sin):
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.model_dim % cfg.num_heads or cfg.num_heads % cfg.num_kv_heads:
            raise ValueError("model_dim must divide by num_heads, and num_heads by num_kv_heads")
        self.num_heads, self.num_kv_heads = cfg.num_heads, cfg.num_kv_heads
        self.head_dim = cfg.model_dim // cfg.num_heads
        if self.head_dim % 2:
            raise ValueError("head_dim must be even for rotary embeddings")
        kv_dim = self.num_kv_heads * self.head_dim
        self.c_q = CastedLinear(cfg.model_dim, cfg.model_dim, bias=False)
        self.c_k = CastedLinear(cfg.model_dim, kv_dim, bias=False)
        self.c_v = CastedLinear(cfg.model_dim, kv_dim, bias=False)
        self.proj = CastedLinear(cfg.model_dim, cfg.model_dim, bias=False)
        nn.init.zeros_(self.proj.weight)
        self.q_gain = nn.Parameter(torch.full((cfg.num_heads,), cfg.qk_gain_init, dtype=torch.float32))
        self.rotary = Rotary(self.head_dim, cfg.rope_base)

    def forward(self, x):
        b, t, d = x.shape
        q = self.c_q(x).reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.c_k(x).reshape(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.c_v(x).reshape(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = F.rms_norm(q, (self.head_dim,)), F.rms_norm(k, (self.head_dim,))
        cos, sin = self.rotary(t, x.device, q.dtype)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        q = q * self.q_gain.to(q.dtype)[None, :, None, None]
        if self.num_kv_heads != self.num_heads:
            rep = self.num_heads // self.num_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        hidden = cfg.mlp_mult * cfg.model_dim
        self.fc = CastedLinear(cfg.model_dim, hidden, bias=False)
        self.proj = CastedLinear(hidden, cfg.model_dim, bias=False)
        nn.init.zeros_(self.proj.weight)

    def forward(self, x):
        return self.proj(torch.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        d = cfg.model_dim
        self.attn_norm, self.mlp_norm = RMSNorm(), RMSNorm()
        self.attn, self.mlp = CausalSelfAttention(cfg), MLP(cfg)
        self.attn_scale = nn.Parameter(torch.ones(d, dtype=torch.float32))
        self.mlp_scale = nn.Parameter(torch.ones(d, dtype=torch.float32))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(d), torch.zeros(d))).float())

    def forward(self, x, x0):
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        x = x + self.attn_scale.to(x.dtype) * self.attn(self.attn_norm(x))
        return x + self.mlp_scale.to(x.dtype) * self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.model_dim)
        nn.init.normal_(self.tok_emb.weight, std=cfg.tied_embed_init_std)
        self.num_encoder = cfg.num_layers // 2
        self.num_decoder = cfg.num_layers - self.num_encoder
        self.skip_weights = nn.Parameter(torch.ones(min(self.num_encoder, self.num_decoder), cfg.model_dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.final_norm = RMSNorm()

    def forward_logits(self, idx):
        """Soft-capped logits in fp32, shape [batch, seq, vocab]; position t sees tokens 0..t only."""
        x = F.rms_norm(self.tok_emb(idx), (self.cfg.model_dim,))
        x0, skips = x, []
        for i in range(self.num_encoder):
            x = self.blocks[i](x, x0)
            skips.append(x)
        for i in range(self.num_decoder):
            if skips:
                x = x + self.skip_weights[i].to(x.dtype) * skips.pop()
            x = self.blocks[self.num_encoder + i](x, x0)
        x = self.final_norm(x)
        logits = F.linear(x, self.tok_emb.weight.to(x.dtype)).float()
        cap = self.cfg.logit_softcap
        return cap * torch.tanh(logits / cap)

    def forward(self, idx, targets, reduction: str = "mean"):
        logits = self.forward_logits(idx)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction)
        return loss if reduction != "none" else loss.reshape(targets.shape)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

