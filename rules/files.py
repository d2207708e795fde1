"""FILES: the folder holds what a record PR must hold."""

from __future__ import annotations

from auditor.analysis import get_analysis
from auditor.core.model import Evidence, Finding
from auditor.core.contract import Rule, RuleContext
from rules._cite import README_RULES, pr

EXPLANATION = """
A record PR adds one folder under records/<track>/ holding: a README.md that explains the
submission, a submission.json with name, GitHub ID and val_bpb, the train logs the script wrote
(normally one per seed), and train_gpt.py plus any file it needs, runnable from inside the folder.
A requirements.txt is expected when the script imports packages beyond the challenge's own.

The auditor also reports here what it refused to read: symbolic links (never followed; a link out of
the folder is a fail), hard links, special files, files over the read limit, and folders nested too
deeply. Missing pieces are failures because the challenge does not accept incomplete submissions;
a differently named training script is a warning for a maintainer to confirm.
"""


def _unparseable(ctx: RuleContext) -> list[Finding]:
    """A script no Python parses (3.12 syntax included) cannot be the one that produced the logs: the
    entry point (or the file its shim runs) fails; a helper that does not parse is for a human to check."""
    ca = get_analysis(ctx)
    entry = ctx.submission.entry_point
    running = {entry.path, entry.stub_target} if entry is not None else set()
    out = []
    for path, (why, line) in sorted(ca.parse_errors.items()):
        sev = "fail" if path in running else "warn"
        out.append(RULE.finding(sev, f"{path} does not parse: {why}", [Evidence(path, line)], parse_error=why))
    return out


def check(ctx: RuleContext) -> list[Finding]:
    sub = ctx.submission
    # Non-record folders are write-ups held to the size cap, not to the record bar: early ones were merged
    # without logs, a json or a script, so a missing piece there is noted (info), not a failed record.
    missing = "info" if ctx.facts.non_record else "fail"
    out: list[Finding] = [RULE.judge(i) for i in sub.load_issues]
    if not sub.files:
        out.append(RULE.finding("fail", "the folder is empty"))
        return out
    if sub.readme is None:
        out.append(RULE.finding("fail", "no README.md explaining the submission"))
    if not sub.meta_files:
        out.append(RULE.finding(missing, "no submission.json (or submission_<tag>.json) with the claimed figures"))
    elif len(sub.meta_files) > 1:
        out.append(RULE.finding("info", f"{len(sub.meta_files)} submission JSON files; the review reads "
                                        f"{sub.meta.path}", [Evidence(p) for p in sub.meta_files]))
    if not sub.logs:
        out.append(RULE.finding(missing, "no train log: the claimed score is not backed by any log"))
    elif not sub.runs:
        out.append(RULE.finding("fail", "logs are present but none holds a recognisable training/eval run",
                                [Evidence(p) for p in sub.logs]))
    entry = sub.entry_point
    if entry is None:
        out.append(RULE.finding(missing, "no train_gpt.py (or other train*.py) script in the folder"))
    else:
        if entry.path != "train_gpt.py":
            # the only training script in the folder is the one that produced the logs; with several, ask
            alone = len([c for c in sub.code if c.kind == "python" and "/" not in c.path
                         and c.path.startswith("train")]) == 1
            out.append(RULE.finding("info" if alone or ctx.facts.non_record else "warn",
                                    f"the training script is named {entry.path}, not train_gpt.py; "
                                    + ("it is the only training script in the folder" if alone else
                                       "confirm it is the script that produced the logs"), [Evidence(entry.path)]))
        if entry.shipped_bytes == 0:
            out.append(RULE.finding(missing, f"{entry.path} is empty (0 bytes)", [Evidence(entry.path)]))
    out.extend(_unparseable(ctx))
    if not [f for f in out if f.severity in ("fail", "warn")]:
        n_code = len(sub.code)
        out.append(RULE.finding("pass", f"README, {sub.meta.path}, {len(sub.logs)} log(s) and {n_code} code "
                                        f"file(s) present"))
    return out


RULE = Rule(
    id="FILES",
    title="Required files present and readable",
    summary="README.md, submission.json, train logs and the training script are in the folder; nothing in it "
            "points outside it.",
    explanation=EXPLANATION,
    citations=(README_RULES + "#submission-process", pr(1902)),
    check=check,
)
