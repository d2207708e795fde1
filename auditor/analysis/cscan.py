"""Line-level scanner for C/C++/CUDA helpers (shipped files or C source embedded in Python strings).

No C parser: the helpers in records are small kernels written in a plain style, and the one pattern
that matters most (a hint or gate for position i decided from the token *at* i) is visible line by
line: `tok = tokens[i]` followed by a condition on `tok` (or a value derived from it) that writes
`hint[i]`/`valid[i]`. Reading `tokens[i - 1]` (the prefix) is the legal form and does not match.

Cost: linear in the text. Comment stripping is one pass; a line longer than
budget.SCAN_LINE_CHARS is not scanned (its regexes could backtrack over it; the caller is told which
lines, so the review can say so); at most `MAX_TAINTED` tainted names are tracked at a time, so the
per-line work is bounded by a constant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from auditor.core import budget

MAX_TAINTED = 64  # real kernels track a handful; the oldest is forgotten past this
_COMMENT_START = re.compile(r"/[*/]")

_READ = re.compile(r"\b(?:[\w:<>]+\s+)*?(\w+)\s*=\s*(?:\([\w\s]+\)\s*)?(\w*(?:tok|ids|target|seq|stream)\w*|y)\s*"
                   r"\[\s*(\w+)\s*\]\s*;", re.I)
_ASSIGN = re.compile(r"\b(?:[\w:<>]+\s+)*?(\w+)\s*=\s*([^;=][^;]*);")
_WRITE = re.compile(r"\b(\w+)\s*\[\s*(\w+)\s*\]\s*(?:=[^=]|\|=|\+=)")
_HINT = re.compile(r"(hint|valid|gate|beta|bonus|tilt|boost|expert|emit|use_)", re.I)
_FUNC_START = re.compile(r"^[A-Za-z_][\w\s\*:<>,]*\([^;]*\)\s*(const\s*)?\{?\s*$")
_HASH = re.compile(r"(\^|\*\s*(0x[0-9a-fA-F]+|\d{4,}|\w*prime\w*|P\d*\b))", re.I)
_KEY_NAME = re.compile(r"(key|hash|idx|bucket|slot|h\d?)$", re.I)
_TABLE_READ = re.compile(r"\b(\w+)\s*\[\s*(\w+)\s*\](?!\s*(\+\+|\+=|=[^=]|--|-=))")


@dataclass
class CFinding:
    kind: str  # "pos_gate" | "target_hash"
    line: int  # 1-based line in the file (embedded offset applied)
    read_line: int
    text: str
    detail: str


def _strip_comments(text: str) -> list[str]:
    """The lines of `text` with `//` and `/* */` comments removed. O(n): each line is cut into slices
    at comment boundaries found with str.find / one regex search per boundary, never rebuilt per
    character."""
    out = []
    in_block = False
    for line in text.splitlines():
        parts: list[str] = []
        i, n = 0, len(line)
        while i < n:
            if in_block:
                j = line.find("*/", i)
                if j < 0:
                    break
                in_block = False
                i = j + 2
                continue
            m = _COMMENT_START.search(line, i)
            if m is None:
                parts.append(line[i:])
                break
            parts.append(line[i:m.start()])
            if m.group() == "//":
                break
            in_block = True
            i = m.end()
        out.append("".join(parts))
    return out


def scan_c(text: str, first_line: int = 1, skipped: list[int] | None = None) -> list[CFinding]:  # ~90 lines: one pass with its state in locals keeps the scan linear
    """Position gates and target-keyed hashes in C source. Lines longer than
    budget.SCAN_LINE_CHARS are not scanned; their 1-based numbers are appended to `skipped`."""
    lines = _strip_comments(text)
    raw = text.splitlines()
    findings: list[CFinding] = []
    tainted: dict[str, tuple[str, int]] = {}  # var -> (index identifier, read line index)
    open_ifs: list[tuple[int, tuple[str, int], int]] = []  # (brace depth at open, source, if line idx)
    depth = 0
    pending_if: tuple[tuple[str, int], int] | None = None
    for k, line in enumerate(lines):
        if len(line) > budget.SCAN_LINE_CHARS:
            if skipped is not None:
                skipped.append(first_line + k)
            continue
        if len(tainted) > MAX_TAINTED:
            for var in list(tainted)[: len(tainted) - MAX_TAINTED]:
                del tainted[var]
        if _FUNC_START.match(line) and depth == 0:
            tainted.clear()
        m = _READ.search(line)
        if m and not re.search(r"\[\s*\w+\s*[-+]", line[m.start():m.end()]):
            tainted[m.group(1)] = (m.group(3), k)
        else:
            a = _ASSIGN.search(line)
            if a and a.group(1) not in tainted:
                for var, src in list(tainted.items()):
                    if re.search(rf"\b{re.escape(var)}\b", a.group(2)):
                        tainted[a.group(1)] = src
                        break
        # hash keys that mix in the current token
        a = _ASSIGN.search(line)
        if a and _KEY_NAME.search(a.group(1)) and _HASH.search(a.group(2)):
            for var, src in tainted.items():
                if re.search(rf"\b{re.escape(var)}\b", a.group(2)) and var != a.group(1):
                    key = a.group(1)
                    for k2 in range(k + 1, min(len(lines), k + 40)):
                        if len(lines[k2]) > budget.SCAN_LINE_CHARS:
                            continue
                        r = _TABLE_READ.search(lines[k2])
                        if r and r.group(2) == key and "++" not in lines[k2] and "+=" not in lines[k2]:
                            findings.append(CFinding("target_hash", first_line + k, first_line + src[1],
                                                     raw[k].strip()[:200],
                                                     f"key `{key}` mixes `{var}` (read from position "
                                                     f"`{src[0]}`) and is looked up at line {first_line + k2}"))
                            break
                    break
        # conditions on tainted values
        cm = re.search(r"\bif\s*\((.*)", line)
        if cm:
            for var, src in tainted.items():
                if re.search(rf"\b{re.escape(var)}\b", cm.group(1)):
                    pending_if = (src, k)
                    break
        # writes
        for w in _WRITE.finditer(line):
            name, idx = w.group(1), w.group(2)
            if not _HINT.search(name):
                continue
            rhs = line[w.end():]
            direct = next((src for var, src in tainted.items() if re.search(rf"\b{re.escape(var)}\b", rhs)), None)
            if direct is not None and direct[0] == idx:
                findings.append(CFinding("pos_gate", first_line + k, first_line + direct[1], raw[k].strip()[:200],
                                         f"`{name}[{idx}]` is computed from the token at `[{idx}]`"))
                continue
            for d0, src, if_k in reversed(open_ifs):
                if src[0] == idx:
                    findings.append(CFinding("pos_gate", first_line + if_k, first_line + src[1],
                                             raw[if_k].strip()[:200],
                                             f"`{name}[{idx}]` (line {first_line + k}) is written under a condition "
                                             f"on the token at `[{idx}]`"))
                    break
            if pending_if is not None and pending_if[0][0] == idx and "{" not in line[:w.start()] \
                    and k - pending_if[1] <= 1:
                findings.append(CFinding("pos_gate", first_line + k, first_line + pending_if[0][1],
                                         raw[k].strip()[:200],
                                         f"`{name}[{idx}]` is written under a condition on the token at `[{idx}]`"))
        opens, closes = line.count("{"), line.count("}")
        if pending_if is not None and opens:
            open_ifs.append((depth + 1, pending_if[0], pending_if[1]))
            pending_if = None
        elif pending_if is not None and k > pending_if[1] and line.strip():
            pending_if = None
        depth += opens - closes
        while open_ifs and depth < open_ifs[-1][0]:
            open_ifs.pop()
        if depth <= 0:
            depth = 0
    uniq = {}
    for f in findings:
        uniq.setdefault((f.kind, f.line), f)
    return [uniq[k] for k in sorted(uniq)]


def looks_like_c(s: str) -> bool:
    return bool(re.search(r"#include\s*[<\"]|extern\s+\"C\"|__global__\s+void", s))
