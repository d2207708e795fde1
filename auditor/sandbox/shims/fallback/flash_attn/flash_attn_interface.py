from flash_attn import flash_attn_func, flash_attn_qkvpacked_func, flash_attn_varlen_func  # noqa: F401
