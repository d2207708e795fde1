"""Unigram baseline: the BPB a model gets by predicting token frequencies from the training shards.

A trained model must beat this clearly; the demo and README quote both numbers side by side. Add-one
smoothing keeps every validation token finite. Scored on the same targets and byte LUTs as the model.
"""

from __future__ import annotations


import numpy as np

from .bpb import bits_per_byte, stream_lut_bytes
from .data import list_shards, read_shard


def train_counts(data_dir: str, vocab_size: int) -> np.ndarray:
    counts = np.zeros(vocab_size, dtype=np.float64)
    for f in list_shards(data_dir, "train"):
        counts += np.bincount(read_shard(f), minlength=vocab_size)[:vocab_size]
    return counts


def unigram_bpb(data_dir: str, val_tokens: np.ndarray, luts, vocab_size: int) -> tuple[float, float]:
    """(val_loss nats/token, val_bpb) of the add-one-smoothed unigram model on val targets 1..N-1."""
    counts = train_counts(data_dir, vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    targets = np.asarray(val_tokens, dtype=np.int64)[1:]
    loss_sum = float(-logp[targets].sum())
    nbytes = stream_lut_bytes(val_tokens, luts)
    return loss_sum / targets.size, bits_per_byte(loss_sum, nbytes)
