"""PPM throughput, each ratio measured in one run against the plain implementation (issue #8).

byte   byte PPM-D (order 5, exclusion): vectorised numpy (median of 3 runs) vs the sequential dict oracle
       on the same text (default 4 MB). Both outputs are compared (max |diff|) before the ratio is printed.
       Target: >= 20x, i.e. about >= 2.5 MB/s (the 151 MB validation text in <= 60 s).
byte-mem  the vectorised byte path alone at --mb, with the process's peak RSS (memory per input byte).
token  token-normalised PPM: the batched trie scorer vs the naive loop (one PPM call per token and
       byte) at the same positions after a warm history; rows compared before the ratio is printed.
       Target: >= 10x. Prints the projected time for 40.5 M positions x the vocabulary on this machine.
       A GPU figure is printed only when measured (--device cuda on a CUDA host): no guessed numbers.

Text: Jane Austen (the project's cached Debian package) when present, else the seeded generator, or
--text FILE. Not a test: timings depend on the machine and its load.

    .venv/bin/python benchmarks/bench_ppm.py [byte|byte-mem|token|all] [--mb 4] [--vocab 8192] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np
import torch

from reference_impl.ppm import bits_per_byte, byte_ppm_logprobs_fast, byte_ppm_logprobs_reference
from reference_impl.ppm_token import PieceTable, TokenPPM, naive_token_logprobs
from reference_impl.text_sources import austen_documents, generated_documents

VAL_BYTES = 151_000_000
VAL_POSITIONS = 40_500_000


def load_docs(path: str | None) -> tuple[list[str], str]:
    if path:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [p for p in f.read().split("\n\n") if p.strip()], path
    try:
        return austen_documents(download=False), "Jane Austen novels (cached package)"
    except Exception:  # noqa: BLE001 - any failure means: use the generator
        return generated_documents(40_000, seed=0), "seeded generated English-like text"


class Clock:
    """Wall and CPU (process) time of a block: CPU time is the fairer ratio on a shared, loaded host."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c
        return False


def byte_text(docs: list[str], mb: float) -> bytes:
    text = "\n".join(docs).encode("utf-8")
    n = int(mb * 1e6)
    if len(text) < n:
        print(f"[byte] note: source has only {len(text):,} bytes; repeating it to reach {n:,}")
        text = (text * (n // len(text) + 1))
    return text[:n]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is KiB on Linux


def bench_byte_memory(docs: list[str], label: str, mb: float) -> None:
    """Vectorised path only (default settings), with the process's peak RSS: the memory figure for `mb`."""
    text = byte_text(docs, mb)
    before = peak_rss_gb()
    with Clock() as cf:
        fast = byte_ppm_logprobs_fast(text, order=5, exclusion=True)
    peak = peak_rss_gb()
    print(f"[byte, fast only] {len(text):,} bytes of {label}; order 5, exclusion: cpu {cf.cpu:.2f} s "
          f"({len(text) / cf.cpu / 1e6:.2f} MB/s), {bits_per_byte(fast):.4f} bpb; peak RSS {peak:.2f} GB "
          f"(before: {before:.2f} GB) = {(peak - before) * 1e9 / len(text):.0f} bytes per input byte")


def bench_byte(docs: list[str], label: str, mb: float) -> None:
    text = byte_text(docs, mb)
    print(f"[byte] {len(text):,} bytes of {label}; order 5, exclusion; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cpus")
    byte_ppm_logprobs_fast(text[:100_000])  # warm-up
    # The vectorised path is memory-bound, so other jobs on a shared host swing its CPU time more than the
    # oracle's (one long run that averages the load): take the median of three runs and show all three.
    runs = []
    for _ in range(3):
        with Clock() as c:
            fast = byte_ppm_logprobs_fast(text, order=5, exclusion=True)
        runs.append(c)
    cf = sorted(runs, key=lambda c: c.cpu)[1]
    print(f"  vectorised numpy : wall {cf.wall:7.2f} s  cpu {cf.cpu:7.2f} s  {len(text) / cf.cpu / 1e6:5.2f} MB/s (cpu)"
          f"  ({bits_per_byte(fast):.4f} bpb); median of cpu {', '.join(f'{c.cpu:.2f}' for c in runs)} s")
    with Clock() as cp:
        part = byte_ppm_logprobs_fast(text, order=5, exclusion=True, max_chunk=max(len(text) // 8, 1))
    print(f"  vectorised, partitioned by previous byte (the path above max_chunk, e.g. for 151 MB): "
          f"cpu {cp.cpu:7.2f} s  {len(text) / cp.cpu / 1e6:5.2f} MB/s")
    with Clock() as cr:
        ref = byte_ppm_logprobs_reference(text, order=5, exclusion=True)
    print(f"  sequential dicts : wall {cr.wall:7.2f} s  cpu {cr.cpu:7.2f} s  {len(text) / cr.cpu / 1e6:5.2f} MB/s (cpu)")
    diff = float(max(np.max(np.abs(fast - ref)), np.max(np.abs(part - ref))))
    ratio = cr.cpu / cf.cpu
    print(f"  max |diff| = {diff:.2e};  speed-up {ratio:.1f}x cpu, {cr.wall / cf.wall:.1f}x wall "
          f"(target >= 20x: {'met' if ratio >= 20 else 'MISSED'})")
    proj = VAL_BYTES / (len(text) / cp.cpu)
    print(f"  partitioned speed-up {cr.cpu / cp.cpu:.1f}x cpu; projected 151 MB validation text (partitioned path), "
          f"this machine: {proj:,.0f} s cpu (target <= 60 s: {'met' if proj <= 60 else 'MISSED'}); "
          f"load average now {os.getloadavg()[0]:.1f}")


def build_table(docs: list[str], vocab: int, workdir: str) -> PieceTable:
    from reference_impl.tokenizer import train_sentencepiece

    path = os.path.join(workdir, f"bench_{vocab}.model")
    t0 = time.perf_counter()
    train_sentencepiece(docs, vocab, path)
    print(f"[token] trained a {vocab}-piece sentencepiece BPE in {time.perf_counter() - t0:.1f} s")
    return PieceTable.from_sentencepiece(path), path


def bench_token(docs: list[str], label: str, vocab: int, history: int, positions: int, naive_positions: int,
                device: str, batch: int) -> None:
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        table, path = build_table(docs[: len(docs) // 2], vocab, tmp)
        sp = spm.SentencePieceProcessor(model_file=path)
        toks: list[int] = []
        for d in docs[len(docs) // 2:]:
            toks += [sp.bos_id()] + sp.encode(d)
            if len(toks) > history + positions + 10:
                break
    toks_a = np.array(toks, dtype=np.int64)
    warm, test = toks_a[:history], toks_a[history:history + positions]
    nbytes = sum(len(table.token_bytes(v, False)) for v in range(table.vocab_size))
    fast = TokenPPM(table, order=5, exclusion=True, device=device, batch=batch)
    print(f"[token] vocab {table.vocab_size} ({label}); trie {fast.trie.num_nodes:,} nodes vs {nbytes:,} "
          f"token bytes; history {history:,} tokens; device {device}; batch {batch}")
    t0 = time.perf_counter()
    for t in warm[:-1]:
        fast.observe(int(t))
    ev = fast.counts.events
    print(f"  warm-up: {history:,} tokens observed in {time.perf_counter() - t0:.1f} s ({ev / history:.0f} count "
          f"events per token)")
    t0 = time.perf_counter()
    fast.extend_logprobs(warm[-1:])  # builds the first snapshot of the counts
    t_snap = time.perf_counter() - t0
    per_tok = t_snap * (ev / history) / fast.snapshot_events
    print(f"  snapshot build: {t_snap:.2f} s for {len(fast._lookup.ctx.keys) + len(fast._lookup.pair.keys):,} "
          f"entries; rebuilt every {fast.snapshot_events:,} events -> ~{per_tok * 1e3:.1f} ms per token amortised "
          f"(not in the timings below)")
    naive_state = TokenPPM(table, order=5, exclusion=True)
    for t in warm:
        naive_state.observe(int(t))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    with Clock() as cf:
        rows = fast.extend_logprobs(test)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    t_fast = cf.cpu if device == "cpu" else cf.wall
    naive_rows = []
    with Clock() as cn:
        for t in test[:naive_positions]:
            s = naive_state
            naive_rows.append(naive_token_logprobs(s.counts, table, s.prev_boundary, True, s.n_tokens, s.n_empty,
                                                   s.token_counts))
            s.observe(int(t))
    t_naive = cn.cpu
    print(f"  (timings: cpu seconds of this process on CPU runs; wall: trie {cf.wall:.2f} s, naive {cn.wall:.2f} s)")
    diff = float(np.max(np.abs(np.array(naive_rows) - rows[:naive_positions])))
    v = table.vocab_size
    rate_fast = positions * v / t_fast
    rate_naive = naive_positions * v / t_naive
    ratio = rate_fast / rate_naive
    print(f"  trie, batched    : {positions} positions in {t_fast:.2f} s -> {rate_fast:,.0f} token strings/s "
          f"({positions * (fast.trie.num_nodes - 1) / t_fast:,.0f} trie-edge probes/s; "
          f"{positions * nbytes / t_fast:,.0f} token-byte probes/s equivalent)")
    print(f"  naive loop       : {naive_positions} positions in {t_naive:.2f} s -> {rate_naive:,.0f} token strings/s "
          f"({naive_positions * nbytes / t_naive:,.0f} byte probes/s)")
    print(f"  max |diff| = {diff:.2e};  speed-up {ratio:.1f}x (target >= 10x: {'met' if ratio >= 10 else 'MISSED'})")
    proj = VAL_POSITIONS * v / rate_fast
    where = "this machine (CPU)" if device == "cpu" else f"MEASURED on {device}"
    print(f"  projected {VAL_POSITIONS / 1e6:.1f} M positions x {v} tokens, {where}: {proj:,.0f} s "
          f"= {proj / 86400:.1f} days (naive: {VAL_POSITIONS * v / rate_naive / 86400:,.0f} days)")
    if device == "cpu":
        print("  GPU: not measured here (no CUDA device). Run with --device cuda on a GPU host; the same "
              "code path runs there, and the printed projection is then labelled MEASURED.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="?", default="all", choices=["byte", "byte-mem", "token", "all"])
    ap.add_argument("--text", help="UTF-8 text file (paragraphs separated by blank lines)")
    ap.add_argument("--mb", type=float, default=4.0, help="MB (10^6 bytes) of text for the byte benchmark")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--history", type=int, default=20_000, help="tokens observed before timing")
    ap.add_argument("--positions", type=int, default=32, help="positions scored by the trie")
    ap.add_argument("--naive-positions", type=int, default=3, help="positions scored by the naive loop")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    docs, label = load_docs(args.text)
    print(f"torch threads {torch.get_num_threads()} (token scorer uses 1 on CPU); cpus {os.cpu_count()}")
    if args.which in ("byte", "all"):
        bench_byte(docs, label, args.mb)
    if args.which == "byte-mem":
        bench_byte_memory(docs, label, args.mb)
    if args.which in ("token", "all"):
        bench_token(docs, label, args.vocab, args.history, args.positions, min(args.naive_positions, args.positions),
                    args.device, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
