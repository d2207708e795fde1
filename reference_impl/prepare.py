"""Build a challenge-format dataset from documents: tokenizer, train/val shards and a manifest.

Mirrors the challenge export (format_spec §1.3): a fixed, seeded document order; validation = the first
`val_docs` documents; each document encoded as [BOS] + ids with no EOS; val and train never share a
shard. The tokenizer is trained on the training documents only, so the validation text never shapes it.
The manifest records the exact UTF-8 byte count of the validation documents next to the LUT count, so
any BPB computed on this data can be checked against the true denominator.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from . import tokenizer as tok
from .bpb import build_sentencepiece_luts, exact_document_bytes, stream_lut_bytes
from .data import write_shard


def shuffle_documents(docs: list[str], seed: int) -> list[str]:
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    return [docs[i] for i in order]


def _write_split(out_dir: Path, split: str, encoded: list[list[int]], shard_size: int) -> list[dict]:
    stream = np.fromiter((t for doc in encoded for t in doc), dtype=np.int64)
    files = []
    for k, start in enumerate(range(0, max(stream.size, 1), shard_size)):
        name = f"fineweb_{split}_{k:06d}.bin"
        chunk = stream[start : start + shard_size]
        write_shard(str(out_dir / name), chunk)
        files.append({"name": name, "tokens": int(chunk.size)})
    return files


def prepare_dataset(docs: list[str], out_dir: str, vocab_size: int, val_docs: int, *, seed: int = 1337,
                    shard_size: int = 10**8, source: str = "custom", log=print) -> dict:
    """Write tokenizer, shards and manifest.json under `out_dir`; returns the manifest."""
    docs = [d for d in docs if d]
    if val_docs <= 0 or val_docs >= len(docs):
        raise ValueError(f"val_docs must be in 1..{len(docs) - 1} for {len(docs)} documents")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    docs = shuffle_documents(docs, seed)
    val, train = docs[:val_docs], docs[val_docs:]
    model_path = out / f"tokenizer_{vocab_size}_bpe.model"
    log(f"prepare: training SentencePiece BPE vocab={vocab_size} on {len(train)} train docs")
    report = tok.train_sentencepiece(train, vocab_size, str(model_path))
    if report.docs_over_default_limit:
        log(f"prepare: {report.docs_over_default_limit} docs exceed SentencePiece's default "
            f"max_sentence_length; raised it to {report.max_sentence_length}")
    if not report.has_space_piece:
        log("prepare: warning: tokenizer has no standalone '\u2581' piece (spaces would cost 3 fallback bytes)")
    sp = tok.load(str(model_path))
    enc_val = tok.encode_documents(sp, val)
    enc_train = tok.encode_documents(sp, train)
    val_files = _write_split(out, "val", enc_val, shard_size)
    train_files = _write_split(out, "train", enc_train, shard_size)
    val_stream = np.fromiter((t for d in enc_val for t in d), dtype=np.int64)
    luts = build_sentencepiece_luts(sp, sp.vocab_size())
    val_bytes_exact = exact_document_bytes(val)
    val_bytes_lut = stream_lut_bytes(val_stream, luts)
    manifest = {
        "format": "pgolf-reference-dataset-v1",
        "source": source,
        "shuffle_seed": seed,
        "num_docs": len(docs),
        "num_val_docs": len(val),
        "num_train_docs": len(train),
        "append_eos": False,
        "tokenizer": {"file": model_path.name, "vocab_size": int(sp.vocab_size()), "bos_id": int(sp.bos_id()),
                      "max_sentence_length": report.max_sentence_length,
                      "docs_over_default_max_sentence_length": report.docs_over_default_limit,
                      "has_space_piece": report.has_space_piece},
        "val": {"files": val_files, "tokens": int(val_stream.size), "bytes_exact": val_bytes_exact,
                "bytes_lut_all_targets": val_bytes_lut, "bytes_lut_minus_exact": val_bytes_lut - val_bytes_exact},
        "train": {"files": train_files, "tokens": int(sum(f["tokens"] for f in train_files)),
                  "bytes_exact": exact_document_bytes(train)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    log(f"prepare: val {len(val)} docs {val_stream.size} tokens {val_bytes_exact} bytes "
        f"(LUT {val_bytes_lut}, diff {val_bytes_lut - val_bytes_exact:+d}); train {len(train)} docs "
        f"{manifest['train']['tokens']} tokens")
    return manifest
