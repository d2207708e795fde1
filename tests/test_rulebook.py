"""The rule registry: stable IDs, complete metadata, and docs/rulebook.md generated from it."""

from pathlib import Path

import pkgutil

import rules
from reports.rulebook import render_rulebook as rulebook_markdown
from rules import RULE_MODULES, all_rules, rulings_by_rule

ROOT = Path(__file__).resolve().parents[1]


def test_ids_are_unique_and_upper_snake():
    ids = [r.id for r in all_rules()]
    assert len(ids) == len(set(ids))
    assert all(i == i.upper() and " " not in i for i in ids)


def test_every_rule_has_title_summary_explanation_and_sources():
    for r in all_rules():
        assert r.title and r.summary and len(r.explanation.strip()) > 200, r.id
        assert r.citations and all(c.startswith("https://") for c in r.citations), r.id
        assert r.kind in ("evidence", "code", "dynamic"), r.id


def test_docs_rulebook_is_generated_from_the_registry():
    assert (ROOT / "docs" / "rulebook.md").read_text(encoding="utf-8") == rulebook_markdown(all_rules(), rulings_by_rule()), \
        "regenerate with: auditor rules --markdown > docs/rulebook.md"


def test_every_rule_module_is_registered():
    """Adding a rule is its module plus one registry line: a module left out of RULE_MODULES would
    silently never run. Helpers are private (leading underscore)."""
    public = sorted(m.name for m in pkgutil.iter_modules(rules.__path__) if not m.name.startswith("_"))
    assert public == sorted(RULE_MODULES)


def test_readme_rule_table_names_every_rule():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## What it checks", 1)[1].split("\n## ", 1)[0]
    missing = [r.id for r in all_rules() if f"`{r.id}`" not in table]
    assert missing == [], f"README 'What it checks' does not name {missing}"
