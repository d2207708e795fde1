"""Shape checks that need the syntax rather than the data flow.

Two patterns are about *which position* a value comes from, which label sets do not capture:

* position-aligned gates: inside a loop over positions `i`, a hint/gate/valid flag written at `[i]` whose
  value or guarding condition reads the token at the same `[i]` (the token being predicted there).
  The legal tilt reads `tokens[i - 1]` (the prefix) and passes.
* previous-token mixing (SmearGate-like): a hidden state shifted by one position (`h[:, :-1]`,
  `F.pad(h, (0, 0, 1, 0))`, `torch.roll(h, 1, 1)`) added into the next position with no document
  boundary (BOS) mask in the same function or class.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from auditor.analysis.envdefaults import dotted

_HINT_NAME = re.compile(r"(hint|valid|gate|beta|bonus|tilt|boost|expert|lam|alpha|mix|emit|use_)", re.I)
_TOKEN_SEQ = re.compile(r"(tok|ids|stream|seq|target|^y$|^yb$|^ys$|text|data|buf)", re.I)
_BOS_HINT = re.compile(r"(bos|doc_?start|doc_?mask|doc_?ids?|doc_?boundar|not_first|is_first|seq_?start|"
                       r"cu_?seqlens|document|boundary_mask|reset_mask|sep_mask|eos)", re.I)
_IDS_NAME = re.compile(r"(ids|idx|tok|input|target|label|^y$|batch|buf|chunk|window|local|logit|logp|prob|nll|"
                       r"loss|score|mask)", re.I)


@dataclass
class PosGate:
    read_line: int
    write_line: int
    seq: str
    index: str
    target: str
    cond_line: int | None


@dataclass
class SmearSite:
    line: int
    text: str
    func_line: int
    masked: bool
    mask_line: int | None


def _idx_text(node: ast.AST) -> str:
    return ast.unparse(node).replace(" ", "")


def position_gates(loops: list[ast.AST]) -> list[PosGate]:
    out: list[PosGate] = []
    for loop in loops:
        if not isinstance(loop, (ast.For, ast.While)):
            continue
        if isinstance(loop, ast.For):
            loopvars = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
        else:
            loopvars = {n.id for n in ast.walk(loop.test) if isinstance(n, ast.Name)}
        # names holding the token at a loop position: name -> (index text, seq, line)
        tainted: dict[str, tuple[str, str, int]] = {}

        def reads(node: ast.AST) -> tuple[str, str, int] | None:
            for n in ast.walk(node):
                if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Name) and n.slice.id in loopvars:
                    seq = dotted(n.value) or ""
                    if seq and _TOKEN_SEQ.search(seq.rsplit(".", 1)[-1]) and not _HINT_NAME.search(seq):
                        return (n.slice.id, seq, n.lineno)
                if isinstance(n, ast.Name) and n.id in tainted:
                    return tainted[n.id]
            return None

        def visit(stmts: list[ast.stmt], cond: tuple[tuple[str, str, int], int] | None) -> None:
            for s in stmts:
                if isinstance(s, ast.Assign):
                    r = reads(s.value)
                    for t in s.targets:
                        if isinstance(t, ast.Name) and r is not None:
                            tainted[t.id] = r
                        if isinstance(t, ast.Subscript):
                            base = dotted(t.value) or ""
                            idx = _idx_text(t.slice)
                            src = r if r is not None else (cond[0] if cond else None)
                            if src is not None and _HINT_NAME.search(base.rsplit(".", 1)[-1]) and idx == src[0]:
                                out.append(PosGate(src[2], s.lineno, src[1], idx, base,
                                                   cond[1] if (r is None and cond) else None))
                elif isinstance(s, ast.If):
                    r = reads(s.test)
                    c = (r, s.lineno) if r is not None else cond
                    visit(s.body, c)
                    visit(s.orelse, c)
                elif isinstance(s, (ast.For, ast.While, ast.With)):
                    visit(s.body, cond)
                elif isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Subscript):
                    base = dotted(s.target.value) or ""
                    r = reads(s.value) or (cond[0] if cond else None)
                    if r is not None and _HINT_NAME.search(base.rsplit(".", 1)[-1]) \
                            and _idx_text(s.target.slice) == r[0]:
                        out.append(PosGate(r[2], s.lineno, r[1], r[0], base, cond[1] if cond else None))

        visit(loop.body, None)
    uniq = {(g.read_line, g.write_line): g for g in out}
    return [uniq[k] for k in sorted(uniq)]


def _is_prev_shift(node: ast.AST) -> str | None:
    """Text of the shifted base when `node` is a one-position shift along the sequence axis."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) >= 2:
        ax1 = node.slice.elts[1]
        if isinstance(ax1, ast.Slice) and ax1.lower is None and isinstance(ax1.upper, ast.UnaryOp) \
                and isinstance(ax1.upper.op, ast.USub) and isinstance(ax1.upper.operand, ast.Constant) \
                and ax1.upper.operand.value == 1 and isinstance(node.slice.elts[0], ast.Slice):
            return ast.unparse(node.value)
    if isinstance(node, ast.Call):
        leaf = (dotted(node.func) or "").rsplit(".", 1)[-1]
        if leaf == "cat" and node.args and isinstance(node.args[0], (ast.List, ast.Tuple)) \
                and len(node.args[0].elts) == 2:
            return _is_prev_shift(node.args[0].elts[1])
        if leaf == "pad" and len(node.args) >= 2 and isinstance(node.args[1], (ast.Tuple, ast.List)):
            vals = [e.value if isinstance(e, ast.Constant) else None for e in node.args[1].elts]
            if vals[-2:] == [1, 0] and len(vals) >= 4:
                inner = node.args[0]
                return ast.unparse(inner.value if isinstance(inner, ast.Subscript) else inner)
        if leaf == "roll":
            shifts = node.args[1] if len(node.args) > 1 else \
                next((k.value for k in node.keywords if k.arg == "shifts"), None)
            if isinstance(shifts, ast.Constant) and shifts.value == 1:
                return ast.unparse(node.args[0]) if node.args else "?"
    return None


def _arith_leaves(node: ast.AST) -> list[ast.AST]:
    """Operands reached through + - * and unary ops only: a shift hashed or passed to a call is not mixing."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        return _arith_leaves(node.left) + _arith_leaves(node.right)
    if isinstance(node, ast.UnaryOp):
        return _arith_leaves(node.operand)
    return [node]


def _is_bos_compare(n: ast.AST) -> bool:
    if not isinstance(n, ast.Compare):
        return False
    if _BOS_HINT.search(ast.unparse(n)):
        return True
    return isinstance(n.ops[0], (ast.NotEq, ast.Eq)) and _IDS_NAME.search(ast.unparse(n.left)) is not None and \
        any(isinstance(c, ast.Constant) and c.value in (0, 1, 2) for c in n.comparators)


def _mask_names(func_node: ast.AST) -> tuple[set[str], int | None]:
    """Names holding a document-boundary mask in this function (params named like one, values built
    from a BOS comparison, and values derived from those), plus the line of the first such comparison."""
    names: set[str] = set()
    first = None
    args = getattr(func_node, "args", None)
    if args is not None:
        for a in args.args + args.kwonlyargs:
            if _BOS_HINT.search(a.arg) or re.search(r"mask", a.arg, re.I):
                names.add(a.arg)
    assigns = sorted((n for n in ast.walk(func_node) if isinstance(n, ast.Assign)), key=lambda n: n.lineno)
    for n in assigns:
        targets = [t.id for t in n.targets if isinstance(t, ast.Name)]
        bos = next((c for c in ast.walk(n.value) if _is_bos_compare(c)), None)
        uses = any(isinstance(c, ast.Name) and c.id in names for c in ast.walk(n.value))
        if bos is not None or uses:
            names.update(targets)
            if bos is not None and first is None:
                first = bos.lineno
    return names, first


def smear_sites(cls_node: ast.ClassDef | None, func_node: ast.AST) -> list[SmearSite]:
    """Previous-token mixing inside one function; `masked` when a BOS/document mask reaches the mixing."""
    del cls_node  # the mask must be applied where the mixing happens, not merely exist in the class
    masks, mask_line = _mask_names(func_node)
    shifted: dict[str, bool] = {}  # name -> its value is already masked
    sites: list[tuple[int, str, bool]] = []
    stmts = [n for n in ast.walk(func_node) if isinstance(n, (ast.Assign, ast.AugAssign, ast.Return, ast.Expr))]
    for st in sorted(stmts, key=lambda n: n.lineno):
        value = st.value
        if value is None:
            continue
        refs = {c.id for c in ast.walk(value) if isinstance(c, ast.Name)}
        st_masked = bool(refs & masks) or any(_is_bos_compare(c) for c in ast.walk(value))
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            base = _is_prev_shift(value)
            if base is not None and not _IDS_NAME.search(base.split("[")[0].rsplit(".", 1)[-1]):
                shifted[st.targets[0].id] = st_masked
                continue
        for n in ast.walk(value):
            if not (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add)):
                continue
            for side in (n.left, n.right):
                for c in _arith_leaves(side):
                    base = _is_prev_shift(c)
                    if base is not None and not _IDS_NAME.search(base.split("[")[0].rsplit(".", 1)[-1]):
                        sites.append((st.lineno, base, st_masked))
                    elif isinstance(c, ast.Name) and c.id in shifted:
                        sites.append((st.lineno, c.id, st_masked or shifted[c.id]))
    out = []
    seen = set()
    for line, base, masked in sorted(sites):
        if line in seen:
            continue
        seen.add(line)
        out.append(SmearSite(line, base, getattr(func_node, "lineno", 1), masked, mask_line if masked else None))
    return out
