"""CPU stand-in for FlashAttention 3's `flash_attn_interface` (returns the attention output only)."""

from auditor_sdpa_shim import attention_bthd, attention_varlen

__gauntlet_shim__ = True

try:  # tell the auditor this stand-in was used (reported in the gauntlet's notes)
    import _gauntlet_hooks

    _gauntlet_hooks.emit({"event": "shim", "name": "flash_attn_interface"})
except ImportError:
    pass


def flash_attn_func(q, k, v, softmax_scale=None, causal=False, qv=None, q_descale=None, k_descale=None,
                    v_descale=None, window_size=(-1, -1), *args, **kwargs):
    return attention_bthd(q, k, v, softmax_scale, causal, window_size)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None,
                           *args, softmax_scale=None, causal=False, window_size=(-1, -1), **kwargs):
    return attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, softmax_scale, causal, window_size)
