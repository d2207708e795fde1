"""Parse any script that CPython 3.12/3.13 parses into a faithful `ast.Module`, on Python 3.11.

Why: records of April 2026 use 3.12 syntax (PEP 701 f-strings such as `f"{", ".join(xs)}"`, PEP 695
`type X = ...` and `def f[T](...)`). `ast.parse` on 3.11 rejects the whole file, and every rule
then saw nothing. A rule needs the statements, names, calls, attributes and subscripts at their
real lines, so we never reformat: the 3.12-only pieces are rewritten in place with the same number
of lines and the same byte columns around them, and f-strings 3.11 cannot read are rebuilt as
`JoinedStr` nodes from their own replacement fields, each expression parsed at its true position.
Only when the rewritten text still fails is the file reported as not parsing, with the line.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

from auditor.analysis.pyscan import Field, Scan, ScanError, StrTok, scan_module

FSTRING = "f-string (PEP 701)"
TYPE_ALIAS = "type statement (PEP 695)"
TYPE_PARAMS = "type parameters (PEP 695)"


@dataclass
class ParseResult:
    filename: str
    tree: ast.Module | None
    rewritten: tuple[str, ...] = ()  # the 3.12 constructs that had to be rewritten for 3.11
    error: str | None = None
    error_line: int | None = None

    @property
    def ok(self) -> bool:
        return self.tree is not None

    def describe_error(self) -> str:
        where = f" (line {self.error_line})" if self.error_line else ""
        return f"{self.filename} does not parse: {self.error}{where}"


def parse_source(text: str, filename: str = "<unknown>") -> ParseResult:
    try:
        return ParseResult(filename, _plain(text, "exec"))
    except (ValueError, RecursionError, MemoryError) as exc:
        return ParseResult(filename, None, error=f"{type(exc).__name__}: {exc}")
    except SyntaxError as first:
        first_err = first
    used: set[str] = set()
    try:
        tree = _rewrite_parse(text, "exec", used)
    except SyntaxError as exc:
        return ParseResult(filename, None, tuple(sorted(used)), exc.msg, exc.lineno)
    except ScanError as exc:
        line = text.count("\n", 0, exc.pos) + 1
        return ParseResult(filename, None, tuple(sorted(used)), str(exc), line)
    except (ValueError, RecursionError, MemoryError, IndexError):
        return ParseResult(filename, None, error=first_err.msg, error_line=first_err.lineno)
    return ParseResult(filename, tree, tuple(sorted(used)))


def _plain(text: str, mode: str) -> ast.AST:
    with warnings.catch_warnings():  # invalid escapes in submission code are not our stderr's business
        warnings.simplefilter("ignore")
        return ast.parse(text, mode=mode)


class _Pos:
    """(line, UTF-8 byte column) of a character index, as the ast reports positions."""

    def __init__(self, src: str):
        self.src = src
        self.starts = [0] + [m.end() for m in re.finditer("\n", src)]

    def __call__(self, i: int) -> tuple[int, int]:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= i:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, len(self.src[self.starts[lo]:i].encode("utf-8"))


def _blank(s: str) -> str:
    """Spaces of the same UTF-8 width, newlines kept: later tokens keep their byte columns."""
    return "".join(c if c in "\n\r" else " " * len(c.encode("utf-8")) for c in s)


def _rewrite_parse(src: str, mode: str, used: set[str]) -> ast.AST:
    scan = scan_module(src)
    pos = _Pos(src)
    edits: list[tuple[int, int, str]] = []
    holes: dict[tuple[int, int], list[StrTok]] = {}
    for group in scan.groups:
        if not any(t.is_f for t in group):
            continue
        a, b = group[0].start, group[-1].end
        try:
            _plain("(" + src[a:b] + "\n)", "eval")
            continue  # 3.11 reads this one as it is
        except SyntaxError:
            pass
        edits.append((a, b, "(" + _blank(src[a + 1:b - 1]) + ")"))  # an empty tuple marks the hole
        holes[pos(a)] = group
        used.add(FSTRING)
    edits += _type_edits(src, scan, used)
    edits.sort()
    out, last = [], 0
    for a, b, rep in edits:
        if a < last:
            continue
        out += [src[last:a], rep]
        last = b
    out.append(src[last:])
    tree = _plain("".join(out), mode)
    if holes:
        tree = _Fill(src, pos, holes, used).visit(tree)
    return tree


_TYPE_STMT = re.compile(r"(?m)(?:^|;)[ \t]*(type)[ \t]+([^\W\d]\w*)[ \t]*(\[)?")
_GENERIC = re.compile(r"\b(?:def|class)[ \t]+[^\W\d]\w*[ \t]*(\[)")


def _close(masked: str, i: int) -> int:
    """Index just after the bracket that closes the one at `i` (strings/comments are blanked)."""
    depth = 0
    for j in range(i, len(masked)):
        if masked[j] in "([{":
            depth += 1
        elif masked[j] in ")]}":
            depth -= 1
            if depth == 0:
                return j + 1
    raise ScanError("'[' was never closed", i)


def _drop_brackets(src: str, a: int, b: int) -> str:
    """Blank `[ ... ]`; a list over several lines keeps its newlines behind backslash continuations."""
    lines = _blank(src[a:b]).split("\n")
    return "\n".join(ln[:-1] + "\\" if k < len(lines) - 1 else ln for k, ln in enumerate(lines))


def _type_edits(src: str, scan: Scan, used: set[str]) -> list[tuple[int, int, str]]:
    masked, edits = scan.masked, []
    for m in _TYPE_STMT.finditer(masked):
        if scan.depth_at[m.start(1)] != 0:
            continue
        end = _close(masked, m.start(3)) if m.group(3) else m.end()
        rest = masked[end:]
        eq = len(rest) - len(rest.lstrip(" \t"))
        if not rest[eq:].startswith("=") or rest[eq:].startswith("=="):
            continue
        name_end = m.start(2) + len(m.group(2))
        if end + eq > name_end:  # `type X[T] = Y` -> `(    X   )= Y`: the name keeps its column
            rep = "(" + _blank(src[m.start(1) + 1:m.start(2)]) + m.group(2) + _blank(src[name_end:end + eq - 1]) + ")"
        else:  # `type X= Y` -> `X    = Y`
            old, name = src[m.start(1):end + eq], m.group(2)
            rep = name + " " * (len(old.encode("utf-8")) - len(name.encode("utf-8")))
        edits.append((m.start(1), end + eq, rep))
        used.add(TYPE_ALIAS)
    for m in _GENERIC.finditer(masked):
        a = m.start(1)
        b = _close(masked, a)
        edits.append((a, b, _drop_brackets(src, a, b)))  # `def f[T](x)` -> `def f   (x)`
        used.add(TYPE_PARAMS)
    return edits


class _Fill(ast.NodeTransformer):
    """Replace each hole (an empty tuple at a recorded position) by the JoinedStr it stands for."""

    def __init__(self, src: str, pos: _Pos, holes: dict, used: set[str]):
        self.src, self.pos, self.holes, self.used = src, pos, holes, used

    def visit_Tuple(self, node: ast.Tuple) -> ast.AST:
        group = self.holes.get((node.lineno, node.col_offset)) if not node.elts else None
        if group is None:
            return self.generic_visit(node)
        return _Builder(self.src, self.pos, self.used).group(group)


class _Builder:
    def __init__(self, src: str, pos: _Pos, used: set[str]):
        self.src, self.pos, self.used = src, pos, used

    def _at(self, node: ast.AST, a: int, b: int) -> ast.AST:
        node.lineno, node.col_offset = self.pos(a)
        node.end_lineno, node.end_col_offset = self.pos(b)
        return node

    def group(self, group: list[StrTok]) -> ast.AST:
        a, b = group[0].start, group[-1].end
        values: list = []
        for tok in group:
            if tok.is_f:
                values += self._parts(tok, tok.parts)
            else:
                values.append(ast.literal_eval(self.src[tok.start:tok.end]))
        return self._at(ast.JoinedStr(values=self._merge(values, a, b)), a, b)

    def _merge(self, values: list, a: int, b: int) -> list[ast.AST]:
        out: list[ast.AST] = []
        for v in values:
            if isinstance(v, str):
                if out and isinstance(out[-1], ast.Constant):
                    out[-1].value += v
                elif v:
                    out.append(self._at(ast.Constant(value=v), a, b))
            else:
                out.append(v)
        return out

    def _parts(self, tok: StrTok, parts: list) -> list:
        values: list = []
        for p in parts:
            if isinstance(p, Field):
                values += self._field(tok, p)
            else:
                values.append(self._literal(tok, *p))
        return values

    def _literal(self, tok: StrTok, a: int, b: int) -> str:
        text = self.src[a:b].replace("{{", "{").replace("}}", "}")
        if "r" in tok.prefix:
            return text
        try:
            return ast.literal_eval(tok.quote + text + tok.quote)
        except (SyntaxError, ValueError):
            return text

    def _field(self, tok: StrTok, f: Field) -> list:
        out: list = []
        if f.debug_end is not None:
            out.append(self.src[f.expr_start:f.debug_end])
        conversion = f.conversion
        if f.debug_end is not None and conversion == -1 and f.spec is None:
            conversion = ord("r")
        spec = None
        if f.spec is not None:
            sa, sb = f.spec_span
            spec = self._at(ast.JoinedStr(values=self._merge(self._parts(tok, f.spec), sa, sb)), sa, sb)
        value = _parse_expr(self.src, f.expr_start, f.expr_end, self.pos, self.used)
        out.append(self._at(ast.FormattedValue(value=value, conversion=conversion, format_spec=spec),
                            f.start, f.end))
        return out


def _parse_expr(src: str, a: int, b: int, pos: _Pos, used: set[str]) -> ast.expr:
    """Parse the expression src[a:b] of a replacement field, with positions in the whole file."""
    text = src[a:b]
    line0, col0 = pos(a)
    if not text.strip():
        raise SyntaxError("f-string: valid expression required before '}'", ("", line0, col0, ""))
    try:
        try:
            expr = _plain("(" + text + "\n)", "eval").body
        except SyntaxError:
            expr = _rewrite_parse("(" + text + "\n)", "eval", used).body
    except SyntaxError as exc:
        raise SyntaxError(exc.msg, ("", (exc.lineno or 1) + line0 - 1, exc.offset, "")) from None
    for node in ast.walk(expr):
        if "lineno" not in node._attributes:
            continue
        if getattr(node, "lineno", None) is None:
            continue
        if node.lineno == 1:
            node.col_offset += col0 - 1
        if node.end_lineno == 1:
            node.end_col_offset += col0 - 1
        node.lineno += line0 - 1
        node.end_lineno += line0 - 1
    return expr
