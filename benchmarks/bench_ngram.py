"""Throughput of the vectorised n-gram mixer vs the plain sequential Python loop, measured in one run.

Both score the same stream (gold log-probabilities of a 5-order backoff over vocab 1024 by default); the
sequential loop runs on a prefix of it (it is ~50x slower) and its numbers are checked equal to the
vectorised ones on that prefix before the ratio is printed. Targets from issue #7: >= 30x and >= 1 M
tokens/s on a 2-core CPU. Not a test: timings depend on the machine and its load.

    .venv/bin/python benchmarks/bench_ngram.py [--tokens N] [--seq-tokens M] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from reference_impl.ngram import NGramBackoff, sequential_gold_logprobs


def zipf_stream(vocab: int, n: int, seed: int) -> np.ndarray:
    """Zipf(1) tokens over a shuffled vocabulary, with every 8th block of 64 copying an earlier block."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1))
    cdf /= cdf[-1]
    x = rng.permutation(vocab)[np.minimum(np.searchsorted(cdf, rng.random(n)), vocab - 1)]
    for s in range(512, n - 64, 512):
        src = int(rng.integers(0, s - 64))
        x[s:s + 64] = x[src:src + 64]
    return x.astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1 << 20, help="stream length for the vectorised path")
    ap.add_argument("--seq-tokens", type=int, default=100_000, help="prefix scored by the sequential loop")
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="torch device for the torch backend (cpu, cuda, ...)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each path; the median is reported")
    args = ap.parse_args(argv)

    x = zipf_stream(args.vocab, args.tokens, args.seed)
    m = NGramBackoff(args.vocab, order=args.order, device=args.device)
    print(f"stream: {args.tokens:,} tokens, vocab {args.vocab}, order {args.order}, buckets {m.buckets}, "
          f"torch threads {torch.get_num_threads()}")
    m.gold_logprobs(x[:4096])  # warm-up (imports, thread pool)

    walls, cpus = [], []
    for _ in range(max(1, args.repeat)):
        t0, c0 = time.perf_counter(), time.process_time()
        fast = m.gold_logprobs(x)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    t_fast, c_fast = statistics.median(walls), statistics.median(cpus)
    backend = "numpy radix + threads" if m.device.type == "cpu" else f"torch on {m.device}"
    print(f"vectorised ({backend}): {t_fast:.3f} s wall, {c_fast:.3f} s CPU  -> {args.tokens / t_fast:,.0f} tokens/s")

    t0 = time.perf_counter()
    fast_torch = m.gold_logprobs(x, backend="torch")
    t_torch = time.perf_counter() - t0
    print(f"vectorised (torch on {m.device}): {t_torch:.3f} s  -> {args.tokens / t_torch:,.0f} tokens/s")

    n_seq = min(args.seq_tokens, args.tokens)
    sys.stdout.write(f"sequential Python loop on the first {n_seq:,} tokens ... ")
    sys.stdout.flush()
    try:
        walls, cpus = [], []
        for _ in range(max(1, args.repeat)):
            t0, c0 = time.perf_counter(), time.process_time()
            slow = sequential_gold_logprobs(x[:n_seq], args.vocab, args.order, m.buckets, m.alpha, m.beta)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        t_slow, c_slow = statistics.median(walls), statistics.median(cpus)
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    seq_rate = n_seq / t_slow
    print(f"{t_slow:.3f} s wall, {c_slow:.3f} s CPU  -> {seq_rate:,.0f} tokens/s")

    diff = max(float(np.abs(fast[:n_seq] - slow).max()), float(np.abs(fast_torch - fast).max()))
    print(f"max |log p| difference vectorised vs sequential (and torch vs numpy): {diff:.3g}")
    if diff > 1e-9:
        print("ERROR: paths disagree; ratio not meaningful")
        return 1

    fast_rate = args.tokens / t_fast
    ratio = fast_rate / seq_rate
    cpu_ratio = (args.tokens / c_fast) / (n_seq / c_slow)
    print(f"ratio vectorised / sequential: {ratio:.1f}x wall-clock  (torch backend: {args.tokens / t_torch / seq_rate:.1f}x; "
          f"per CPU-second, both threads counted: {cpu_ratio:.1f}x)")
    if abs(t_slow - c_slow) > 0.2 * t_slow:
        print("note: the sequential loop got much less CPU than wall time: the machine is loaded, rerun when idle")
    print(f"target >= 30x: {'met' if ratio >= 30 else 'MISSED'};  target >= 1,000,000 tokens/s: "
          f"{'met' if fast_rate >= 1e6 else 'MISSED'}")

    n_full = min(20_000, args.tokens)
    t0 = time.perf_counter()
    m.stream_logprobs(x[:n_full])
    t_full = time.perf_counter() - t0
    print(f"(full [len, V] distributions, chunked torch path: {n_full / t_full:,.0f} tokens/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
