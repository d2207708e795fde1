"""Launch the bundled training script for one seed and record what ran.

The run directory receives `train_gpt.py` (bundled fresh), the log the script writes itself
(`logs/<run_id>.txt`), the artifacts, and `run.json` with the script's sha256, the exact environment
handed to it and the launch command, so `package` can prove every seed ran the shipped file.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from .bundle import write_script

RUN_META = "run.json"


class RunError(RuntimeError):
    """The training subprocess failed or was interrupted."""


def launch_training(run_dir: str, env_overrides: dict[str, str], nproc: int = 1, threads: int | None = None,
                    script: str | None = None, quiet: bool = False) -> dict:
    run = Path(run_dir).resolve()
    run.mkdir(parents=True, exist_ok=True)
    target = run / "train_gpt.py"
    if script:
        target.write_bytes(Path(script).read_bytes())
        sha = hashlib.sha256(target.read_bytes()).hexdigest()
    else:
        sha = write_script(target)
    env = dict(os.environ)
    env.update({k: str(v) for k, v in env_overrides.items()})
    env["OUT_DIR"] = str(run)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "train_gpt.py"]
    else:
        cmd = [sys.executable, "train_gpt.py"]
    proc = subprocess.Popen(cmd, cwd=run, env=env, stdout=subprocess.DEVNULL if quiet else None)
    try:
        rc = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise RunError("training interrupted") from None
    if rc != 0:
        raise RunError(f"training exited with status {rc}")
    run_id = env_overrides["RUN_ID"]
    meta = {
        "run_id": run_id,
        "seed": int(env_overrides["SEED"]),
        "script_sha256": sha,
        "script_bytes": target.stat().st_size,
        "log": f"logs/{run_id}.txt",
        "nproc": nproc,
        "command": " ".join(["torchrun --standalone --nproc_per_node=%d" % nproc if nproc > 1 else "python", "train_gpt.py"]),
        "env": {k: str(v) for k, v in sorted(env_overrides.items())},
        "date": _dt.date.today().isoformat(),
    }
    (run / RUN_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta
