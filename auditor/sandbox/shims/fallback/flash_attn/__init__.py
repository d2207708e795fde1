"""CPU stand-in for FlashAttention 2's `flash_attn` (dropout is ignored: evaluation semantics)."""

from auditor_sdpa_shim import attention_bthd, attention_varlen

__gauntlet_shim__ = True

try:  # tell the auditor this stand-in was used (reported in the gauntlet's notes)
    import _gauntlet_hooks

    _gauntlet_hooks.emit({"event": "shim", "name": "flash_attn"})
except ImportError:
    pass
__version__ = "2.0.0+auditor-cpu-shim"


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1), *args, **kwargs):
    return attention_bthd(q, k, v, softmax_scale, causal, window_size)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None,
                           dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1), *args, **kwargs):
    return attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, softmax_scale, causal, window_size)


def flash_attn_qkvpacked_func(qkv, dropout_p=0.0, softmax_scale=None, causal=False, *args, **kwargs):
    return attention_bthd(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], softmax_scale, causal)
