"""FULL_VAL: the reported score covers the whole fixed validation split."""

from __future__ import annotations

from auditor.core.model import Finding
from rules import _code_side as code_side
from rules._util import run_label
from auditor.core.contract import Rule, RuleContext
from rules._cite import README_RULES, pr
from rules._canon import EXPORTS, OLD_SP1024_EXPORT, export_for_vocab, match_export

EXPLANATION = """
Validation always runs on the full fineweb_val_* split: the fixed first 50,000 documents. Loaders
truncate the stream to a multiple of the evaluation sequence length, so the logged `val_tokens`
figure is the number of scored targets and has a few legitimate values per tokenizer (sp1024
62,021,632; sp4096 45,508,608; sp8192 40,540,160; CaseOps 47,851,520; byte260 151,130,112; and
figures a truncation tail below those). Any subset marker (PPM_SUBSET_TOKENS, VAL_TOKEN_LIMIT,
"subset=") fails, as does a count far below the export for the run's tokenizer. Custom datasets (the
bundled example) are checked against a manifest the maintainer passes with --val-manifest.
"""


def check(ctx: RuleContext) -> list[Finding]:
    sub = ctx.submission
    manifest = ctx.options.val_manifest
    out: list[Finding] = []
    checked = 0
    for run in ctx.facts.distinct_runs:
        label = run_label(run)
        end_of_training = run.train_time_ms.line if run.train_time_ms is not None else 0
        final = [m for m in run.subset_markers if (m.line or 0) > end_of_training]
        periodic = [m for m in run.subset_markers if (m.line or 0) <= end_of_training]
        if final:
            out.append(RULE.finding("warn" if ctx.facts.non_record else "fail",
                                    f"{label}: the log marks a validation subset after training ended, "
                                            "where the reported score is computed", final))
        if periodic:
            out.append(RULE.finding("info", f"{label}: {len(periodic)} validation subset marker(s) during training "
                                            "(periodic monitoring, not the reported score)", periodic))
        vt = run.val_tokens
        if vt is None:
            continue
        checked += 1
        n = int(vt.value)
        data = {"run": label, "val_tokens": n}
        if manifest is not None:
            want = int(manifest["val_tokens"])
            if n != want:
                out.append(RULE.finding("fail", f"{label}: {n:,} validation targets, the manifest's split has "
                                                f"{want:,} ({n / want:.2%})", [vt.evidence()], expected=want, **data))
            continue
        export, how = match_export(n, run.tokenizer_vocab)
        if how == "exact":
            continue
        if how == "tail":
            out.append(RULE.finding("info", f"{label}: {n:,} targets: the {export.name} split truncated to a longer "
                                            "eval sequence length", [vt.evidence()], export=export.name, **data))
        elif n == OLD_SP1024_EXPORT:
            out.append(RULE.finding("warn", f"{label}: {n:,} targets is the older sp1024 export, not the fixed "
                                            "validation set used since", [vt.evidence()], **data))
        else:
            ref = export_for_vocab(run.tokenizer_vocab, run.byte_sidecar)
            if ref is not None:
                share = n / ref.logged[0]
                out.append(RULE.finding("fail" if share < 0.99 else "warn",
                                        f"{label}: {n:,} validation targets; the {ref.name} split has "
                                        f"{ref.logged[0]:,} ({share:.1%})", [vt.evidence()], export=ref.name, **data))
            else:
                smallest = min(e.logged[0] for e in EXPORTS)
                sev = "warn"
                msg = (f"{label}: {n:,} validation targets matches no known export (custom tokenizer?); coverage "
                       "rests on the byte check (BPB_BYTES)")
                if n < 0.5 * smallest:
                    sev, msg = "fail", (f"{label}: {n:,} validation targets, fewer than half of the smallest known "
                                        f"export ({smallest:,}); this is a subset")
                out.append(RULE.finding(sev, msg, [vt.evidence()], **data))
    out.extend(code_side.full_val_findings(ctx))  # slicing or capping validation tokens in the code
    if checked == 0 and not out:
        if sub.runs:
            out.append(RULE.finding("info" if ctx.facts.non_record else "warn",
                                    "no log prints the number of validation tokens; coverage cannot be "
                                    "confirmed from the logs"))
        return out
    if not [f for f in out if f.severity in ("fail", "warn")] and checked:
        out.append(RULE.finding("pass", f"{checked} run(s) score the full validation split"))
    return out


RULE = Rule(
    id="FULL_VAL",
    title="Full validation split scored",
    summary="Logged validation target counts match the fixed split for the tokenizer; no subset markers.",
    explanation=EXPLANATION,
    citations=(README_RULES + "#faq", pr(1858), pr(1854), pr(1835), pr(823)),
    check=check,
)
