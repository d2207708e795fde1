"""`auditor rules [ID]`: the rulebook, like `ruff rule`."""

from __future__ import annotations

import textwrap

from auditor.cli import ToolError


def add_parser(sub) -> None:
    p = sub.add_parser("rules", help="list the rules, or explain one", description="List every rule, or explain one.")
    p.add_argument("rule_id", nargs="?", metavar="ID", help="rule to explain, e.g. ARTIFACT_SIZE")
    p.set_defaults(func=run)


def run(args) -> int:
    from rules import all_rules, get_rule

    if not args.rule_id:
        rules = all_rules()
        width = max(len(r.id) for r in rules)
        for r in rules:
            print(f"{r.id:<{width}}  {r.title}")
        return 0
    rule = get_rule(args.rule_id)
    if rule is None:
        raise ToolError(f"unknown rule {args.rule_id!r}; `auditor rules` lists them")
    print(f"{rule.id}: {rule.title}\n")
    print(textwrap.fill(rule.summary, 100) + "\n")
    print(textwrap.dedent(rule.explanation).strip() + "\n")
    print("Sources:")
    for c in rule.citations:
        print(f"  {c}")
    return 0
