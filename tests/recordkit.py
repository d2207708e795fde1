"""Builds synthetic record folders for tests: a README, submission.json, per-seed logs in the modern
("timed_eval") log format and a small train_gpt.py. Every figure can be overridden so a test states
exactly which rule it means to trip. Written for this project; no text is copied from real records.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

SCRIPT = '''"""Tiny stand-in training script for auditor tests."""
import os

VOCAB_SIZE = int(os.environ.get("VOCAB_SIZE", "8192"))


def main():
    print("training")


if __name__ == "__main__":
    main()
'''

DEFAULT_SEEDS = {42: 1.08120000, 1337: 1.08160000, 2025: 1.08140000}
BPB_PER_NAT = 0.387131  # sp8192
SP8192_TOKENS = 40_540_160
VAL_BYTES = 151_078_222


def loss_for(bpb: float, tokens: int = SP8192_TOKENS, val_bytes: float = VAL_BYTES) -> float:
    """The val_loss that makes (tokens, loss, bpb) imply `val_bytes` bytes."""
    return bpb * math.log(2) * val_bytes / tokens


def modern_log(seed: int, bpb: float, *, tokens: int = SP8192_TOKENS, train_ms: int = 588_000,
               model_bytes: int = 15_950_000, code_bytes: int | None = None, eval_ms: int = 84_115,
               train_shards: int = 80, loss: float | None = None, extra_lines: list[str] = ()) -> str:
    loss = loss_for(bpb, tokens) if loss is None else loss
    code = len(SCRIPT.encode()) if code_bytes is None else code_bytes
    lines = [
        "Hyperparameters:",
        "  data_dir: ./data/",
        "  max_wallclock_seconds: 600.0",
        f"  seed: {seed}",
        "  vocab_size: 8192",
        "  world_size: 8",
        f"train_shards: {train_shards}",
        f"val_tokens: {tokens}",
        "warmup_step: 20/20",
        "500/20000 train_loss: 3.3339 train_time: 0.8m tok/s: 7726831",
        f"4986/20000 val_loss: {loss + 0.02:.4f} val_bpb: {bpb + 0.008:.4f}",
        f"stopping_early: wallclock_cap train_time: {train_ms}ms step: 4986/20000",
        f"pre-quantization post-ema val_loss:{loss - 0.01:.8f} val_bpb:{bpb - 0.004:.8f} eval_time:6006ms",
        "Serialized model: 135426937 bytes",
        f"Code size: {code} bytes",
        f"Serialized model quantized+brotli: {model_bytes} bytes",
        f"Total submission size quantized+brotli: {model_bytes + code} bytes",
        f"quantized val_loss:{loss + 0.04:.8f} val_bpb:{bpb + 0.016:.8f} eval_time:8159ms",
        *extra_lines,
        f"quantized_sliding_window val_loss:{loss:.8f} val_bpb:{bpb:.8f} eval_time:{eval_ms}ms",
    ]
    return "\n".join(lines) + "\n"


def write_record(root: Path, name: str = "2026-05-01_Test_Record", *, seeds: dict[int, float] | None = None,
                 claim: float | None = None, meta: dict | None = None, log_kwargs: dict | None = None,
                 per_seed_kwargs: dict[int, dict] | None = None, script: str | None = SCRIPT,
                 readme: str | None = None, track: str = "track_10min_16mb") -> Path:
    """Write a record folder under root/records/<track>/<name> and return its path."""
    seeds = dict(DEFAULT_SEEDS if seeds is None else seeds)
    folder = root / "records" / track / name
    folder.mkdir(parents=True, exist_ok=True)
    if script is not None:
        (folder / "train_gpt.py").write_text(script, encoding="utf-8")
    for seed, bpb in seeds.items():
        kw = dict(log_kwargs or {})
        kw.update((per_seed_kwargs or {}).get(seed, {}))
        if script is not None and "code_bytes" not in kw:
            kw["code_bytes"] = len(script.encode())
        (folder / f"train_seed{seed}.log").write_text(modern_log(seed, bpb, **kw), encoding="utf-8")
    mean = sum(seeds.values()) / len(seeds) if seeds else None
    doc = {
        "author": "Test Author",
        "github_id": "tester",
        "name": "Test record",
        "blurb": "synthetic record for tests",
        "date": "2026-05-01",
        "track": "10min_16mb",
        "val_bpb": round(claim if claim is not None else mean, 8) if seeds or claim else None,
        "seeds": sorted(seeds),
        "bytes_total": 15_950_000 + len((script or "").encode()),
    }
    doc.update(meta or {})
    doc = {k: v for k, v in doc.items() if v is not None}
    (folder / "submission.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    claimed = doc.get("val_bpb")
    headline = f"\n\n**val_bpb {claimed:.4f}** (mean of {len(seeds)} seeds)" if isinstance(claimed, float) else ""
    (folder / "README.md").write_text(readme if readme is not None else
                                      f"# Test record{headline}\n\nA synthetic submission used by the auditor's tests.\n",
                                      encoding="utf-8")
    return folder
