"""Detect the known byte-LUT bugs in a submission (for the auditor's BPB_BYTES rule).

Two bugs seen in real submissions inflate the byte denominator and so deflate BPB: a leading "▁"
already included in base_bytes while the leading-space term adds it again (spaces counted twice), and
byte-fallback pieces `<0xNN>` credited 3 bytes instead of 1. A tokenizer without a standalone "▁"
piece has the same effect on every lone space (Issue #897). Each differing LUT entry is classified so a
finding can name the bug rather than just say "differs".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bpb import SPACE_PIECE, build_sentencepiece_luts


@dataclass
class LutFinding:
    kind: str  # space_counted_twice | byte_fallback_miscounted | other_mismatch | no_space_piece | shape
    count: int
    example_ids: list[int] = field(default_factory=list)
    detail: str = ""


def audit_luts(sp, base_bytes, has_leading_space=None, is_boundary=None) -> list[LutFinding]:
    """Compare a submission's LUT arrays with the canonical ones built from the same tokenizer.

    Classifies every differing id so the auditor can name the bug rather than just say "differs".
    Passing only `base_bytes` checks base bytes; the other arrays are compared when given.
    """
    ref_base, ref_space, ref_bound = build_sentencepiece_luts(sp, len(base_bytes))
    base = np.asarray(base_bytes).astype(np.int64)
    findings: list[LutFinding] = []
    if base.shape[0] < int(sp.vocab_size()):
        return [LutFinding("shape", 1, [], f"LUT has {base.shape[0]} entries, tokenizer {sp.vocab_size()}")]
    twice, byte3, other = [], [], []
    for i in range(int(sp.vocab_size())):
        if base[i] == ref_base[i]:
            continue
        if ref_space[i] and base[i] - ref_base[i] in (1, len(SPACE_PIECE.encode("utf-8"))):
            twice.append(i)
        elif sp.is_byte(i):
            byte3.append(i)
        else:
            other.append(i)
    if twice:
        findings.append(LutFinding("space_counted_twice", len(twice), twice[:5],
                                   "base_bytes of '▁'-pieces include the space that the leading-space term adds again"))
    if byte3:
        findings.append(LutFinding("byte_fallback_miscounted", len(byte3), byte3[:5],
                                   f"byte-fallback pieces credited {sorted(set(int(base[i]) for i in byte3))} bytes instead of 1"))
    if other:
        findings.append(LutFinding("other_mismatch", len(other), other[:5], "base_bytes differ from the canonical LUT"))
    for name, arr, ref in (("has_leading_space", has_leading_space, ref_space), ("is_boundary", is_boundary, ref_bound)):
        if arr is None:
            continue
        a = np.asarray(arr).astype(bool)[: int(sp.vocab_size())]
        bad = np.nonzero(a != ref[: int(sp.vocab_size())])[0]
        if bad.size:
            findings.append(LutFinding("other_mismatch", int(bad.size), [int(b) for b in bad[:5]],
                                       f"{name} differs from the canonical LUT"))
    if sp.piece_to_id(SPACE_PIECE) == sp.unk_id():
        findings.append(no_space_piece_finding())
    return findings


def no_space_piece_finding() -> LutFinding:
    return LutFinding("no_space_piece", 1, [],
                      "tokenizer has no standalone '▁' piece: a lone space falls back to bytes E2 96 81, "
                      "credited 3 bytes instead of 1")


def audit_tokenizer(sp) -> list[LutFinding]:
    """Tokenizer-only check (no LUT arrays available): the Issue #897 missing-'▁' hazard."""
    return [no_space_piece_finding()] if sp.piece_to_id(SPACE_PIECE) == sp.unk_id() else []


def buggy_luts(sp, vocab_size: int, bug: str):
    """Reproduce a known LUT bug (for tests and for the auditor's demonstrations)."""
    base, space, bound = build_sentencepiece_luts(sp, vocab_size)
    base = base.copy()
    if bug == "space_counted_twice":
        base[space] += 1
    elif bug == "byte_fallback_3":
        for i in range(int(sp.vocab_size())):
            if sp.is_byte(i):
                base[i] = 3
    else:
        raise ValueError(f"unknown bug {bug!r}")
    return base, space, bound
