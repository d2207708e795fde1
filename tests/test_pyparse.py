"""pyparse: Python 3.12 syntax parsed on 3.11 with the positions CPython 3.12 reports.

The expected positions below were checked against CPython 3.12.1's own `ast.parse` of SOURCE.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from auditor.analysis.pyparse import FSTRING, TYPE_ALIAS, TYPE_PARAMS, parse_source

SOURCE = '''import torch
names = {"a": 1}
msg = f"{names["a"]} and {", ".join(sorted(names))}"
deep = f"{f"{f"{names["a"]}"}"}"
esc = f"{'\\n'.join(x for x in names)}"
multi = f"{
    torch.cat([  # a comment inside the field
        torch.zeros(3),
    ]).sum()
}"
spec = f"{names["a"]!r:>{len("width")}} {torch.pi=}"
\u00e9 = "x"; uni = f"\u00e9{\u00e9}{names["a"]}"
cat = ("plain "
       f"{names["a"]}" "tail")
type Vec = list[float]
type Pair[T] = tuple[T, T]
def first[T](xs: list[T]) -> T:
    return xs[0]
class Box[T: (int, str)](object):
    def get(self) -> T:
        return torch.load(f"{self["path"]}")
def span[
    A,
    B,
](a: A) -> A:
    return a
'''


@pytest.fixture(scope="module")
def tree() -> ast.Module:
    with pytest.raises(SyntaxError):
        ast.parse(SOURCE)  # the point: Python 3.11 rejects this file
    res = parse_source(SOURCE, "train_gpt.py")
    assert res.ok and res.error is None
    assert res.rewritten == (FSTRING, TYPE_PARAMS, TYPE_ALIAS)
    return res.tree


def _where(tree: ast.Module, kind: type, text: str) -> list[tuple[int, int, int, int]]:
    return [(n.lineno, n.col_offset, n.end_lineno, n.end_col_offset) for n in ast.walk(tree)
            if isinstance(n, kind) and ast.unparse(n) == text]


def test_nested_same_quotes_keep_positions(tree):
    assert _where(tree, ast.Call, "', '.join(sorted(names))") == [(3, 26, 3, 50)]
    assert (3, 9, 3, 19) in _where(tree, ast.Subscript, "names['a']")
    assert (4, 16, 4, 26) in _where(tree, ast.Subscript, "names['a']")  # three f-strings deep


def test_backslash_and_comment_inside_fields(tree):
    assert _where(tree, ast.Attribute, "'\\n'.join") == [(5, 9, 5, 18)]
    assert _where(tree, ast.Call, "torch.zeros(3)") == [(8, 8, 8, 22)]
    assert _where(tree, ast.Attribute, "torch.cat") == [(7, 4, 7, 13)]


def test_conversion_spec_and_debug(tree):
    fv = tree.body[6].value
    assert isinstance(fv, ast.JoinedStr)
    first, const, debug = fv.values
    assert first.conversion == ord("r")
    assert _where(tree, ast.Call, "len('width')") == [(11, 25, 11, 37)]
    assert const.value == " torch.pi=" and debug.conversion == ord("r")
    assert _where(tree, ast.Attribute, "torch.pi") == [(11, 41, 11, 49)]


def test_columns_are_utf8_bytes_after_non_ascii(tree):
    assert (12, 25, 12, 35) in _where(tree, ast.Subscript, "names['a']")
    assert _where(tree, ast.Name, "\u00e9") == [(12, 0, 12, 2), (12, 21, 12, 23)]


def test_implicit_concatenation_is_one_joinedstr(tree):
    value = tree.body[9].value
    assert [type(v).__name__ for v in value.values] == ["Constant", "FormattedValue", "Constant"]
    assert value.values[0].value == "plain " and value.values[2].value == "tail"
    assert (value.lineno, value.col_offset, value.end_lineno, value.end_col_offset) == (13, 7, 14, 29)


def test_type_statements_become_assignments(tree):
    vec, pair = tree.body[10], tree.body[11]
    assert isinstance(vec, ast.Assign) and isinstance(pair, ast.Assign)
    assert (vec.targets[0].id, vec.targets[0].col_offset) == ("Vec", 5)
    assert (pair.targets[0].id, pair.targets[0].col_offset) == ("Pair", 5)
    assert _where(tree, ast.Subscript, "tuple[T, T]") == [(16, 15, 16, 26)]


def test_generic_functions_and_classes(tree):
    first, box, span = tree.body[12], tree.body[13], tree.body[14]
    assert (first.name, first.lineno, first.args.args[0].arg) == ("first", 17, "xs")
    assert (box.name, box.bases[0].id, box.lineno) == ("Box", "object", 19)
    assert _where(tree, ast.Call, "torch.load(f\"{self['path']}\")") == [(21, 15, 21, 44)]
    assert (span.name, span.lineno, span.end_lineno, span.args.args[0].arg) == ("span", 22, 26, "a")


def test_plain_311_file_is_untouched():
    res = parse_source("x = f'{a}'\n", "a.py")
    assert res.ok and res.rewritten == ()


def test_real_error_after_312_syntax_reports_its_line():
    res = parse_source('a = f"{d["k"]}"\nb = 1\nc = (2,\n', "train_gpt.py")
    assert not res.ok and res.error_line == 3
    assert res.describe_error().startswith("train_gpt.py does not parse: ")


def test_unterminated_fstring_is_an_error_with_line():
    res = parse_source('x = 1\ny = f"{d["k"]}\n', "t.py")
    assert not res.ok and res.error_line == 2


CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus not present")
def test_every_corpus_script_parses():
    rewritten = []
    for path in sorted(CORPUS.rglob("*.py")):
        res = parse_source(path.read_text(encoding="utf-8"), path.name)
        assert res.ok, res.describe_error()
        if res.rewritten:
            rewritten.append(path.parent.name)
    assert rewritten == ["2026-05-01_PR1873_PPMOptGate"]
