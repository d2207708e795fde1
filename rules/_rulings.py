"""The rulings the checks rely on, with the dates they took effect (see docs/rules in the rulebook).

Each entry is what maintainers ruled, when, and where; `grade` applies the one a finding depends on
to the submission's date. Dates come from the public rulings: the #1797 audit (2026-04-26) for
document-boundary masking, the #1902 frontier pass (2026-04-29) for three seeds, the #2146 strict
rerun (2026-05-02) for train times strictly under 600 s.
"""

from __future__ import annotations

from auditor.core.contract import Ruling
from auditor.core.model import Finding
from rules._cite import README_RULES, issue, pr

RULINGS: dict[str, Ruling] = {r.id: r for r in (
    Ruling("THREE_SEEDS", "A record's claim is the mean of at least three seeds of the submitted configuration.",
           "2026-04-29", pr(1902), ("SEEDS", "CLAIM_CONSISTENCY")),
    Ruling("STRICT_600S", "Every seed's train_time is strictly under 600,000 ms; an overshoot of the per-step cap "
           "check is no longer tolerated.", "2026-05-02", pr(2146), ("TRAIN_TIME",)),
    Ruling("SMEAR_BOS_MASK", "Layers that mix the previous position's state into a position (SmearGate) must be "
           "masked at document boundaries (BOS).", "2026-04-26",
           pr(1797) + "#issuecomment-4322526174", ("C1_CAUSAL",), disputed=issue(1988)),
    Ruling("PPM_BYTE_MIX_C2", "A byte-level model mixed with token probabilities spread over bytes is not a "
           "normalized distribution over tokens.", "2026-04-27", issue(1872), ("C2_NORMALIZED",)),
    Ruling("PREQUANT_TTT_C3", "Fine-tuning on validation tokens before they are scored (pre-quantization TTT) "
           "is adaptation before scoring.", "2026-04-10", pr(1376), ("C3_SCORE_FIRST",)),
    Ruling("NGRAM_HASH_C2", "Hashed n-gram caches that are not normalized over the vocabulary, or whose key "
           "holds the target, are disallowed.", "2026-03-27", pr(982), ("C1_CAUSAL", "C2_NORMALIZED")),
    Ruling("TTT_SCORE_FIRST", "Test-time training may only use validation tokens that were already scored.",
           "2026-03-20", issue(402), ("C3_SCORE_FIRST",)),
    Ruling("DECIMAL_CAP", "The artifact (code bytes + compressed model bytes) is at most 16,000,000 decimal "
           "bytes on every seed.", "2026-03-18", README_RULES + "#faq", ("ARTIFACT_SIZE",)),
    Ruling("COMPRESSED_CODE", "Code may be counted as the LZMA self-extracting wrapper of the script (the "
           "records' own minify + compress + base85 recipe).", "2026-04-06", pr(1412), ("ARTIFACT_SIZE",)),
)}


def rulings_for(rule_id: str) -> list[Ruling]:
    return [r for r in RULINGS.values() if rule_id in r.rules]


def grade(ctx, finding: Finding, ruling_id: str) -> Finding:
    """Grade a fail/warn that rests on one ruling against the date the folder is judged by.

    Before the ruling took effect the finding becomes `info` ("predates the ruling of …"); a disputed
    ruling makes at most a medium-confidence warn. With no known date every ruling is in force.
    """
    r = RULINGS[ruling_id]
    finding.data["ruling"] = r.id
    if finding.severity not in ("fail", "warn"):
        return finding
    date = ctx.facts.judged_on if ctx.facts is not None else None
    if date is not None and date < r.effective:
        finding.severity = "info"
        finding.message = f"predates the ruling of {r.effective} ({r.source}): {finding.message}"
    elif r.disputed and finding.severity == "fail":
        finding.severity = "warn"
        finding.confidence = "medium"
        finding.message += f" (the ruling is disputed: {r.disputed})"
    finding.__post_init__()  # keep severity/confidence typed
    return finding
