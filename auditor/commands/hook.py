"""`auditor hook FILE...`: the pre-commit hook. Audits the record folders the given files belong to.

pre-commit passes the staged file names; a submitter touching `records/<track>/<folder>/...` gets
that folder audited (statically) before the commit, one line per folder, and the commit stops on a
FAIL. NEEDS_REVIEW does not stop it (a maintainer decides) unless --strict. Files outside a record
folder are ignored, so the hook is silent on everything else.
"""

from __future__ import annotations

import sys
from pathlib import PurePosixPath

from auditor.core.grades import Verdict, worst_verdict


def add_parser(sub) -> None:
    p = sub.add_parser("hook", help="pre-commit hook: audit the record folders the given files belong to",
                       description="Audit every records/<track>/<folder> that one of FILES lies in. "
                                   "Exit code: 1 when a folder FAILs (3 for NEEDS_REVIEW with --strict), else 0.")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--strict", action="store_true", help="also stop the commit when a folder needs review")
    p.set_defaults(func=run)


def record_folders(files: list[str]) -> list[str]:
    """records/<track>/<folder> for each file inside one, in order, once each."""
    out: dict[str, None] = {}
    for f in files:
        parts = PurePosixPath(f.replace("\\", "/")).parts
        if len(parts) >= 4 and parts[0] == "records":
            out.setdefault("/".join(parts[:3]))
    return list(out)


def run(args) -> int:
    from auditor.commands._common import audit
    from reports.oneline import folder_line

    verdicts = []
    for folder in record_folders(args.files):
        result = audit(folder, args)
        sys.stdout.write(folder_line(folder, result) + "\n")
        verdicts.append(result.verdict)
    worst = worst_verdict(verdicts)
    if worst == Verdict.NEEDS_REVIEW and not args.strict:
        return 0
    return worst.exit_code
