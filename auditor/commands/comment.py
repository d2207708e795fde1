"""`auditor comment --pr N --body-file F`: post the review comment, or update the one posted before.

For the gating workflow's last step: one comment per PR, found by the marker, capped under GitHub's
comment limit. The token comes from the environment (GITHUB_TOKEN or GH_TOKEN), never from argv,
so it is not in the process list or the job log.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from auditor.core.errors import ToolError


def add_parser(sub) -> None:
    p = sub.add_parser("comment", help="post or update the PR review comment written by `auditor ci`",
                       description="Post the review comment on a pull request, or update the auditor's own "
                                   "comment there (found by its marker). Token: $GITHUB_TOKEN or $GH_TOKEN.")
    p.add_argument("--pr", type=int, required=True, metavar="N", help="pull request number")
    p.add_argument("--body-file", required=True, metavar="FILE", help="the comment (auditor ci --comment-out)")
    p.add_argument("--repository", default=os.environ.get("GITHUB_REPOSITORY"), metavar="OWNER/REPO",
                   help="default: $GITHUB_REPOSITORY")
    p.add_argument("--author", default=None, metavar="LOGIN",
                   help="whose comment to update (default github-actions[bot], the GITHUB_TOKEN's identity)")
    p.set_defaults(func=run)


def run(args) -> int:
    from auditor.ci.upsert import BOT, upsert_comment
    from reports.comment_cap import cap_comment

    try:
        body = Path(args.body_file).read_text("utf-8")
    except OSError as exc:
        raise ToolError(f"--body-file {args.body_file}: {exc.strerror}") from None
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or ""
    done = upsert_comment(args.repository or "", args.pr, cap_comment(body, summary_url=summary_url()), token,
                          api=os.environ.get("GITHUB_API_URL") or "https://api.github.com",
                          author=args.author or BOT)
    sys.stderr.write(f"auditor comment: {done.action} comment {done.comment_id}"
                     f"{' (' + done.url + ')' if done.url else ''}\n")
    return 0


def summary_url() -> str | None:
    """This run's page, where the job summary (the full review) is shown; None outside Actions."""
    env = os.environ
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return None
