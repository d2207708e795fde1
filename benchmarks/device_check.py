"""One call that runs every device path the project has and prints one table (issue #16).

Why a single script: device time is lent in short sessions (minutes, all calls together), so everything
that needs a GPU must run in one prepared call that cannot stall on one stage: each stage is a subprocess
with its own time limit, a failure becomes a table row, and the table is printed whatever happens.

Stages (each skippable with --skip NAME):
  train      the reference trainer, baseline configuration (9 layers, 512 wide, 8 heads / 4 KV, 524,288
             tokens per step, sequence 1024, Muon, torch.compile) for a fixed wallclock on prepared data;
             tokens/s, peak memory, and the trainer's own final sliding-window evaluation (bpb, seconds)
  ngram      the vectorised n-gram mixer on the device (benchmarks/bench_ngram.py)
  token_ppm  the token-normalised PPM on the device, host-ops and device-ops paths
             (benchmarks/bench_ppm.py token): token strings/s and the full-validation projection
  byte_ppm   byte PPM-D (CPU only; benchmarks/bench_ppm.py byte), when --byte-mb > 0
  gauntlet   `auditor run examples/austen_demo --gauntlet --device DEVICE`

Data is made on the CPU side first and carried to the device machine (the device cannot download):

    python benchmarks/device_check.py --prepare runs/devcheck-data      # CPU side, once
    python benchmarks/device_check.py --device cuda                      # on the GPU, <= 8 minutes
    python benchmarks/device_check.py --device cpu --small               # every stage, small, on a CPU

--small shrinks every stage (a 3-layer 128-wide model for 20 s, short streams) so the same script is
exercised on a CPU; its figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepare(out: str, docs: int) -> int:
    """Tokenised generated text (vocab 1024, offline): what the train stage reads."""
    cmd = [sys.executable, "-m", "reference_impl", "prepare", "--source", "generated", "--num-docs", str(docs),
           "--vocab-size", "1024", "--val-docs", str(max(docs // 20, 50)), "--out", out]
    print("$", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def run_stage(cmd: list[str], timeout: float, env: dict | None = None) -> tuple[int, str, float]:
    """(exit code, combined output, seconds); 124 on timeout, like coreutils' timeout."""
    t0 = time.perf_counter()
    full_env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {}))
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr, time.perf_counter() - t0
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return 124, out + err + f"\n[timed out after {timeout:.0f} s]", time.perf_counter() - t0


def last(pattern: str, text: str, group: int = 1) -> str | None:
    found = re.findall(pattern, text)
    if not found:
        return None
    m = found[-1]
    return m if isinstance(m, str) else m[group - 1]


def train_stage(a, out_dir: Path) -> dict:
    if a.small:
        shape = ["--num-layers", "3", "--model-dim", "128", "--num-heads", "4", "--num-kv-heads", "2",
                 "--train-batch-tokens", "4096", "--seq-len", "128", "--max-seconds", str(a.train_seconds or 20)]
        compile_flag = "0"
    else:
        shape = ["--num-layers", "9", "--model-dim", "512", "--num-heads", "8", "--num-kv-heads", "4",
                 "--train-batch-tokens", "524288", "--seq-len", "1024", "--max-seconds", str(a.train_seconds or 150)]
        compile_flag = "1"
    cmd = [sys.executable, "-m", "reference_impl", "train", "--data", a.data, "--out", str(out_dir / "train"),
           "--seed", "1", "--iterations", "100000", "--warmup-steps", "2", "--optimizer", "muon", *shape,
           "--set", f"COMPILE={compile_flag}", "--set", "VAL_LOSS_EVERY=0"]
    if not a.small:  # the baseline's 8 micro-batches of 64 x 1024 on one GPU (the CLI defaults to 1)
        cmd += ["--set", "GRAD_ACCUM_STEPS=8"]
    rc, text, secs = run_stage(cmd, a.train_timeout)
    for log in sorted((out_dir / "train").glob("**/*.txt")) + sorted((out_dir / "train").glob("**/*.log")):
        text += "\n" + log.read_text(errors="replace")
    tok = last(r"tok/s:\s*(\d+)", text)
    mem = last(r"peak memory allocated:\s*(\d+)\s*MiB", text)
    slide = re.findall(r"(\S*sliding\S*) val_loss:\s*([\d.]+) val_bpb:\s*([\d.]+) eval_time:\s*(\d+)ms", text)
    steps = last(r"step:\s*(\d+)/", text)
    figs = [f"{int(tok):,} train tok/s" if tok else "no tok/s line",
            f"peak {mem} MiB" if mem else "peak mem n/a (CPU)",
            f"steps {steps}" if steps else ""]
    if slide:
        label, _loss, bpb, ms = slide[-1]
        figs.append(f"sliding eval ({label}) {bpb} bpb in {int(ms) / 1000:.1f} s")
    return {"rc": rc, "secs": secs, "figures": "; ".join(f for f in figs if f), "tail": text[-2000:]}


def ngram_stage(a) -> dict:
    n = "200000" if a.small else "4000000"
    cmd = [sys.executable, "benchmarks/bench_ngram.py", "--device", a.device, "--tokens", n,
           "--seq-tokens", "20000" if a.small else "100000", "--repeat", "1"]
    rc, text, secs = run_stage(cmd, a.stage_timeout)
    torch_rate = last(r"vectorised \(torch on [^)]*\): [\d.]+ s\s+->\s+([\d,]+) tokens/s", text)
    diff = last(r"difference vectorised vs sequential \(and torch vs numpy\): (\S+)", text)
    figs = [f"torch on {a.device}: {torch_rate} tok/s" if torch_rate else "no rate", f"max |diff| {diff}"]
    return {"rc": rc, "secs": secs, "figures": "; ".join(figs), "tail": text[-2000:]}


def token_ppm_stage(a) -> dict:
    small = ["--vocab", "1024", "--history", "3000", "--positions", "8", "--naive-positions", "1"]
    big = ["--vocab", "8192", "--history", "20000", "--positions", "256", "--naive-positions", "1", "--batch", "64"]
    cmd = [sys.executable, "benchmarks/bench_ppm.py", "token", "--device", a.device, *(small if a.small else big)]
    rc, text, secs = run_stage(cmd, a.stage_timeout)
    rates = re.findall(r"trie, (\w+)\s+ops: .*?-> ([\d,]+) token strings/s", text)
    proj = last(r"projected .*?: ([\d,]+) s", text)
    ratio = last(r"is ([\d.]+)x the naive loop", text)
    diff = last(r"max \|diff\| host vs naive (\S+);", text)
    figs = [", ".join(f"{n} ops {r} strings/s" for n, r in rates) or "no rate",
            f"{ratio}x naive" if ratio else "", f"full set {proj} s" if proj else "", f"max |diff| {diff}"]
    return {"rc": rc, "secs": secs, "figures": "; ".join(f for f in figs if f), "tail": text[-2000:]}


def byte_ppm_stage(a) -> dict:
    cmd = [sys.executable, "benchmarks/bench_ppm.py", "byte", "--mb", str(a.byte_mb),
           "--oracle-mb", str(min(a.byte_mb, 0.5 if a.small else 4))]
    rc, text, secs = run_stage(cmd, a.stage_timeout)
    full = last(r"full size\s+: wall\s+([\d.]+) s\s+cpu\s+([\d.]+) s", text)
    rate = last(r"full size.*?([\d.]+) MB/s \(cpu\)", text)
    diff = last(r"trie\s+on prefix.*?max \|diff\| vs oracle (\S+)", text)
    figs = [f"{a.byte_mb} MB: wall {full} s" if full else "no timing", f"{rate} MB/s cpu" if rate else "",
            f"max |diff| {diff}" if diff else ""]
    return {"rc": rc, "secs": secs, "figures": "; ".join(f for f in figs if f), "tail": text[-2000:]}


def gauntlet_stage(a) -> dict:
    cmd = [sys.executable, "-m", "auditor", "run", "examples/austen_demo", "--gauntlet", "--device", a.device]
    rc, text, secs = run_stage(cmd, a.gauntlet_timeout)
    verdict = last(r"\*\*Verdict: ([^*]+)\*\*([^\n]*)", text)
    verdict_line = re.findall(r"\*\*Verdict: ([^*]+)\*\*([^\n]*)", text)
    evalue = re.findall(r"random-stream test[^\n]*", text)
    figs = [f"verdict {verdict_line[-1][0].strip()}{verdict_line[-1][1]}" if verdict else "no verdict line",
            evalue[-1][:140] if evalue else ""]
    # The auditor exits 1 on a FAIL verdict: the stage ran; a crash or timeout has no verdict line.
    return {"rc": 0 if (verdict and rc in (0, 1)) else (rc or 1), "secs": secs,
            "figures": "; ".join(f for f in figs if f), "tail": text[-2000:]}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prepare", metavar="DIR", help="make the train stage's data in DIR and exit (CPU side)")
    ap.add_argument("--prepare-docs", type=int, default=4000, help="generated documents (4000: ~330k train tokens)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default="runs/devcheck-data", help="prepared data directory (see --prepare)")
    ap.add_argument("--out", default="runs/devcheck", help="where stage outputs and table.json go")
    ap.add_argument("--small", action="store_true", help="small sizes everywhere (CPU smoke run)")
    ap.add_argument("--skip", action="append", default=[], help="stage to skip (repeatable)")
    ap.add_argument("--train-seconds", type=float, default=0, help="trainer wallclock (default 150; small 20)")
    ap.add_argument("--train-timeout", type=float, default=300)
    ap.add_argument("--stage-timeout", type=float, default=120)
    ap.add_argument("--gauntlet-timeout", type=float, default=240)
    ap.add_argument("--byte-mb", type=float, default=0, help="byte PPM size in MB (0: skip the stage)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.prepare:
        return prepare(a.prepare, a.prepare_docs)
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stages = {"train": lambda: train_stage(a, out_dir), "ngram": lambda: ngram_stage(a),
              "token_ppm": lambda: token_ppm_stage(a), "byte_ppm": lambda: byte_ppm_stage(a),
              "gauntlet": lambda: gauntlet_stage(a)}
    if a.byte_mb <= 0:
        a.skip.append("byte_ppm")
    if "train" not in a.skip and not (Path(a.data) / "manifest.json").exists() and not list(Path(a.data).glob("*")):
        print(f"note: no prepared data in {a.data}; run --prepare first (train stage will fail)", flush=True)
    rows = []
    t_all = time.perf_counter()
    for name, fn in stages.items():
        if name in a.skip:
            continue
        print(f"[{name}] ...", flush=True)
        try:
            r = fn()
        except Exception as exc:  # noqa: BLE001 - a broken stage is a table row, not a crash
            r = {"rc": -1, "secs": 0.0, "figures": f"{type(exc).__name__}: {exc}", "tail": ""}
        r["stage"] = name
        rows.append(r)
        status = "ok" if r["rc"] == 0 else ("TIMEOUT" if r["rc"] == 124 else f"FAILED rc={r['rc']}")
        print(f"[{name}] {status} in {r['secs']:.0f} s: {r['figures']}", flush=True)
        if r["rc"] != 0:
            print("\n".join("    " + ln for ln in r["tail"].splitlines()[-15:]), flush=True)
    import torch

    dev_name = torch.cuda.get_device_name(0) if a.device.startswith("cuda") and torch.cuda.is_available() else "CPU"
    print(f"\n| stage | status | seconds | figures ({a.device}: {dev_name}{', small' if a.small else ''}) |")
    print("|---|---|---|---|")
    for r in rows:
        status = "ok" if r["rc"] == 0 else ("timeout" if r["rc"] == 124 else f"failed ({r['rc']})")
        print(f"| {r['stage']} | {status} | {r['secs']:.0f} | {r['figures']} |")
    print(f"total {time.perf_counter() - t_all:.0f} s")
    (out_dir / "table.json").write_text(json.dumps({"device": a.device, "device_name": dev_name, "small": a.small,
                                                    "rows": rows}, indent=1))
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
