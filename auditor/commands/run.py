"""`auditor run FOLDER`: audit a record folder and print the review."""

from __future__ import annotations

from auditor.commands._common import add_audit_options, audit, write_output


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="audit a record folder (static unless --gauntlet runs its script in the sandbox)",
                       description="Audit a Parameter Golf record folder and write a review. "
                                   "Exit code: 0 PASS, 1 FAIL, 3 NEEDS_REVIEW, 2 tool error.")
    p.add_argument("folder", help="records/<track>/<folder> to audit")
    p.add_argument("--format", choices=["md", "json"], default="md", help="output format (default md)")
    p.add_argument("--out", metavar="FILE", help="write the review here instead of stdout")
    add_audit_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from reports.render import render

    result = audit(args.folder, args)
    write_output(render(result, args.format), args.out)
    return result.verdict.exit_code
