"""Files copied into the sandbox and put on the child's PYTHONPATH. They run inside the sandboxed
process only, so they import nothing from the auditor."""
