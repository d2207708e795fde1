"""Legal chunked score-first test-time training over V3 sliding windows (format_spec §2.7).

"Legal" means a validation token is trained on only after it has been scored: chunk c's windows are all
scored under no_grad before the model takes SGD steps on chunk c, and the last chunk is never trained
on. The `trace` hook records the order of score and train events so tests can prove it.

Kept out of the bundled training script on purpose: the shipped example never touches validation
tokens with gradients.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
import torch.distributed as dist

from .evaluate import EvalResult, _dist_info, _rank_slice, _Scorer, autocast_for, sliding_windows


def eval_ttt_score_first(model, val, seq_len, stride, luts, device="cpu", chunk_tokens=32768, lr=0.002,
                         momentum=0.9, epochs=1, batch_windows=32, train_batch_seqs=8, return_nll=False,
                         trace=None, log=None) -> EvalResult:
    """Legal chunked TTT (§2.7): score every window of chunk c, then (unless c is last) train on chunk c.

    Works on a deep copy, so the caller's model is untouched. `trace`, if a list, receives
    ("score", c, first_target, end_target) and ("train", c, first_target, end_target) events in order;
    a target may be trained on only after the event that scored it.
    """
    t0 = time.perf_counter()
    total = len(val) - 1
    model = copy.deepcopy(model)
    windows = sliding_windows(total, seq_len, stride)
    n_chunks = (total + chunk_tokens - 1) // chunk_tokens
    by_chunk = [[] for _ in range(n_chunks)]
    for w in windows:
        by_chunk[(w[0] + w[2]) // chunk_tokens].append(w)
    rank, world = _dist_info()
    sc = _Scorer(model, val, luts, device, total, return_nll)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    for p in params:  # every rank all-reduces every grad, even with no sequences of its own
        p.grad = torch.zeros_like(p)
    val_t = torch.as_tensor(np.asarray(val, dtype=np.int64))
    for c, ws in enumerate(by_chunk):
        lo, hi = _rank_slice(len(ws), rank, world)
        for b in range(lo, hi, batch_windows):
            sc.score(ws[b : min(b + batch_windows, hi)])
        if ws and trace is not None:
            trace.append(("score", c, min(w[0] + w[2] for w in ws), max(w[0] + w[1] for w in ws)))
        if c == n_chunks - 1:
            break
        a, e = c * chunk_tokens, min((c + 1) * chunk_tokens, total)
        if trace is not None:
            trace.append(("train", c, a, e))
        for g in opt.param_groups:  # cosine decay across chunks
            g["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * c / max(n_chunks - 1, 1)))
        n = min(seq_len, e - a)
        starts = list(range(a, e - n + 1, n))
        per_step = train_batch_seqs * world
        model.train()
        for _ in range(epochs):
            for k in range(0, len(starts), per_step):
                step_starts = starts[k : k + per_step]
                mine = step_starts[rank::world]
                opt.zero_grad(set_to_none=False)
                if mine:
                    x = torch.stack([val_t[s : s + n] for s in mine]).to(device)
                    y = torch.stack([val_t[s + 1 : s + n + 1] for s in mine]).to(device)
                    with autocast_for(device):
                        loss = model(x, y, reduction="sum") / (len(step_starts) * n)
                    loss.backward()
                if world > 1:
                    for p in params:
                        dist.all_reduce(p.grad)
                opt.step()
        if log is not None:
            log(f"  ttt_chunk [{c + 1}/{n_chunks}] bpb={sc.loss_sum / (math.log(2.0) * max(sc.bytes, 1)):.6f} "
                f"time={time.perf_counter() - t0:.1f}s")
    return sc.result(t0)
