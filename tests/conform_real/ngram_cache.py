"""Conformance wrapper for the hashed chunk n-gram cache of the PR809/PR826/PR843 cluster.

The record's own `NgramEvalCache`, hash functions, sliding segments and `eval_ngram` are compiled from its
train_gpt.py (read from ../shared/corpus at run time, never copied here); only the neural model is replaced
by the bigram stand-in. eval_ngram accumulates one loss per segment, so the per-token probabilities are read
where it takes their log (`np.log(final_p)`); the trace reports the record's own lookups (scored) and table
updates (consumed). Knobs are the environment variables the record reads.

    auditor conform tests/conform_real/ngram_cache.py:score --vocab 1024 --profile stress
"""

from __future__ import annotations

import math
import os
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from reference_impl.record_glue import Tap, load_definitions, make_standin_lm

ROOT = Path(__file__).resolve().parents[3] / "shared" / "corpus"
RECORD = Path(os.environ.get("CONFORM_RECORD", ROOT / "pr/PR826/records/track_10min_16mb/2026-03-27_ChunkNgram_0.2951"))

CONFORM_KNOBS = {
    "NGRAM_EVAL_CHUNK_TOKENS": {"default": 1_000_000, "role": "chunk", "stress": 16},
    "NGRAM_EVAL_BUCKETS": {"default": 4_194_304, "role": "table", "stress": 64},
    "EVAL_SEQ_LEN": {"default": 2048, "role": "window", "stress": 8},
    "EVAL_STRIDE": {"default": 64, "role": "stride", "stress": 8},
}
_DEFS = ["_env_bool", "_env_str", "_env_tuple_float", "_validate_choice", "VALID_TTT_OPTIMIZERS",
         "VALID_TTT_LR_SCHEDULES", "EvalResult", "_score_token_bytes", "_NGRAM_PRIMES", "_batch_hash_ctx",
         "_batch_hash_full", "NgramEvalCache", "_build_sliding_segments", "eval_ngram"]
_SOURCE: str | None = None
_MODELS: dict[int, nn.Module] = {}
torch.set_num_threads(1)  # tiny tensors: threads only add jitter on a shared CPU


def _record(trace) -> dict[str, Any]:
    """A fresh namespace holding the record's definitions (EvalConfig re-reads the environment)."""
    global _SOURCE
    if _SOURCE is None:
        _SOURCE = (RECORD / "train_gpt.py").read_text(encoding="utf-8")
    tap = Tap(np, ["log"])
    ns = {"np": tap, "torch": torch, "dist": dist, "F": F, "nn": nn, "Tensor": Tensor, "math": math, "os": os,
          "time": time, "dataclass": dataclass, "asdict": asdict, "field": field, "Any": Any, "_tap": tap}
    load_definitions(_SOURCE, [*_DEFS, "EvalConfig"], ns)
    if trace is not None:
        class TracedCache(ns["NgramEvalCache"]):
            def batch_lookup(self, tokens_np, positions, targets):
                trace.scored(positions)
                return super().batch_lookup(tokens_np, positions, targets)

            def update_batch(self, tokens_np, start_pos, end_pos):
                trace.consumed(range(start_pos, end_pos))
                return super().update_batch(tokens_np, start_pos, end_pos)

        ns["NgramEvalCache"] = TracedCache
    return ns


def score(tokens, vocab_size: int, trace=None) -> np.ndarray:
    ns = _record(trace)
    cfg = ns["EvalConfig"]()
    config = types.SimpleNamespace(eval=cfg, train=types.SimpleNamespace(train_seq_len=cfg.eval_seq_len))
    model = _MODELS.setdefault(vocab_size, make_standin_lm(vocab_size))
    luts = (torch.ones(vocab_size, dtype=torch.int16), torch.zeros(vocab_size, dtype=torch.bool),
            torch.zeros(vocab_size, dtype=torch.bool))
    val = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
    ns["eval_ngram"](config, model, 0, 1, torch.device("cpu"), val, luts)
    return np.log(np.concatenate([np.asarray(p, dtype=np.float64) for p, _ in ns["_tap"].calls["log"]]))
