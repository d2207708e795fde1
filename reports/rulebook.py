"""The rulebook as text: `auditor rules` (list), `auditor rules ID` (one rule) and docs/rulebook.md.

Rendered from the registry (rules/__init__.py) through templates, so the page, the CLI and the
README table cannot drift from the rules the engine applies.
"""

from __future__ import annotations

import textwrap

from reports.render import environment


def _dedent(text: str) -> str:
    return textwrap.dedent(text or "").strip()


def _ctx(rules, rulings=None) -> dict:
    """`rulings`: rule ID -> the rulings that grade its findings (rules/_rulings.py), shown with dates."""
    return {"rules": list(rules), "dedent": _dedent, "fill": lambda t: textwrap.fill(t, 100),
            "width": max((len(r.id) for r in rules), default=0), "rulings": rulings or {}}


def render_rule_list(rules) -> str:
    return environment().get_template("rule_list.txt.j2").render(**_ctx(rules))


def render_rule(rule, rulings=None) -> str:
    return environment().get_template("rule.txt.j2").render(rule=rule, **_ctx([rule], rulings))


def render_rulebook(rules, rulings=None) -> str:
    return environment().get_template("rulebook.md.j2").render(**_ctx(rules, rulings))
