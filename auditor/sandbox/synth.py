"""Synthetic challenge data for a sandboxed run: a tokenizer of the size the script expects, train
shards of English-like text, and a validation stream of i.i.d. uniform tokens.

Why uniform validation tokens: against such a stream no causal, normalized predictor can beat the
uniform distribution by more than `a` nats except with probability e^-a (see gauntlet.evalue_test), so
the script's own reported loss becomes a test of its evaluation path.

BOS tokens are placed in the validation stream at fixed positions (every `bos_every` tokens,
independent of the data) for scripts that split the stream into documents; those target positions are
excluded from the bound because a causal predictor may legitimately learn to expect them.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference_impl.data import write_shard
from reference_impl.text_sources import generated_documents
from reference_impl.tokenizer import load as load_sp
from reference_impl.tokenizer import train_sentencepiece

VAL_TARGETS = 1 << 16  # scored positions for any power-of-two sequence length up to 2^16
BOS_EVERY = 8192
TRAIN_TOKENS = 1 << 18
VOCAB_MIN, VOCAB_MAX = 300, 65536


@dataclass
class SynthData:
    data_dir: Path  # DATA_DIR (holds datasets/ and tokenizers/)
    dataset_dir: Path  # DATA_PATH
    tokenizer_path: Path  # TOKENIZER_PATH
    vocab_size: int
    special_ids: list[int]
    val_tokens: int  # tokens in the validation stream (= targets + 1)
    bos_id: int
    bos_every: int
    seed: int

    @property
    def v_prime(self) -> int:
        """Ids the validation stream draws from: every id that is not a control/unknown/unused piece."""
        return self.vocab_size - len(self.special_ids)

    def bos_targets(self, n_targets: int) -> int:
        """BOS tokens among target positions 1..n_targets (target p predicts token p)."""
        return n_targets // self.bos_every if self.bos_every else 0


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _piece(text: str, score: float) -> bytes:
    raw = text.encode("utf-8")
    body = b"\x0a" + _varint(len(raw)) + raw + b"\x15" + struct.pack("<f", score) + b"\x18\x01"
    return b"\x0a" + _varint(len(body)) + body


def build_tokenizer(path: Path, vocab_size: int, docs: list[str]) -> None:
    """Train BPE with the challenge's settings, then pad with distinct normal pieces to exactly
    `vocab_size` (scripts assert sp.vocab_size() == VOCAB_SIZE; a small corpus yields fewer pieces).
    Padding appends repeated `pieces` fields to the serialized ModelProto, which protobuf merges."""
    train_sentencepiece(docs, min(vocab_size, 8192), str(path))
    data = path.read_bytes()
    have = load_sp(str(path)).vocab_size()
    if have > vocab_size:
        raise ValueError(f"tokenizer has {have} pieces, more than the {vocab_size} requested")
    extra = b"".join(_piece(f"\u2581zq{i:05d}", -1000.0 - i) for i in range(vocab_size - have))
    path.write_bytes(data + extra)
    got = load_sp(str(path)).vocab_size()
    if got != vocab_size:
        raise ValueError(f"padded tokenizer has {got} pieces, expected {vocab_size}")


def make_data(root: Path, vocab_size: int, seed: int = 0, val_targets: int = VAL_TARGETS,
              bos_every: int = BOS_EVERY, train_tokens: int = TRAIN_TOKENS, redraw_from: int | None = None) -> SynthData:
    """Write DATA_DIR/{datasets/fineweb10B_sp<V>, tokenizers/fineweb_<V>_bpe.model} under root.
    `redraw_from=k` (the flip test): the same data, except that validation tokens k, k+1, ... are drawn
    again from an independent generator (BOS positions stay BOS)."""
    if not VOCAB_MIN <= vocab_size <= VOCAB_MAX:
        raise ValueError(f"vocab size {vocab_size} outside [{VOCAB_MIN}, {VOCAB_MAX}]")
    data_dir = root
    ds = data_dir / "datasets" / f"fineweb10B_sp{vocab_size}"
    tok_dir = data_dir / "tokenizers"
    ds.mkdir(parents=True, exist_ok=True)
    tok_dir.mkdir(parents=True, exist_ok=True)
    tok_path = tok_dir / f"fineweb_{vocab_size}_bpe.model"
    docs = generated_documents(1500, seed=seed)
    build_tokenizer(tok_path, vocab_size, docs)
    sp = load_sp(str(tok_path))
    special = [i for i in range(sp.vocab_size()) if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i)]
    bos = sp.bos_id() if sp.bos_id() >= 0 else 1

    train: list[int] = []
    k = 0
    while len(train) < train_tokens:
        more = generated_documents(400, seed=seed * 1000 + 17 + k)
        for ids in sp.encode(more):
            train.append(bos)
            train.extend(ids)
        k += 1
    train_arr = np.asarray(train[:train_tokens], dtype=np.uint16)
    half = train_arr.size // 2
    write_shard(str(ds / "fineweb_train_000000.bin"), train_arr[:half])
    write_shard(str(ds / "fineweb_train_000001.bin"), train_arr[half:])

    allowed = np.setdiff1d(np.arange(vocab_size), np.asarray(special, dtype=np.int64))
    rng = np.random.default_rng(np.random.SeedSequence([seed, vocab_size, 0xE7A1]))
    val = allowed[rng.integers(0, allowed.size, size=val_targets + 1)].astype(np.uint16)
    data = SynthData(data_dir, ds, tok_path, vocab_size, special, int(val.size), int(bos), bos_every, seed)
    if redraw_from is not None:
        val = redrawn(data, val, redraw_from)
    if bos_every:
        val[::bos_every] = bos
    write_shard(str(ds / "fineweb_val_000000.bin"), val)
    return data


def redrawn(data: SynthData, val: np.ndarray, k: int) -> np.ndarray:
    """The flip test's second stream: `val` with tokens k, k+1, ... drawn again from an independent
    generator (BOS positions stay BOS)."""
    out = np.array(val, dtype=np.uint16, copy=True)
    if 0 < k < out.size:
        allowed = np.setdiff1d(np.arange(data.vocab_size), np.asarray(data.special_ids, dtype=np.int64))
        rng2 = np.random.default_rng(np.random.SeedSequence([data.seed, data.vocab_size, 0xF11B, k]))
        out[k:] = allowed[rng2.integers(0, allowed.size, size=out.size - k)]
        if data.bos_every:
            out[::data.bos_every] = data.bos_id
    return out


_VOCAB_PATTERNS = (
    re.compile(r"""["']VOCAB_SIZE["']\s*,\s*["']?(\d{3,5})"""),
    re.compile(r"""\bvocab_size\s*(?::\s*int\s*)?=\s*(?:int\()?\s*(\d{3,5})\b"""),
    re.compile(r"fineweb10B_sp(\d{3,5})"),
    re.compile(r"fineweb_(\d{3,5})_bpe"),
)


def expected_vocab(source: str | None, default: int = 1024) -> tuple[int, str]:
    """The vocabulary size the script defaults to, read from its text (never by running it)."""
    for pat in _VOCAB_PATTERNS:
        m = pat.search(source or "")
        if m and VOCAB_MIN <= int(m.group(1)) <= VOCAB_MAX:
            return int(m.group(1)), f"read from the script ({m.group(0)[:60]})"
    return default, f"not found in the script; assumed {default}"


def uniform_loss(v_prime: int) -> float:
    return math.log(v_prime)
