"""NO_VAL_IN_TRAIN: no validation data in training or in the artifact (log fingerprints)."""

from __future__ import annotations

from auditor.core.model import Finding
from rules._util import run_label
from auditor.core.contract import Rule, RuleContext
from rules._cite import README_RULES, issue, pr
from rules._canon import CANONICAL_TRAIN_SHARDS, EXPORTS, match_export

EXPLANATION = """
Validation data may not be used during training, neither directly nor compressed into the artifact
("paid prefix"). Logs reveal one known leak: data prepared with the CaseOps script's default of
10,000 validation documents, which puts 40,000 validation documents into the training shards. Its
fingerprint is a train shard count far above the canonical 80 (e.g. 1,499) and a doubled
`datasets/datasets` path. The auditor reports shard counts above the canonical download and fails
the combined fingerprint. Code-level use of validation tokens in training is checked by C3_SCORE_FIRST.
"""


def _tokens_per_text(run) -> float:
    """How many more tokens (so shards) the run's tokenizer makes of the same text than sp1024, whose
    export the canonical 80-shard download is: a byte-level dataset needs ~2.4x the shards."""
    if run.val_tokens is None:
        return 1.0
    export, _ = match_export(int(run.val_tokens.value))
    base = EXPORTS[0].raw_targets_max
    return max(1.0, export.raw_targets_max / base) if export is not None else 1.0


def check(ctx: RuleContext) -> list[Finding]:
    out: list[Finding] = []
    seen = 0
    for run in ctx.facts.distinct_runs:
        ts = run.train_shards
        if ts is None:
            continue
        seen += 1
        n = int(ts.value)
        doubled = bool(run.train_shards_path and "datasets/datasets" in run.train_shards_path)
        label = run_label(run)
        if doubled and n > 2 * CANONICAL_TRAIN_SHARDS:
            out.append(RULE.finding("fail", f"{label}: {n:,} train shards from a doubled `datasets/datasets` path: the "
                                            "fingerprint of data prepared with validation documents in training",
                                    [ts.evidence()], train_shards=n))
        elif n > 5 * CANONICAL_TRAIN_SHARDS * _tokens_per_text(run):
            out.append(RULE.finding("warn", f"{label}: {n:,} train shards (canonical download: 80); check how the data "
                                            "was prepared and that no validation document is in them",
                                    [ts.evidence()], train_shards=n))
        elif doubled:
            out.append(RULE.finding("info", f"{label}: doubled `datasets/datasets` path; check the data preparation",
                                    [ts.evidence()]))
    if not out:
        out.append(RULE.finding("pass" if seen else "info",
                                "train shard counts show no validation-overlap fingerprint" if seen
                                else "no train shard count in the logs"))
    return out


RULE = Rule(
    id="NO_VAL_IN_TRAIN",
    title="No validation data in training",
    summary="Log fingerprints of validation documents in the training data (train shard counts, doubled paths).",
    explanation=EXPLANATION,
    citations=(README_RULES + "#faq", issue(2127), pr(2146), pr(168)),
    check=check,
)
