"""`auditor rules [ID]`: the rulebook, like `ruff rule`."""

from __future__ import annotations

import sys

from auditor.core.errors import ToolError


def add_parser(sub) -> None:
    p = sub.add_parser("rules", help="list the rules, or explain one", description="List every rule, or explain one.")
    p.add_argument("rule_id", nargs="?", metavar="ID", help="rule to explain, e.g. ARTIFACT_SIZE")
    p.add_argument("--markdown", action="store_true", help="print the whole rulebook as Markdown (docs/rulebook.md)")
    p.set_defaults(func=run)


def run(args) -> int:
    from reports.rulebook import render_rule, render_rule_list, render_rulebook
    from rules import all_rules, get_rule, rulings_by_rule

    if args.markdown:
        sys.stdout.write(render_rulebook(all_rules(), rulings_by_rule()))
    elif not args.rule_id:
        sys.stdout.write(render_rule_list(all_rules()))
    else:
        rule = get_rule(args.rule_id)
        if rule is None:
            raise ToolError(f"unknown rule {args.rule_id!r}; `auditor rules` lists them")
        sys.stdout.write(render_rule(rule, rulings_by_rule()))
    return 0
