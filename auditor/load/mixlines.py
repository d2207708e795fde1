"""Score lines of byte-level mixtures (PPM and the like) in a log: what the submission printed for them.

A byte-level model mixed with token probabilities is not a distribution over tokens (C2). Submissions
that use one print the mixture's figure on its own line (`ppm_mix … mix_bpb=…`, `[ppm_mix] … mix=…`,
`ppm_mixer val_bpb:…`); when the claim is that figure, the claimed score is the mixture's. This scan
reads those lines only; judging them is rules/c2_normalized.py's job.

Linear in the log's length: one regex test per line, lines over MAX_LINE characters skipped.
"""

from __future__ import annotations

import re

from auditor.core.model import Figure

MAX_LINE = 4_000
_MIX_LINE = re.compile(r"\bppm|byte_?mix", re.I)
_MIX_FIGURE = re.compile(r"(?<![\w.])(mix_bpb|mix|val_bpb|bpb)\s*[:=]\s*(\d+\.\d+)")


def mixture_scores(path: str, text: str) -> list[Figure]:
    out: list[Figure] = []
    for no, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE or not _MIX_LINE.search(line):
            continue
        m = _MIX_FIGURE.search(line)
        if m is not None:
            out.append(Figure(float(m.group(2)), path, no, line.strip()[:200]))
    return out
