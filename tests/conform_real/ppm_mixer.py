"""Conformance wrapper for the byte-level PPM-D mixture of the PR1933/PR1991 cluster (#1872 family).

The record's `_ppm_mixture_bpb` is compiled from its decoded train_gpt.py (an lzma exec blob, decoded from
../shared/corpus at run time and never executed as a whole). It returns one BPB, so the per-byte mixture
probabilities are read where it takes their log2, and grouped back into tokens by the byte length of each
target's piece: the token's score is the sum of its bytes' log-probabilities, as in the record's total.
The neural model is the numpy bigram stand-in; the SentencePiece model is a synthetic piece table.

    auditor conform tests/conform_real/ppm_mixer.py:score --vocab 1024
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from auditor.load.decode import decode_stub
from reference_impl.record_glue import Tap, bigram_logprobs, load_definitions

ROOT = Path(__file__).resolve().parents[3] / "shared" / "corpus"
RECORD = Path(os.environ.get("CONFORM_RECORD",
                             ROOT / "pr/PR1991/records/track_10min_16mb/2026-04-30_SP8192_PPMMixer_O5_TunedGate"))

CONFORM_KNOBS = {  # the record's own defaults (Hyperparameters: PPM_ORDER, PPM_H, PPM_L, PPM_T)
    "PPM_ORDER": {"default": 5, "role": "other"},
    "PPM_H": {"default": 0.99, "role": "other"},
    "PPM_L": {"default": 0.2, "role": "other"},
    "PPM_T": {"default": 0.8, "role": "other"},
}
_SOURCE: str | None = None
_TABLES: dict[int, tuple] = {}


class _Pieces:
    """SentencePiece stand-in: V distinct pieces of 1-3 bytes, a third of them word-initial ('▁')."""

    def __init__(self, vocab_size: int):
        letters = "etaoinshrdlucmfwypvbgkjqxz"
        self.pieces = []
        for i in range(vocab_size):
            word, n = "", i
            while True:
                word, n = word + letters[n % 26], n // 26
                if n == 0:
                    break
            self.pieces.append(("▁" + word) if i % 3 == 0 else word)

    def vocab_size(self) -> int:
        return len(self.pieces)

    def id_to_piece(self, i: int) -> str:
        return self.pieces[i]


def _source() -> str:
    global _SOURCE
    if _SOURCE is None:
        path = RECORD / "train_gpt.py"
        text = path.read_text(encoding="utf-8")
        decoded = decode_stub(text, str(path), {})
        _SOURCE = decoded.text if decoded else text
    return _SOURCE


def score(tokens, vocab_size: int) -> np.ndarray:
    if vocab_size not in _TABLES:
        sp = _Pieces(vocab_size)
        lens = np.array([len(((" " + p[1:]) if p.startswith("▁") else p).encode()) for p in sp.pieces])
        _TABLES[vocab_size] = (sp, lens, bigram_logprobs(vocab_size))
    sp, lens, lp_table = _TABLES[vocab_size]
    tap = Tap(np, ["log2"])
    ns = load_definitions(_source(), ["_ppm_mixture_bpb"], {"np": tap, "math": math})
    tokens = np.asarray(tokens, dtype=np.int64)
    tgt = tokens[1:]
    lp = lp_table[tokens[:-1], tgt]  # the stand-in's per-token natural-log probabilities
    env = {k: os.environ.get(k, str(v["default"])) for k, v in CONFORM_KNOBS.items()}
    ns["_ppm_mixture_bpb"](tgt, lp, sp, O=int(env["PPM_ORDER"]), H=float(env["PPM_H"]), L_=float(env["PPM_L"]),
                           T=float(env["PPM_T"]))
    per_byte = np.log(np.asarray(tap.calls["log2"][-1][0], dtype=np.float64))  # natural log of each byte's p
    ends = np.cumsum(lens[tgt])
    return np.add.reduceat(per_byte, ends - lens[tgt]) if len(per_byte) else np.zeros(len(tgt))
