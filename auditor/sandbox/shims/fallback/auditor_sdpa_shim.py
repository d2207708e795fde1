"""FlashAttention semantics on top of torch's scaled_dot_product_attention (CPU-capable).

Layout: FlashAttention takes (batch, seq, heads, dim); SDPA takes (batch, heads, seq, dim). Grouped-query
attention (fewer k/v heads) is expanded by repetition. A sliding window (left, right) becomes an explicit
boolean mask.
"""

import torch
import torch.nn.functional as F


def _mask(tq, tk, causal, window, device):
    left, right = (window if window is not None else (-1, -1))
    if not causal and left < 0 and right < 0:
        return None
    i = torch.arange(tq, device=device).unsqueeze(1) + (tk - tq)
    j = torch.arange(tk, device=device).unsqueeze(0)
    keep = torch.ones(tq, tk, dtype=torch.bool, device=device)
    if causal:
        keep &= j <= i
    if left >= 0:
        keep &= j >= i - left
    if right >= 0 and not causal:
        keep &= j <= i + right
    return keep


def attention_bthd(q, k, v, softmax_scale=None, causal=False, window_size=None):
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if kh.size(1) != qh.size(1):
        rep = qh.size(1) // kh.size(1)
        kh, vh = kh.repeat_interleave(rep, dim=1), vh.repeat_interleave(rep, dim=1)
    mask = _mask(qh.size(2), kh.size(2), causal, window_size, q.device)
    out = F.scaled_dot_product_attention(qh, kh.to(qh.dtype), vh.to(qh.dtype), attn_mask=mask, scale=softmax_scale)
    return out.transpose(1, 2).contiguous()


def attention_varlen(q, k, v, cu_q, cu_k, softmax_scale=None, causal=False, window_size=None):
    """(total, heads, dim) packed sequences delimited by cumulative lengths."""
    outs = []
    cu_q, cu_k = [int(x) for x in cu_q.tolist()], [int(x) for x in cu_k.tolist()]
    for (a, b), (c, d) in zip(zip(cu_q[:-1], cu_q[1:]), zip(cu_k[:-1], cu_k[1:])):
        if b == a:
            continue
        outs.append(attention_bthd(q[a:b].unsqueeze(0), k[c:d].unsqueeze(0), v[c:d].unsqueeze(0),
                                   softmax_scale, causal, window_size)[0])
    return torch.cat(outs, 0) if outs else q.new_zeros(q.shape)
