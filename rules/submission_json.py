"""SUBMISSION_JSON: the metadata file parses and carries the figures a leaderboard row needs."""

from __future__ import annotations

from auditor.facts import claim_tolerance
from auditor.core.model import Evidence, Finding
from auditor.core.contract import Rule, RuleContext
from rules._cite import README_RULES

EXPLANATION = """
submission.json must be valid JSON with at least the submitter's name, GitHub ID and the claimed
val_bpb. Real files vary a lot, so the auditor normalises leniently and says what it did: val_bpb
falls back to mean_val_bpb, mean_bpb, then the mean of per-seed values; seeds may be a list or a
dict keyed by seed strings; sizes fall back from bytes_total to artifact_bytes_max and per-seed
artifact_bytes. Types are checked against a JSON schema shipped with the auditor; duplicated keys,
NaN/Infinity constants and strings where numbers belong are reported.
"""

WANTED = ("name", "author", "github_id", "val_bpb")


def check(ctx: RuleContext) -> list[Finding]:
    sub = ctx.submission
    meta = sub.meta
    if meta.path is None:
        return [RULE.finding("info", "no submission JSON to check (see FILES)")]
    ev = [Evidence(meta.path)]
    if meta.parse_error:
        return [RULE.finding("fail", f"{meta.path}: {meta.parse_error}", ev)]
    out = [RULE.judge(i) for i in meta.issues]
    raw = meta.raw or {}
    missing = [k for k in WANTED if k not in raw and not (k == "val_bpb" and meta.val_bpb is not None)
               and not (k == "name" and meta.name)]
    if meta.val_bpb is None and meta.val_loss is None:
        out.append(RULE.finding("fail", "no val_bpb claim can be read from the file", ev))
    elif meta.val_bpb is None:
        scores = [ctx.facts.score(r).val_bpb for r in ctx.facts.scored_runs()]
        holds_bpb = bool(scores) and abs(sum(scores) / len(scores) - meta.val_loss) <= claim_tolerance(meta.val_loss)
        out.append(RULE.finding("info" if holds_bpb else "warn",
                                "no val_bpb key; only val_loss is given" + (
                                    ", and it equals the logs' mean val_bpb (the claim is under the wrong key)"
                                    if holds_bpb else " (CLAIM_CONSISTENCY checks whether it holds a BPB value)"),
                                [Evidence(meta.path, meta.line_of.get("val_loss"))]))
    elif missing:
        # the claim is readable; name/author/github_id are metadata a maintainer completes at merge
        out.append(RULE.finding("info", "missing keys: " + ", ".join(missing), ev))
    if not [f for f in out if f.severity in ("fail", "warn")]:
        claim = f"val_bpb {meta.val_bpb:.8f}" if meta.val_bpb is not None else f"val_loss {meta.val_loss}"
        out.append(RULE.finding("pass", f"{meta.path} parses; claims {claim}", ev))
    return out


RULE = Rule(
    id="SUBMISSION_JSON",
    title="submission.json parses and states the claim",
    summary="The metadata file is valid JSON with name, author, GitHub ID and val_bpb of the right types.",
    explanation=EXPLANATION,
    citations=(README_RULES + "#submission-process",),
    check=check,
)
