"""Where the rules come from: links into the challenge repository's README, PRs and issues."""

from __future__ import annotations

REPO = "https://github.com/openai/parameter-golf"
README_RULES = f"{REPO}/blob/main/README.md"


def pr(n: int) -> str:
    return f"{REPO}/pull/{n}"


def issue(n: int) -> str:
    return f"{REPO}/issues/{n}"
