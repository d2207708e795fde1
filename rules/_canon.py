"""Canonical figures of the fixed FineWeb validation set, as printed by the challenge's own loaders.

`val_tokens` in a log is the number of scored targets after truncation to a multiple of the eval
sequence length, so one export has several legitimate figures (longer sequence lengths drop a longer
tail). Byte totals are implied by full-coverage evals: tokens * val_loss / (ln 2 * val_bpb).
"""

from __future__ import annotations

from dataclasses import dataclass

CAP_BYTES = 16_000_000
TRAIN_CAP_MS = 600_000
EVAL_CAP_S = 600.0
CANONICAL_TRAIN_SHARDS = 80
VAL_BYTES = 151_078_000  # ≈151.07-151.08 M depending on tokenizer normalisation and truncation tail
VAL_BYTES_TOLERANCE = 0.0006  # relative; the spread across tokenizers and tails is < 0.005 %
SEQ_TAIL_MAX = 65_536  # longest truncation tail we accept as "full" (seq_len up to 65,536)


@dataclass(frozen=True)
class ValExport:
    name: str
    vocab: int | None
    raw_targets_max: int  # upper bound of N-1 for the export (untruncated targets)
    logged: tuple[int, ...]  # figures seen in merged logs
    bpb_per_nat: float  # canonical val_bpb / val_loss ratio
    note: str = ""


EXPORTS: tuple[ValExport, ...] = (
    ValExport("sp1024", 1024, 62_022_655, (62_021_632, 62_013_440, 61_997_056), 0.592256),
    ValExport("sp4096", 4096, 45_510_655, (45_508_608, 45_514_752), 0.434588),
    ValExport("sp8192", 8192, 40_542_207, (40_540_160, 40_538_112), 0.387131),
    ValExport("sp8192-caseops", 8192, 47_853_567, (47_851_520,), 0.456961, "CaseOps tokenizer with byte sidecar"),
    ValExport("byte260", 260, 151_131_135, (151_130_112,), 1.443173),
    ValExport("bytes", 256, 151_077_887, (151_076_864,), 1.442695),
)
OLD_SP1024_EXPORT = 63_779_840  # the naive baseline's older export; not the fixed set used since


def match_export(val_tokens: int, vocab: int | None = None) -> tuple[ValExport | None, str]:
    """Which export a logged val_tokens figure belongs to: (export, 'exact' | 'tail' | 'none')."""
    candidates = [e for e in EXPORTS if vocab is None or e.vocab in (vocab, None)] or list(EXPORTS)
    for e in candidates:
        if val_tokens in e.logged:
            return e, "exact"
    for e in candidates:
        if e.raw_targets_max - SEQ_TAIL_MAX <= val_tokens <= e.raw_targets_max:
            return e, "tail"
    return None, "none"


def export_for_vocab(vocab: int | None, sidecar: bool = False) -> ValExport | None:
    if vocab is None:
        return None
    if vocab == 8192 and sidecar:
        return EXPORTS[3]
    for e in EXPORTS:
        if e.vocab == vocab:
            return e
    return None
