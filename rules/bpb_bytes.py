"""BPB_BYTES: the byte denominator implied by the logged score matches the validation text."""

from __future__ import annotations

import math

from auditor.core.model import Evidence, Finding
from rules._util import run_label
from auditor.core.contract import Rule, RuleContext
from rules._cite import issue, pr
from rules._canon import VAL_BYTES, VAL_BYTES_TOLERANCE

EXPLANATION = """
val_bpb = loss_sum / (ln 2 * bytes), so a full-coverage score line implies its byte denominator:
bytes = val_tokens * val_loss / (ln 2 * val_bpb). For the fixed FineWeb validation set that is
≈151.08 M bytes whatever the tokenizer (≈151.07-151.08 M after normalisation and truncation tails).
A denominator ~17% too large is the signature of a leading space counted twice (the LUT adds it and
the accumulator adds it again); ~4% too large matches byte-fallback tokens counted as 3 bytes; too
small means a subset or a transformed-text denominator. Lines printed with 4 decimals allow a
slightly wider tolerance. The claimed val_loss/val_bpb pair in submission.json is checked the same
way against the logged token count.
"""


def implied_bytes(tokens: int, loss: float, bpb: float) -> float | None:
    if bpb <= 0 or loss <= 0 or not (math.isfinite(loss) and math.isfinite(bpb)):
        return None
    return tokens * loss / (math.log(2) * bpb)


def diagnose(rel: float) -> str:
    if 0.12 <= rel <= 0.25:
        return "consistent with a leading space counted twice (LUT bug)"
    if 0.025 <= rel <= 0.06:
        return "consistent with byte-fallback tokens counted as 3 bytes"
    if 0.07 <= rel <= 0.11:
        return "consistent with a transformed-text denominator (e.g. sentinel characters counted)"
    if rel < 0:
        return "fewer bytes than the validation text: a subset, or a wrong denominator"
    return "a byte accounting different from the canonical piece-table LUT"


def _decimals(text: str, value: float) -> int:
    s = f"{value}"
    return len(s.split(".")[1]) if "." in s else 0


def check(ctx: RuleContext) -> list[Finding]:
    sub = ctx.submission
    manifest = ctx.options.val_manifest
    expected = float(manifest.get("val_bytes", VAL_BYTES)) if manifest else float(VAL_BYTES)
    base_tol = 1e-6 if manifest and "val_bytes" in manifest else VAL_BYTES_TOLERANCE
    out: list[Finding] = []
    checked = []
    for run in ctx.facts.distinct_runs:
        score = ctx.facts.score(run)
        if score is None or run.val_tokens is None:
            continue
        label = run_label(run)
        b = implied_bytes(int(run.val_tokens.value), score.val_loss, score.val_bpb)
        if b is None:
            out.append(RULE.finding("warn", f"{label}: score line has a non-positive or non-finite figure",
                                    [score.evidence()]))
            continue
        rel = b / expected - 1
        coarse = min(_decimals(score.text, score.val_loss), _decimals(score.text, score.val_bpb)) <= 4
        tol = base_tol + (1.5e-4 if coarse else 0.0) + (2e-5 if manifest else 0.0)
        checked.append(b)
        data = {"run": label, "implied_bytes": round(b), "expected_bytes": round(expected),
                "relative_difference": round(rel, 6), "score_label": score.label}
        ev = [run.val_tokens.evidence(), score.evidence()]
        if abs(rel) > tol:
            sev = "fail" if abs(rel) > 0.01 else "warn"
            out.append(RULE.finding(sev, f"{label}: {score.label} implies a denominator of {b:,.0f} bytes, "
                                         f"{rel:+.2%} from {expected:,.0f}: {diagnose(rel)}", ev, **data))
    meta = sub.meta
    tokens = next((int(r.val_tokens.value) for r in sub.runs if r.val_tokens is not None), None)
    if meta.val_loss is not None and meta.val_bpb is not None and tokens is not None and meta.val_bpb > 0:
        b = implied_bytes(tokens, meta.val_loss, meta.val_bpb)
        if b is not None:
            rel = b / expected - 1
            if abs(rel) > max(0.004, base_tol):
                out.append(RULE.finding("warn", f"the claimed pair val_loss {meta.val_loss} / val_bpb {meta.val_bpb} "
                                                f"implies {b:,.0f} bytes on {tokens:,} tokens ({rel:+.2%}); the two "
                                                "claims do not describe the same evaluation",
                                        [Evidence(meta.path, meta.line_of.get("val_loss"))],
                                        implied_bytes=round(b), relative_difference=round(rel, 6)))
    if not checked and not out:
        if sub.runs:
            out.append(RULE.finding("info", "no score line with a logged token count; the denominator cannot be "
                                            "recomputed"))
        return out
    if checked and not [f for f in out if f.severity in ("fail", "warn")]:
        out.append(RULE.finding("pass", f"implied denominators {min(checked):,.0f}–{max(checked):,.0f} bytes match "
                                        f"the validation text ({expected:,.0f})"))
    return out


RULE = Rule(
    id="BPB_BYTES",
    title="Byte denominator matches the validation text",
    summary="tokens·val_loss/(ln2·val_bpb) from each score line equals the ≈151.08 M bytes of the validation set.",
    explanation=EXPLANATION,
    citations=(issue(1719), issue(897), pr(1184), pr(2138), pr(1804)),
    check=check,
)
