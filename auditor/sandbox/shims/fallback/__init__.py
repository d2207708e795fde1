"""Stand-ins for GPU-only packages, placed at the END of the child's sys.path so an installed real
package always wins. The child imports them as top-level `flash_attn`, `flash_attn_interface`, `triton`."""
