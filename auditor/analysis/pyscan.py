"""A small Python 3.12 lexer: string literals (PEP 701 f-strings with nesting), comments, brackets.

Why it exists: the auditor runs on Python 3.11, whose own tokenizer cannot read 3.12 f-strings
(`f"{d["k"]}"`, backslashes or comments inside replacement fields, arbitrary nesting). `pyparse`
needs to know exactly where each string literal, each replacement field and each comment is, so
that it can rewrite only what 3.11 rejects while keeping every other character in its place.
Only what that needs is lexed; everything else is "code" and skipped a run at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PREFIXES = {"", "r", "u", "b", "br", "rb", "f", "fr", "rf"}
_PLAIN = re.compile(r"[^\"'#()\[\]{}\\\n]+")
_OPEN, _CLOSE = "([{", ")]}"
_JOIN = re.compile(r"(?:[ \t\f\r\n]|\\\n|#[^\n]*)*\Z")  # what may separate concatenated literals


class ScanError(Exception):
    """The text is not lexically valid Python 3.12 (e.g. an unterminated string)."""

    def __init__(self, msg: str, pos: int):
        super().__init__(msg)
        self.pos = pos


@dataclass
class Field:
    """One replacement field `{expr[=][!c][:spec]}` of an f-string (indices into the source text)."""

    start: int  # the '{'
    end: int  # just after the '}'
    expr_start: int
    expr_end: int
    debug_end: int | None = None  # end of the `expr=` text (with trailing blanks) when '=' is present
    conversion: int = -1
    spec: list["Field | tuple[int, int]"] | None = None
    spec_span: tuple[int, int] | None = None


@dataclass
class StrTok:
    """A string literal token. `parts` (f-strings only): literal (start, end) spans and Fields."""

    start: int
    end: int
    prefix: str
    quote: str
    parts: list = field(default_factory=list)

    @property
    def is_f(self) -> bool:
        return "f" in self.prefix


@dataclass
class Scan:
    groups: list[list[StrTok]]  # implicitly concatenated string literals, in source order
    masked: str  # the source with strings and comments blanked out (newlines kept)
    depth_at: list[int]  # bracket depth at each index of `masked` (only for code chars)


def _ident(c: str) -> bool:
    return c.isalnum() or c == "_" or ord(c) > 127


def string_start(src: str, q: int) -> int | None:
    """Index where the literal whose quote is at `q` begins (its prefix), or None if not a literal."""
    j = q
    while j > 0 and q - j < 2 and src[j - 1] in "rRbBuUfF":
        j -= 1
    while j < q and not ((j == 0 or not _ident(src[j - 1])) and src[j:q].lower() in _PREFIXES):
        j += 1  # letters glued to an identifier are not a prefix
    return j if src[j:q].lower() in _PREFIXES and (j == 0 or not _ident(src[j - 1])) else None


def scan_string(src: str, i: int, q: int) -> StrTok:
    """Lex the literal starting at `i` (prefix) whose opening quote is at `q`."""
    prefix = src[i:q].lower()
    quote = src[q] * 3 if src.startswith(src[q] * 3, q) else src[q]
    tok = StrTok(i, -1, prefix, quote)
    k = q + len(quote)
    if "f" in prefix:
        tok.parts, k = _fbody(src, k, quote, "r" in prefix, in_spec=False)
        tok.end = k + len(quote)
        return tok
    n = len(src)
    while k < n:
        c = src[k]
        if c == "\\":
            k += 2
            continue
        if src.startswith(quote, k):
            tok.end = k + len(quote)
            return tok
        if c == "\n" and len(quote) == 1:
            break
        k += 1
    raise ScanError("unterminated string literal", i)


def _fbody(src: str, k: int, quote: str, raw: bool, in_spec: bool) -> tuple[list, int]:
    """Lex an f-string body (or a format spec) from `k`. Returns parts and the index of the end
    (the closing quote, or the '}' that closes the field owning the spec)."""
    parts: list = []
    lit = k
    n = len(src)
    while k < n:
        c = src[k]
        if not in_spec and src.startswith(quote, k):
            break
        if c == "\\":
            if not raw and src.startswith("N{", k + 1):
                close = src.find("}", k + 3)
                if close < 0:
                    raise ScanError("unterminated \\N escape", k)
                k = close + 1
            elif src[k + 1:k + 2] in ("{", "}") and not in_spec:
                k += 1  # the brace is not escaped by a backslash
            else:
                k += 2
            continue
        if c == "{":
            if src.startswith("{{", k) and not in_spec:
                k += 2
                continue
            if lit < k:
                parts.append((lit, k))
            fld = _field(src, k, quote, raw)
            parts.append(fld)
            k = lit = fld.end
            continue
        if c == "}":
            if in_spec:
                break
            if src.startswith("}}", k):
                k += 2
                continue
            raise ScanError("f-string: single '}' is not allowed", k)
        if c == "\n" and len(quote) == 1:
            raise ScanError("unterminated f-string literal", k)
        k += 1
    else:
        raise ScanError("unterminated f-string literal", k)
    if lit < k:
        parts.append((lit, k))
    return parts, k


def _field(src: str, k: int, quote: str, raw: bool) -> Field:
    fld = Field(k, -1, k + 1, -1)
    e = scan_code(src, k + 1, field_mode=True)
    fld.expr_end = e
    if src[e] == "=":
        e += 1
        while src[e] in " \t\n\r\f":
            e += 1
        fld.debug_end = e
    if src[e] == "!":
        fld.conversion = ord(src[e + 1])
        e += 2
    if src[e] == ":":
        fld.spec, end = _fbody(src, e + 1, quote, raw, in_spec=True)
        fld.spec_span = (e + 1, end)
        e = end
    if src[e] != "}":
        raise ScanError("f-string: expecting '}'", e)
    fld.end = e + 1
    return fld


def scan_code(src: str, i: int, field_mode: bool = False, out: Scan | None = None) -> int:
    """Skip code from `i`. In field mode, stop at the top-level '}', '!', ':' or '=' that ends a
    replacement field's expression and return its index; otherwise lex to the end, recording
    string groups, masked text and bracket depths into `out`."""
    n = len(src)
    depth = 0
    last_str: int | None = None  # end of the previous literal, to detect implicit concatenation
    masked = list(src) if out is not None else None
    while i < n:
        m = _PLAIN.match(src, i)
        if m:
            j = m.end()
            if out is not None:
                out.depth_at[i:j] = [depth] * (j - i)
            if field_mode:
                for s in range(i, j):  # stop characters are plain characters
                    c = src[s]
                    if depth == 0 and c in "!:=" and _stops(src, s):
                        return s
            i = j
            continue
        c = src[i]
        if c in "\"'":
            start = string_start(src, i)
            if start is None:
                start = i
            tok = scan_string(src, start, i)
            if out is not None:
                for s in range(start, tok.end):
                    if masked[s] != "\n":
                        masked[s] = " "
                out.depth_at[start:tok.end] = [depth] * (tok.end - start)
                if last_str is not None and out.groups and _JOIN.match(src, last_str, start):
                    out.groups[-1].append(tok)
                else:
                    out.groups.append([tok])
            last_str = tok.end
            i = tok.end
        elif c == "#":
            j = src.find("\n", i)
            j = n if j < 0 else j
            if out is not None:
                masked[i:j] = " " * (j - i)
                out.depth_at[i:j] = [depth] * (j - i)
            i = j
        elif c == "\\":
            if out is not None:
                out.depth_at[i:i + 2] = [depth] * len(src[i:i + 2])
            i += 2  # line continuation: a concatenation may go on
        elif c == "\n":
            if out is not None:
                out.depth_at[i] = depth
            if depth == 0:
                last_str = None
            i += 1
        else:
            if c in _OPEN:
                depth += 1
            elif c in _CLOSE:
                if depth == 0:
                    if field_mode and c == "}":
                        return i
                    if field_mode:
                        raise ScanError(f"f-string: unmatched '{c}'", i)
                else:
                    depth -= 1
            if out is not None:
                out.depth_at[i] = depth
            last_str = None
            i += 1
    if field_mode:
        raise ScanError("f-string: expecting '}'", i)
    if out is not None:
        out.masked = "".join(masked)
    return i


def _stops(src: str, s: int) -> bool:
    c, nxt, prev = src[s], src[s + 1:s + 2], src[s - 1:s]
    if c == "!":
        return nxt != "="
    if c == ":":
        return True
    return nxt != "=" and prev not in ("=", "!", "<", ">", ":")  # '=': a debug specifier, not ==, <=, :=


def scan_module(src: str) -> Scan:
    out = Scan([], src, [0] * len(src))
    scan_code(src, 0, out=out)
    return out
