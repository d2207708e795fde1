"""FILES: the folder holds what a record PR must hold."""

from __future__ import annotations

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


def check(ctx: RuleContext) -> list[Finding]:
    sub = ctx.submission
    # Non-record folders are write-ups: early ones were merged without logs, a json or a script, so a
    # missing piece there is for a maintainer to confirm (warn), not a failed record (NONRECORD track).
    missing = "warn" if ctx.facts.non_record else "fail"
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
            out.append(RULE.finding("warn", f"the training script is named {entry.path}, not train_gpt.py; "
                                            "confirm it is the script that produced the logs", [Evidence(entry.path)]))
        if entry.shipped_bytes == 0:
            out.append(RULE.finding(missing, f"{entry.path} is empty (0 bytes)", [Evidence(entry.path)]))
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
