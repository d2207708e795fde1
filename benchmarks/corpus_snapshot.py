"""Snapshot `auditor run F --format json` for every record folder under a corpus, to compare two
versions of the auditor (valid records' reviews must not change except where a bound names a file).

    PYTHONPATH=. python benchmarks/corpus_snapshot.py ../shared/corpus /tmp/before
    ... change the code ...
    PYTHONPATH=. python benchmarks/corpus_snapshot.py ../shared/corpus /tmp/after
    diff -r /tmp/before /tmp/after

Each folder's review goes to OUT/<flattened relative path>.json, with its exit code and the wall
seconds in OUT/_index.tsv (timings are not compared).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def record_folders(corpus: Path) -> list[Path]:
    out = []
    for sj in sorted(corpus.rglob("*")):
        if sj.is_dir() and sj.parent.name.startswith("track_"):
            out.append(sj)
    return out


def main(argv: list[str]) -> int:
    corpus, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    rows = []
    for folder in record_folders(corpus):
        rel = folder.relative_to(corpus).as_posix().replace("/", "__")
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-P", "-m", "auditor", "run", str(folder), "--format", "json"],
                             capture_output=True, env=env)
        wall = time.perf_counter() - t0
        (out / f"{rel}.json").write_bytes(res.stdout + (b"\n--stderr--\n" + res.stderr if res.stderr else b""))
        rows.append(f"{rel}\t{res.returncode}\t{wall:.2f}")
        print(rows[-1], flush=True)
    (out / "_index.tsv").write_text("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
