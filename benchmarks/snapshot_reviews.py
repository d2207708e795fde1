"""Snapshot every review the CLI writes over the real corpora, and compare two snapshots.

A refactor must not change what a maintainer reads. This runs `auditor run FOLDER --format json` and
`--format md` through the installed console script (a fresh process per folder, as a user runs it) for
every record folder under ../shared/corpus and ../shared/dev_corpus, and stores the bytes.

    python benchmarks/snapshot_reviews.py save DIR          # write DIR/<folder-key>.json and .md
    python benchmarks/snapshot_reviews.py compare DIR_A DIR_B   # list the files that differ (exit 1 if any)

The folder key is the folder's path under the corpus root with `/` replaced by `__`, so both corpora fit
in one flat directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = [ROOT.parent / "shared" / "corpus", ROOT.parent / "shared" / "dev_corpus"]


def record_folders() -> list[tuple[str, Path]]:
    """(key, path) of every folder that holds a record: a directory two levels under records/track_*."""
    out = []
    for corpus in CORPORA:
        if not corpus.is_dir():
            continue
        for track in sorted(corpus.rglob("track_*")):
            if not track.is_dir():
                continue
            for folder in sorted(p for p in track.iterdir() if p.is_dir()):
                key = f"{corpus.name}__" + str(folder.relative_to(corpus)).replace(os.sep, "__")
                out.append((key, folder))
    return out


def audit(folder: Path, fmt: str) -> bytes:
    proc = subprocess.run(["auditor", "run", str(folder), "--format", fmt], capture_output=True)
    return proc.stdout + f"\n[exit {proc.returncode}]\n".encode() + proc.stderr


def save(out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(key, folder, fmt) for key, folder in record_folders() for fmt in ("json", "md")]

    def one(job):
        key, folder, fmt = job
        (out_dir / f"{key}.{fmt}").write_bytes(audit(folder, fmt))
        return key

    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, _ in enumerate(pool.map(one, jobs), 1):
            if i % 20 == 0 or i == len(jobs):
                print(f"{i}/{len(jobs)} reviews written", file=sys.stderr, flush=True)
    return 0


def compare(a: Path, b: Path) -> int:
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    differ = [n for n in names if not (a / n).exists() or not (b / n).exists()
              or (a / n).read_bytes() != (b / n).read_bytes()]
    for n in differ:
        print(f"differs: {n}")
    print(f"{len(names) - len(differ)}/{len(names)} reviews byte-identical")
    return 1 if differ else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("save")
    s.add_argument("dir")
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = ap.parse_args()
    if args.cmd == "save":
        return save(Path(args.dir))
    return compare(Path(args.a), Path(args.b))


if __name__ == "__main__":
    sys.exit(main())
