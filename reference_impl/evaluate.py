"""Evaluation loops (format_spec §2.3-§2.6): non-overlapping, V3 sliding window and document-based.
Legal score-first TTT, which adapts the model on already-scored tokens, lives in ttt.py.

Every loop accumulates loss (nats), scored targets and credited bytes in float64, all-reduces them when
a process group is up, and can return the per-target NLL (indexed by target position 0..total-1, NaN
where another rank scored it) so an auditor can diff two evaluations token by token.

Target position p means predicting val[p+1] from val[:p+1]; `total` = number of scored targets = usable.

Bundled verbatim into the single-file training script (bundle.py): standard library, numpy and torch.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F


@dataclass
class EvalResult:
    loss_sum: float
    tokens: int
    bytes: int
    elapsed_s: float
    nll: np.ndarray | None = None

    @property
    def val_loss(self) -> float:
        return self.loss_sum / self.tokens

    @property
    def val_bpb(self) -> float:
        return self.loss_sum / (math.log(2.0) * self.bytes)


class LutTensors:
    """The three byte LUTs as device tensors, for crediting bytes to (prev, target) pairs."""

    def __init__(self, luts, device):
        base, space, boundary = luts
        self.base = torch.as_tensor(np.asarray(base, dtype=np.int64), device=device)
        self.space = torch.as_tensor(np.asarray(space, dtype=bool), device=device)
        self.boundary = torch.as_tensor(np.asarray(boundary, dtype=bool), device=device)

    def bytes_for(self, prev, tgt):
        return self.base[tgt] + (self.space[tgt] & ~self.boundary[prev]).long()


def autocast_for(device):
    """bf16 autocast on CUDA; plain fp32 elsewhere (CPU bf16 is slow and changes numerics)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _dist_info():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _reduce(loss_sum, tokens, nbytes, device):
    t = torch.tensor([loss_sum, float(tokens), float(nbytes)], dtype=torch.float64, device=device)
    if _dist_info()[1] > 1:
        dist.all_reduce(t)
    return float(t[0]), int(round(float(t[1]))), int(round(float(t[2])))


class _Scorer:
    """Scores batches of (input window, scored slice) pairs and accumulates fp64 sums."""

    def __init__(self, model, val, luts, device, total, return_nll):
        self.model, self.device = model, device
        self.val = torch.as_tensor(np.asarray(val, dtype=np.int64))
        self.lut = luts if isinstance(luts, LutTensors) else LutTensors(luts, device)
        self.loss_sum, self.tokens, self.bytes = 0.0, 0, 0
        self.nll = np.full(total, np.nan) if return_nll else None

    @torch.no_grad()
    def score(self, windows):
        """windows: list of (start, length, scored_from) in target positions; scores [start+scored_from, start+length)."""
        if not windows:
            return
        width = max(w[1] for w in windows)
        x = torch.zeros(len(windows), width, dtype=torch.int64)
        y = torch.zeros(len(windows), width, dtype=torch.int64)
        for i, (s, n, _) in enumerate(windows):
            x[i, :n] = self.val[s : s + n]
            y[i, :n] = self.val[s + 1 : s + n + 1]
        x, y = x.to(self.device), y.to(self.device)
        was_training = self.model.training
        self.model.eval()
        with autocast_for(self.device):
            logits = self.model.forward_logits(x)
        self.model.train(was_training)
        nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
        nll = nll.reshape(y.shape).double()
        credited = self.lut.bytes_for(x, y)
        for i, (s, n, f) in enumerate(windows):
            self.loss_sum += float(nll[i, f:n].sum())
            self.tokens += n - f
            self.bytes += int(credited[i, f:n].sum())
            if self.nll is not None:
                self.nll[s + f : s + n] = nll[i, f:n].cpu().numpy()

    def result(self, t0) -> EvalResult:
        loss_sum, tokens, nbytes = _reduce(self.loss_sum, self.tokens, self.bytes, self.device)
        return EvalResult(loss_sum, tokens, nbytes, time.perf_counter() - t0, self.nll)


def _rank_slice(n, rank, world):
    return (n * rank) // world, (n * (rank + 1)) // world


def eval_nonoverlap(model, val, seq_len, luts, device="cpu", batch_seqs=32, return_nll=False) -> EvalResult:
    """Root `eval_val`: usable/seq_len independent sequences, each with zero context."""
    t0 = time.perf_counter()
    total = len(val) - 1
    if total % seq_len:
        raise ValueError("val stream must hold usable + 1 tokens with usable a multiple of seq_len")
    rank, world = _dist_info()
    lo, hi = _rank_slice(total // seq_len, rank, world)
    sc = _Scorer(model, val, luts, device, total, return_nll)
    for b in range(lo, hi, batch_seqs):
        sc.score([(i * seq_len, seq_len, 0) for i in range(b, min(b + batch_seqs, hi))])
    return sc.result(t0)


def sliding_windows(total, seq_len, stride):
    """V3 windows (start, length, scored_from): every target in [0, total) scored exactly once."""
    if not 0 < stride <= seq_len:
        raise ValueError("need 0 < stride <= seq_len")
    ctx = seq_len - stride
    out = []
    for ws in range(0, total, stride):
        if ws > 0 and ws + ctx >= total:
            break
        n = min(ws + seq_len, total) - ws
        out.append((ws, n, 0 if ws == 0 else ctx))
    return out


def eval_sliding(model, val, seq_len, stride, luts, device="cpu", batch_windows=32, return_nll=False) -> EvalResult:
    """V3 sliding window: each full window scores its last `stride` targets with seq_len-stride context."""
    t0 = time.perf_counter()
    total = len(val) - 1
    windows = sliding_windows(total, seq_len, stride)
    rank, world = _dist_info()
    lo, hi = _rank_slice(len(windows), rank, world)
    sc = _Scorer(model, val, luts, device, total, return_nll)
    for b in range(lo, hi, batch_windows):
        sc.score(windows[b : min(b + batch_windows, hi)])
    return sc.result(t0)


def find_documents(val, bos_id):
    """(start, length) per document; a document includes the next document's BOS as its last target."""
    val = np.asarray(val)
    starts = np.nonzero(val == bos_id)[0].tolist()
    if not starts or starts[0] != 0:
        starts = [0] + starts
    docs = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(val) - 1
        if end > s:
            docs.append((s, end - s + 1))
    return docs


def document_windows(val, bos_id, seq_len, chunk):
    """Windows that score each document's targets in chunks, with context from inside the document only."""
    if not 0 < chunk <= seq_len:
        raise ValueError("need 0 < chunk <= seq_len")
    out = []
    for start, length in find_documents(val, bos_id):
        # targets of this document are positions start .. start+length-2 (predicting start+1 .. end)
        first, last = start, start + length - 1
        for a in range(first, last, chunk):
            b = min(a + chunk, last)
            s = max(start, b - seq_len)
            out.append((s, b - s, a - s))
    return out


def eval_documents(model, val, bos_id, seq_len, luts, device="cpu", chunk=256, batch_windows=32,
                   return_nll=False) -> EvalResult:
    """Document-based eval: no attention across document boundaries; every target scored once."""
    t0 = time.perf_counter()
    windows = document_windows(val, bos_id, seq_len, chunk)
    rank, world = _dist_info()
    lo, hi = _rank_slice(len(windows), rank, world)
    sc = _Scorer(model, val, luts, device, len(val) - 1, return_nll)
    for b in range(lo, hi, batch_windows):
        sc.score(windows[b : min(b + batch_windows, hi)])
    return sc.result(t0)
