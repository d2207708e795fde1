"""Seconds per folder for a static audit (load + rules + Markdown + JSON) over a corpus of record folders.

Usage: python benchmarks/bench_audit.py [CORPUS_DIR] [--repeat N]   (e.g. ../shared/corpus; default ../shared/dev_corpus)
Prints per-folder medians, the overall median and the slowest folder, and one CLI wall-clock
measurement (process start included) for comparison. Target: <= 1 s per folder on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from auditor.engine import audit_folder  # noqa: E402
from reports.render import render_json, render_markdown  # noqa: E402


def folders(corpus: Path) -> list[Path]:
    """Record folders: directories directly under a `track_*` folder, at any depth (the labeled corpus
    nests them as merged/records/<track>/<folder> and pr/PR<N>/records/<track>/<folder>)."""
    return sorted(p for t in corpus.rglob("track_*") if t.is_dir() for p in t.iterdir() if p.is_dir())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "dev_corpus"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    corpus = Path(args.corpus)
    fs = folders(corpus)
    if not fs:
        print(f"no record folders under {corpus}")
        return 2
    medians = {}
    for f in fs:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = audit_folder(str(f))
            render_markdown(result)
            render_json(result)
            times.append(time.perf_counter() - t0)
        medians[f.name] = statistics.median(times)
        print(f"{medians[f.name]:7.3f} s  {result.verdict:<12}  {f.name}", flush=True)
    overall = statistics.median(medians.values())
    worst = max(medians, key=medians.get)
    print(f"\nfolders: {len(fs)}  median per folder: {overall:.3f} s  slowest: {medians[worst]:.3f} s ({worst})")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "auditor", "run", str(fs[0])], capture_output=True, cwd=ROOT)
    print(f"one CLI run including interpreter start and imports: {time.perf_counter() - t0:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
