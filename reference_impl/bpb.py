"""Canonical bits-per-byte accounting (format_spec §2.1, §2.2, §2.4): byte LUTs and exact byte counts.

The canonical LUT credits each target `base_bytes[y] + (has_leading_space[y] and not is_boundary[x])`:
a leading "▁" is one space byte, counted only after a normal token, and byte-fallback pieces are one
byte each. Detection of submissions that get this wrong lives in lut_audit.py.

Bundled verbatim into the single-file training script (bundle.py): standard library and numpy only;
sentencepiece objects are passed in.
"""

from __future__ import annotations

import math

import numpy as np

SPACE_PIECE = "\u2581"


def build_sentencepiece_luts(sp, vocab_size: int):
    """(base_bytes int16, has_leading_space bool, is_boundary bool), each of length max(sp vocab, vocab_size)."""
    n = max(int(sp.vocab_size()), int(vocab_size))
    base_bytes = np.zeros(n, dtype=np.int16)
    has_leading_space = np.zeros(n, dtype=bool)
    is_boundary = np.ones(n, dtype=bool)
    for i in range(int(sp.vocab_size())):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        is_boundary[i] = False
        if sp.is_byte(i):
            base_bytes[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith(SPACE_PIECE):
            has_leading_space[i] = True
            piece = piece[1:]
        base_bytes[i] = len(piece.encode("utf-8"))
    return base_bytes, has_leading_space, is_boundary


def target_bytes(prev_tokens, targets, base_bytes, has_leading_space, is_boundary) -> np.ndarray:
    """Bytes credited to each target given the token before it (numpy int64 array)."""
    prev = np.asarray(prev_tokens, dtype=np.int64)
    tgt = np.asarray(targets, dtype=np.int64)
    extra = has_leading_space[tgt] & ~is_boundary[prev]
    return base_bytes[tgt].astype(np.int64) + extra.astype(np.int64)


def stream_lut_bytes(tokens, luts) -> int:
    """Total bytes credited to targets 1..N-1 of a token stream."""
    tokens = np.asarray(tokens, dtype=np.int64)
    return int(target_bytes(tokens[:-1], tokens[1:], *luts).sum())


def exact_document_bytes(docs) -> int:
    """UTF-8 byte length of the original documents: what BPB is meant to divide by."""
    return sum(len(d.encode("utf-8")) for d in docs)


def bits_per_byte(loss_sum_nats: float, byte_count: int) -> float:
    return float(loss_sum_nats) / (math.log(2.0) * float(byte_count))
