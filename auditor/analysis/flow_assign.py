"""Assignment semantics of the flow analysis (a mixin of FlowAnalyzer in flow.py): how labels reach
names, attributes and subscripts, and which assignments are events (per-position writes, count
updates, optimizer construction, score accumulation)."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from auditor.analysis.envdefaults import dotted
from auditor.analysis.flow_calls import (
    _next_token_slice,
    _has_param,
)
from auditor.analysis.vocabulary import (
    is_target_name,
    name_seeds,
    GOLD,
    NLL,
    OPTIMIZERS,
    SCORE_ACC,
    TABLE_NAME,
    TGT,
    VAL,
    WEIGHT_NAME,
)

if TYPE_CHECKING:
    pass


class AssignSemantics:
    """Methods FlowAnalyzer mixes in; they read and emit through the analyser's own state."""

    def assign(self, target: ast.AST, labs: frozenset, value: ast.AST | None, stmt: ast.stmt) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = self._named(target.id, labs, stmt)
            if VAL in labs and _next_token_slice(value):
                # `targets = chunk[1:]`: the tokens being predicted, whatever the name
                self.env[target.id] = self.env[target.id] | {TGT, f"tv:{stmt.lineno}:{target.id}"}
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                for t, v in zip(target.elts, value.elts):
                    self.assign(t, self.expr(v), v, stmt)
            else:
                for t in target.elts:
                    self.assign(t, labs, None, stmt)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, labs, None, stmt)
        elif isinstance(target, ast.Attribute):
            d = dotted(target)
            if d:
                self.env[d] = self._named(d, labs, stmt)
            self.expr(target.value)
        elif isinstance(target, ast.Subscript):
            base = dotted(target.value)
            idx = self.expr(target.slice)
            if base:
                self.env[base] = self.env.get(base, self.globals.get(base, frozenset())) | labs
            self._pos_write(target, base)
            if value is not None and isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add) \
                    and ast.unparse(value.left) == ast.unparse(target):
                self._count_update(target, idx, stmt)

    def _pos_write(self, target: ast.Subscript, base: str | None) -> None:
        """A per-position output (hints[i] = ...) written inside a loop over positions: in a causal sweep
        the value for position i is produced before the state is updated with token i."""
        if not self.loops or not base or TABLE_NAME.search(base.rsplit(".", 1)[-1]):
            return
        loopvars = set(self.loops[-1].targets)
        if loopvars and any(isinstance(n, ast.Name) and n.id in loopvars for n in ast.walk(target.slice)):
            self.emit("pos_write", target, frozenset(), table=base)

    def _named(self, name: str, labs: frozenset, stmt: ast.stmt) -> frozenset:
        out = set(labs) | name_seeds(name)
        if is_target_name(name):
            out |= {TGT, f"tv:{stmt.lineno}:{name}"}
        leaf = name.rsplit(".", 1)[-1]
        if self.pc and WEIGHT_NAME.search(leaf):
            for p in self.pc:
                out |= p
        return frozenset(out)

    def _post_assign(self, targets: list[ast.AST], value: ast.AST, stmt: ast.stmt) -> None:
        names = [dotted(t) for t in targets if dotted(t)]
        if isinstance(value, (ast.Name, ast.Attribute)):
            res = self._resolve(value)
            if res[0] or res[2]:
                for n in names:
                    self.func_alias[n] = res
        if isinstance(value, ast.Call):
            leaf = (dotted(value.func) or "").rsplit(".", 1)[-1]
            if leaf in OPTIMIZERS:
                params = set()
                for a in list(value.args[:1]) + [k.value for k in value.keywords if k.arg == "params"]:
                    for n in ast.walk(a):
                        d = dotted(n) if isinstance(n, (ast.Name, ast.Attribute)) else None
                        if d:
                            params.add(d)
                fresh = bool(params & self.fresh_names)
                for n in names:
                    self.opt_names[n] = {"params": sorted(params), "fresh": fresh, "line": stmt.lineno}
                self.emit("opt", stmt, names=names, params=sorted(params), fresh=fresh)
        fresh = self.prog.cache.get(("fresh", id(value)))
        if fresh is None:
            fresh = False
            for n in ast.walk(value):
                if isinstance(n, ast.keyword) and n.arg == "requires_grad" and isinstance(n.value, ast.Constant) \
                        and n.value.value is True:
                    fresh = True
                if isinstance(n, ast.Call):
                    leaf = (dotted(n.func) or "").rsplit(".", 1)[-1]
                    if leaf == "requires_grad_" or (leaf == "Parameter" and self.func.name != "__init__"):
                        fresh = True
            self.prog.cache[("fresh", id(value))] = fresh
        if fresh:
            self.fresh_names.update(names)
            self.emit("fresh", stmt, names=names)
        for n in names:
            if SCORE_ACC.search(n.rsplit(".", 1)[-1]) and isinstance(value, ast.BinOp) \
                    and isinstance(value.op, ast.Add) and dotted(value.left) == n:
                labs = self.expr(value.right)
                if labs & {VAL, GOLD, NLL, TGT}:
                    self.emit("score", stmt, labs, acc=n)

    def _aug(self, target: ast.AST, labs: frozenset, stmt: ast.AugAssign) -> None:
        if isinstance(target, (ast.Name, ast.Attribute)):
            d = dotted(target)
            if d:
                self.env[d] = self.env.get(d, self.globals.get(d, frozenset())) | labs
                if isinstance(stmt.op, (ast.Add, ast.Sub)) and SCORE_ACC.search(d.rsplit(".", 1)[-1]) \
                        and (labs & {VAL, GOLD, NLL, TGT} or _has_param(labs)):
                    self.emit("score", stmt, labs, acc=d)
        elif isinstance(target, ast.Subscript):
            idx = self.expr(target.slice)
            base = dotted(target.value)
            if base:
                self.env[base] = self.env.get(base, frozenset()) | labs
                if isinstance(stmt.op, (ast.Add, ast.Sub)) and SCORE_ACC.search(base.rsplit(".", 1)[-1]) \
                        and labs & {VAL, GOLD, NLL, TGT}:
                    self.emit("score", stmt, labs, acc=base)
                    return
            self._count_update(target, idx, stmt)

    def _count_update(self, target: ast.Subscript, idx: frozenset, stmt: ast.stmt) -> None:
        base = dotted(target.value) or ""
        if TABLE_NAME.search(base.rsplit(".", 1)[-1]) and (idx & {VAL, TGT, GOLD} or _has_param(idx)):
            self.emit("update", stmt, idx | {"count"}, table=base, how="count")
