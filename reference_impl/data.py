"""Challenge shard format (format_spec §1): reading, writing, validation-set loading, train streaming.

The auditor recomputes submissions' numbers from these files, so the reader is strict: anything the
challenge's own `load_data_shard` would reject raises `ShardError` here too.

This module is bundled verbatim into the single-file training script (see bundle.py): it may import
only the standard library, numpy and torch.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import torch

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4


class ShardError(ValueError):
    """A file that is not a valid challenge shard."""


def write_shard(path: str, tokens) -> int:
    """Write `tokens` as a challenge shard; returns the file size. Rejects ids that do not fit uint16."""
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ShardError("tokens must be one-dimensional")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= 1 << 16):
        raise ShardError("token ids must fit in uint16")
    if arr.size >= 1 << 31:
        raise ShardError("too many tokens for one shard")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = SHARD_MAGIC, SHARD_VERSION, arr.size
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(arr.astype("<u2").tobytes())
    return HEADER_BYTES + 2 * int(arr.size)


def read_shard_header(path: str) -> int:
    """Validate the header and exact file size; return the token count."""
    size = os.path.getsize(path)
    if size < HEADER_BYTES:
        raise ShardError(f"{path}: shorter than the 1024-byte header")
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if int(header[0]) != SHARD_MAGIC or int(header[1]) != SHARD_VERSION:
        raise ShardError(f"{path}: bad magic/version {int(header[0])}/{int(header[1])}")
    n = int(header[2])
    if n < 0 or size != HEADER_BYTES + 2 * n:
        raise ShardError(f"{path}: size {size} != 1024 + 2*{n}")
    return n


def read_shard(path: str) -> np.ndarray:
    """Token ids of one shard as uint16 (strict: header, magic, version and exact size)."""
    n = read_shard_header(path)
    return np.fromfile(path, dtype="<u2", count=n, offset=HEADER_BYTES)


def list_shards(data_dir: str, split: str) -> list[str]:
    """Sorted `fineweb_<split>_*.bin`, excluding CaseOps `_bytes_` sidecars that the glob also matches."""
    files = sorted(glob.glob(os.path.join(data_dir, f"fineweb_{split}_*.bin")))
    return [f for f in files if "_bytes_" not in os.path.basename(f)]


def load_validation_tokens(data_dir: str, seq_len: int) -> np.ndarray:
    """Concatenated val stream truncated to `usable + 1` tokens, usable = floor((N-1)/seq_len)*seq_len."""
    files = list_shards(data_dir, "val")
    if not files:
        raise ShardError(f"no fineweb_val_*.bin in {data_dir}")
    tokens = np.concatenate([read_shard(f) for f in files])
    usable = ((tokens.size - 1) // seq_len) * seq_len
    if usable <= 0:
        raise ShardError(f"validation stream of {tokens.size} tokens is shorter than seq_len {seq_len}")
    return tokens[: usable + 1]


class TokenStream:
    """Walks the sorted train shards in order and wraps around, as the challenge baseline does."""

    def __init__(self, files: list[str]):
        if not files:
            raise ShardError("no training shards")
        self.files = files
        self.file_idx = 0
        self.tokens = read_shard(files[0])
        self.pos = 0

    def _advance(self) -> None:
        self.file_idx = (self.file_idx + 1) % len(self.files)
        self.tokens = read_shard(self.files[self.file_idx])
        self.pos = 0

    def take(self, n: int) -> np.ndarray:
        chunks, left = [], n
        while left > 0:
            if self.pos >= self.tokens.size:
                self._advance()
                continue
            k = min(left, self.tokens.size - self.pos)
            chunks.append(self.tokens[self.pos : self.pos + k])
            self.pos += k
            left -= k
        return np.concatenate(chunks)


class DistributedTokenLoader:
    """Each step takes (local+1)*world_size contiguous tokens; rank r uses its own (local+1) slice."""

    def __init__(self, files: list[str], rank: int, world_size: int, device):
        self.rank, self.world_size, self.device = rank, world_size, device
        self.stream = TokenStream(files)

    def next_batch(self, global_tokens: int, seq_len: int, grad_accum_steps: int):
        local = global_tokens // (self.world_size * grad_accum_steps)
        local = (local // seq_len) * seq_len
        if local <= 0:
            raise ValueError("train batch too small for world_size * grad_accum_steps * seq_len")
        span = local + 1
        chunk = self.stream.take(span * self.world_size)
        mine = torch.from_numpy(chunk[self.rank * span : (self.rank + 1) * span].astype(np.int64))
        x = mine[:-1].reshape(-1, seq_len).to(self.device)
        y = mine[1:].reshape(-1, seq_len).to(self.device)
        return x, y
