"""Fit the review comment under GitHub's comment limit, losing the least useful text first.

GitHub rejects an issue/PR comment over 65,536 characters (HTTP 422), and a PR that adds several
record folders easily writes more (a 7-folder PR gave 83,448). The budget is counted in UTF-8 bytes,
which is never less than the characters or UTF-16 units GitHub may count, with headroom for the API.
What goes, in order, starting from the last folder: the collapsed evidence blocks, then whole folder
sections (each keeps its heading and verdict), then, as a last resort, lines from the end. The
verdict table at the top always stays, and a note points to the job summary, which has everything.
"""

from __future__ import annotations

import re

GITHUB_COMMENT_LIMIT = 65_536
COMMENT_BUDGET = 60_000  # UTF-8 bytes: headroom under the limit for the note and the API's own count

_SECTION = re.compile(r"(?m)^(?=---\n\n### )")
_DETAILS = re.compile(r"<details>\n<summary>Evidence.*?</details>\n", re.S)


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def _note(where: str | None, what: str) -> str:
    place = f"the [job summary]({where})" if where else "this run's job summary"
    return (f"> [!NOTE]\n> This review is longer than a GitHub comment can hold: {what}. "
            f"The full review is in {place}.\n\n")


def _stub(section: str) -> str:
    heading = next((l for l in section.splitlines() if l.startswith("### ")), "### (folder)")
    return f"---\n\n{heading}\n\nThis folder's section is in the job summary.\n\n"


def cap_comment(text: str, *, summary_url: str | None = None, budget: int = COMMENT_BUDGET) -> str:
    """`text` unchanged when it fits; otherwise a shortened comment of at most `budget` bytes."""
    if size(text) <= budget:
        return text
    head, *sections = _SECTION.split(text)
    tail = ""
    if sections:  # the footer (`---` + version line) follows the last section; keep it apart
        m = re.search(r"(?s)\n(---\n<sub>auditor [^\n]*</sub>\n?)\Z", sections[-1])
        if m:
            tail, sections[-1] = m.group(1), sections[-1][: m.start() + 1]

    def build(parts: list[str], what: str) -> str:
        return _insert_note(head, _note(summary_url, what)) + "".join(parts) + tail

    parts = list(sections)
    dropped_details = 0
    for i in reversed(range(len(parts))):  # 1. evidence blocks, last folder first
        if size(build(parts, "x" * 80)) <= budget:
            break
        parts[i], n = _DETAILS.subn("<sub>Evidence table: in the job summary.</sub>\n", parts[i])
        dropped_details += n
    stubs = 0
    for i in reversed(range(len(parts))):  # 2. whole sections, last folder first
        if size(build(parts, "x" * 80)) <= budget:
            break
        parts[i] = _stub(parts[i])
        stubs += 1
    what = (f"{stubs} of {len(parts)} folder section(s) are shortened to their verdict" if stubs
            else f"the evidence tables of {dropped_details} folder(s) are left out")
    out = build(parts, what)
    if size(out) > budget:  # 3. last resort: whole lines from the end
        keep = out.encode("utf-8")[: budget - 200].decode("utf-8", "ignore")
        out = keep[: keep.rfind("\n") + 1] + "\n… (cut here: the rest is in the job summary)\n"
    return out


def _insert_note(head: str, note: str) -> str:
    """After the title line (line 2, below the marker), so the pointer is seen first."""
    lines = head.split("\n", 2)
    if len(lines) == 3 and lines[1].startswith("## "):
        return f"{lines[0]}\n{lines[1]}\n\n{note}{lines[2].lstrip(chr(10))}"
    return note + head
