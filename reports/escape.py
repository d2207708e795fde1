"""Submission text is attacker-controlled. These filters make it inert wherever a report places it.

Markdown: a cell cannot break the table (| and newlines), cannot open HTML, links, images or
headings, cannot forge emphasis or a verdict line. Code spans are fenced with more backticks than the
text contains. GitHub workflow commands: `::` sequences and line breaks are encoded.
"""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~$])")  # $: GitHub renders $...$ as math
_AUTOLINK = re.compile(r"(://|www\.|@|#(?=[0-9]))", re.IGNORECASE)  # #123 would cross-link an issue
# C0 controls, NEL and Unicode line/paragraph separators (line breaks to many tools), and every
# bidi override, isolate and mark (they reorder what a reviewer sees: "Trojan Source")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def plain(text: object, limit: int = 300) -> str:
    """One line of submission text: printable, bounded."""
    s = "" if text is None else str(text)
    s = _CONTROL.sub("\ufffd", s.replace("\r\n", "\n").replace("\r", "\n").replace("\n", " ⏎ ").replace("\t", " "))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def md(text: object, limit: int = 300) -> str:
    """Markdown-escaped inline text, safe inside a table cell."""
    s = plain(text, limit)
    s = s.replace("&", "&amp;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    # no autolinks, e-mail links or @-mentions out of submission text
    s = _AUTOLINK.sub(lambda m: m.group(1)[0] + "\u200b" + m.group(1)[1:], s)
    return s.replace("\\|", "&#124;")


def code(text: object, limit: int = 200) -> str:
    """An inline code span that the text cannot close; pipes encoded so tables survive."""
    s = plain(text, limit)
    if not s.strip():
        return "` `"
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or longest else ""
    return f"{fence}{pad}{s.replace('|', '¦')}{pad}{fence}"


def workflow_data(text: object, limit: int = 1000) -> str:
    """Message part of a GitHub workflow command (`::error ...::<data>`)."""
    s = "" if text is None else str(text)[:limit]
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: object, limit: int = 300) -> str:
    """Property value of a GitHub workflow command (`file=`, `title=`)."""
    return workflow_data(text, limit).replace(":", "%3A").replace(",", "%2C")
