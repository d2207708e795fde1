"""`triton.tools` of the CPU stand-in (tensor descriptors only: they are built before a kernel launch)."""
