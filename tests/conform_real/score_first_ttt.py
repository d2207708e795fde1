"""Conformance wrapper for chunked score-first test-time training (merged SP8192 ParallelResid record).

The record's `eval_val_sliding_ttt` is compiled from its decoded train_gpt.py (an lzma exec blob read from
../shared/corpus at run time, never executed as a whole); the GPT is replaced by the trainable torch
stand-in, deep-copied for every call because TTT changes it. The record only accumulates a loss sum, so
per-token losses are read where it slices them out of its cross-entropy (`nll[i, s:wlen]`); each window's
start comes from its own read of the validation tokens. The trace reports those slices (scored) and the
token ranges its optimizer trains on (consumed: reads made while gradients are enabled).

    auditor conform tests/conform_real/score_first_ttt.py:score --vocab 256 --profile stress
"""

from __future__ import annotations

import copy
import math
import os
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from auditor.load.decode import decode_stub
from reference_impl.record_glue import Tap, load_definitions, make_standin_lm

ROOT = Path(__file__).resolve().parents[3] / "shared" / "corpus"
RECORD = Path(os.environ.get("CONFORM_RECORD", ROOT / "merged/records/track_10min_16mb/"
                             "2026-04-08_SP8192_ParallelResid_ScoreFirstTTT"))

CONFORM_KNOBS = {  # the record's Hyperparameters defaults
    "TTT_CHUNK_TOKENS": {"default": 32768, "role": "chunk", "stress": 16},
    "EVAL_SEQ_LEN": {"default": 2048, "role": "window", "stress": 8},
    "EVAL_STRIDE": {"default": 64, "role": "stride", "stress": 4},
    "TTT_EPOCHS": {"default": 3, "role": "other"},
    "TTT_LR": {"default": 0.005, "role": "other", "stress": 0.5},
}
_SOURCE: str | None = None
_MODELS: dict[int, torch.nn.Module] = {}
torch.set_num_threads(1)


class _Losses(torch.Tensor):
    """The record's per-window cross-entropy: remembers the rows and spans it slices out to score."""

    sink: list = []
    windows: list = []  # window starts of the batch whose cross-entropy ran last
    trace = None

    def __getitem__(self, idx):
        out = super().__getitem__(idx)
        if isinstance(idx, tuple) and len(idx) == 2 and isinstance(idx[1], slice):
            start = _Losses.windows[int(idx[0])] + idx[1].start + 1  # target index of nll[i, j]: ws + j + 1
            stop = start + (idx[1].stop - idx[1].start)
            if _Losses.trace is not None:
                _Losses.trace.scored(range(start, stop))
            _Losses.sink.append((start, stop, out.detach().as_subclass(torch.Tensor)))
        return out


class _Tokens:
    """The validation tokens: records which window each scoring read starts and what training consumes."""

    def __init__(self, tokens: torch.Tensor, trace):
        self.t, self.trace, self.windows = tokens, trace, []

    def numel(self) -> int:
        return self.t.numel()

    def __getitem__(self, sl: slice) -> torch.Tensor:
        if torch.is_grad_enabled():
            if self.trace is not None:
                self.trace.consumed(range(sl.start, min(sl.stop, self.t.numel())))
        else:
            self.windows.append(sl.start)
        return self.t[sl]


def _source() -> str:
    global _SOURCE
    if _SOURCE is None:
        path = RECORD / "train_gpt.py"
        decoded = decode_stub(path.read_text(encoding="utf-8"), str(path), {})
        _SOURCE = decoded.text
    return _SOURCE


def score(tokens, vocab_size: int, trace=None) -> np.ndarray:
    env = {k: os.environ.get(k, str(v["default"])) for k, v in CONFORM_KNOBS.items()}
    h = types.SimpleNamespace(eval_seq_len=int(env["EVAL_SEQ_LEN"]), ttt_chunk_tokens=int(env["TTT_CHUNK_TOKENS"]),
                              ttt_lr=float(env["TTT_LR"]), ttt_epochs=int(env["TTT_EPOCHS"]), ttt_freeze_blocks=0,
                              ttt_momentum=0.9, ttt_batch_seqs=32, ttt_grad_clip=1.0)

    def cross_entropy(logits, targets, **kwargs):
        rows = targets.numel() // h.eval_seq_len  # the batch's rows: the last windows the record read
        _Losses.windows = val.windows[len(val.windows) - rows:]
        return F.cross_entropy(logits, targets, **kwargs).as_subclass(_Losses)

    ns = {"torch": Tap(torch, replace={"compile": lambda fn, **kw: fn}), "math": math, "time": time,
          "dist": dist, "F": Tap(F, replace={"cross_entropy": cross_entropy}), "log": lambda *a, **k: None}
    load_definitions(_source(), ["eval_val_sliding_ttt"], ns)
    model = copy.deepcopy(_MODELS.setdefault(vocab_size, make_standin_lm(vocab_size)))
    model.blocks = torch.nn.ModuleList()
    val = _Tokens(torch.as_tensor(np.asarray(tokens, dtype=np.int64)), trace)
    data = types.SimpleNamespace(val_tokens=val, base_bytes_lut=torch.ones(vocab_size, dtype=torch.int16),
                                 has_leading_space_lut=torch.zeros(vocab_size, dtype=torch.bool),
                                 is_boundary_token_lut=torch.zeros(vocab_size, dtype=torch.bool))
    _Losses.sink, _Losses.trace = [], trace
    ns["eval_val_sliding_ttt"](h, model, 0, 1, torch.device("cpu"), data, stride=int(env["EVAL_STRIDE"]))
    out = np.full(len(tokens) - 1, np.nan)  # a position the record never scores stays NaN: a harness error
    for start, stop, losses in _Losses.sink:
        out[start - 1:stop - 1] = -losses.double().numpy()
    return out
