"""Runs first in every Python process started inside the sandbox (it sits on PYTHONPATH there).

Installs the audit hook (evidence: file opens, launches, network attempts, with the phase) and, for
a CPU run, the CUDA-to-CPU shims and the per-position loss capture. Does nothing outside the auditor's sandbox (no GAUNTLET_CONFIG).
"""

import json
import os
import sys


def _setup() -> None:
    path = os.environ.get("GAUNTLET_CONFIG")
    if not path:
        return
    with open(path, encoding="utf-8") as fh:
        cfg = json.load(fh)
    import _gauntlet_hooks

    _gauntlet_hooks.install(cfg["events"], cfg["run_dir"], cfg["data_dir"], cfg.get("block_network", True))
    if cfg.get("fallback_dir") and cfg["fallback_dir"] not in sys.path:
        sys.path.append(cfg["fallback_dir"])
    if cfg.get("shims"):
        import gauntlet_cpu

        gauntlet_cpu.install()
        import gauntlet_capture  # per-position losses of the script's own evaluation (switched on in main)

        gauntlet_capture.install()
        if cfg.get("val_stream"):
            _gauntlet_hooks.STATE.busy = True  # the auditor's own read is not the script's
            try:
                gauntlet_capture.configure(cfg["val_stream"])
            finally:
                _gauntlet_hooks.STATE.busy = False
        if cfg.get("flip"):
            import gauntlet_flip  # the flip test: fork at the first loss on validation targets

            gauntlet_flip.configure(cfg["flip"])


_setup()
