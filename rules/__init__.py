"""The rulebook: every rule the auditor applies, in report order.

Each module in RULE_MODULES defines RULE (a rules.base.Rule). IDs are stable: reports, SARIF and CI
configuration (`--fail-on`) refer to them.
"""

from __future__ import annotations

import importlib

from auditor.core.contract import Rule

RULE_MODULES = [
    "files",
    "submission_json",
    "artifact_size",
    "train_time",
    "eval_time",
    "full_val",
    "bpb_bytes",
    "seeds",
    "significance",
    "claim_consistency",
    "no_val_in_train",
    "c1_causal",
    "c2_normalized",
    "c3_score_first",
    "c4_single_pass",
    "no_train_data_at_eval",
    "no_network",
    "evalue_random_stream",
]


def all_rules() -> list[Rule]:
    rules = []
    for name in RULE_MODULES:
        module = importlib.import_module(f"rules.{name}")
        rules.extend(getattr(module, "RULES", [module.RULE]))
    return rules


def get_rule(rule_id: str) -> Rule | None:
    for r in all_rules():
        if r.id == rule_id.upper():
            return r
    return None


def rulings_by_rule() -> dict:
    """Rule ID -> the dated rulings that grade its findings (rules/_rulings.py)."""
    from rules._rulings import rulings_for

    return {r.id: rulings_for(r.id) for r in all_rules()}
