"""`auditor review FOLDER`: only the review comment, for pasting into a PR by hand."""

from __future__ import annotations

from auditor.commands._common import add_audit_options, audit, write_output


def add_parser(sub) -> None:
    p = sub.add_parser("review", help="print the PR review comment for a folder",
                       description="Print the Markdown review comment a maintainer would paste into the PR.")
    p.add_argument("folder")
    p.add_argument("--out", metavar="FILE")
    add_audit_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from reports.render import render_markdown

    result = audit(args.folder, args)
    write_output(render_markdown(result), args.out)
    return result.verdict.exit_code
