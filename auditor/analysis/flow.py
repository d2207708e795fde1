"""Intra-procedural data flow: which values carry validation tokens, targets, gold-token probabilities.

Each function is interpreted once over its statements (loops twice, to pick up loop-carried flow) with
an abstract state mapping names to label sets. Labels:

  val      derived from the validation token stream
  train    derived from training shards
  target   the label tensor (the token being predicted)
  gold     a value read at the target index (gathered probability, count looked up with the target)
  lookup   a table entry addressed by a key built from the target
  ratio    a count ratio whose denominator is not a sum over the vocabulary
  perbyte  a token log-probability spread over its bytes
  nll      a per-token loss
  tv:<L>   the definition (line L) of a target tensor, to tell "the same targets" from others
  env:<V>  depends on environment variable V
  param:<p> depends on parameter p (resolved at call sites through function summaries)

Events (optimizer steps, backward passes, count updates, score accumulations, mixtures, external
calls, ...) are recorded with the labels of the values involved, the enclosing loops, and the
statically-false guards they sit under. Rules read events; they never walk the AST themselves.

Statement semantics of the flow interpreter (~410 lines); assignments and calls are mixins.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from auditor.analysis.envdefaults import EnvModel, dotted
from auditor.analysis.events import Event, EventKind, Loop, Summary, payload
from auditor.analysis.flow_assign import AssignSemantics
from auditor.analysis.flow_calls import (
    CallSemantics,
)
from auditor.analysis.vocabulary import (
    mentions_train_bin,
    is_target_name,
    name_seeds,
    FILEREF,
    GOLD,
    KILL_ATTRS,
    TGT,
    TRAIN,
    VAL,
)

if TYPE_CHECKING:
    from auditor.analysis.index import Func, ProgramIndex

WORK_LIMIT = 200_000  # per function; past it loops are interpreted once (labels may be missed, never invented)


class FlowAnalyzer(AssignSemantics, CallSemantics):
    """Interprets one function body over label sets and records events."""

    def __init__(self, prog: "ProgramIndex", env_model: EnvModel, func: "Func",
                 summaries: dict["Func", Summary], globals_: dict[str, dict[str, frozenset]],
                 outer_env: dict[str, frozenset] | None = None):
        self.prog = prog
        self.envm = env_model
        self.func = func
        self.mod = prog.modules[func.path]
        self.summaries = summaries
        self.globals = globals_.get(func.path, {})
        self.outer = outer_env or {}
        self.env: dict[str, frozenset] = {}
        self.events: dict[tuple, Event] = {}
        self.loops: list[Loop] = []
        self.dead: list[frozenset] = []
        self.enabled: list[frozenset] = []  # env vars set by the README / logged configuration that open this path
        self.pc: list[frozenset] = []
        self.nograd = 0
        self.ret: set[str] = set()
        self.dead_ranges: list[tuple[int, int, frozenset]] = []
        self.locals_consts = self._single_assignments()
        self.opt_names: dict[str, dict] = {}
        self.func_alias: dict[str, tuple] = {}
        self.work = 0  # statements interpreted; bounds nested-loop re-interpretation on adversarial code
        self.if_tests: list[str] = []  # source of the enclosing if-conditions (for external calls)
        self.fresh_names: set[str] = set()

    # ---- helpers ----------------------------------------------------------------------------
    def _single_assignments(self) -> dict[str, ast.AST]:
        key = ("single", id(self.func.node))
        if key not in self.prog.cache:
            self.prog.cache[key] = self._compute_single_assignments()
        return self.prog.cache[key]

    def _compute_single_assignments(self) -> dict[str, ast.AST]:
        counts: dict[str, int] = {}
        vals: dict[str, ast.AST] = {}
        if self.func.name == "<module>":
            return {}
        for n in ast.walk(self.func.node):
            if isinstance(n, ast.Assign):
                for t in n.targets:
                    if isinstance(t, ast.Name):
                        counts[t.id] = counts.get(t.id, 0) + 1
                        vals[t.id] = n.value
            elif isinstance(n, (ast.AugAssign, ast.AnnAssign)) and isinstance(n.target, ast.Name):
                counts[n.target.id] = counts.get(n.target.id, 0) + 2
        return {k: v for k, v in vals.items() if counts.get(k) == 1}

    def text(self, line: int) -> str:
        lines = self.mod.lines
        return lines[line - 1].strip()[:240] if 0 < line <= len(lines) else ""

    def qual(self, node: ast.AST) -> str:
        d = dotted(node)
        if d is None:
            return ""
        head, _, rest = d.partition(".")
        origin = self.mod.imports.get(head)
        if origin:
            return origin + ("." + rest if rest else "")
        return d

    def emit(self, kind: str, node: ast.AST, labels: frozenset | set = frozenset(), key: Any = None,
             **data: Any) -> None:
        line = getattr(node, "lineno", 0)
        dead = frozenset().union(*self.dead) if self.dead else None
        kind = EventKind(kind)
        ev = Event(kind, self.func.path, line, self.func, frozenset(labels), tuple(self.loops), dead,
                   self.text(line), payload(kind, data), getattr(node, "end_lineno", line) or line, self.nograd > 0,
                   frozenset().union(*self.enabled) if self.enabled else frozenset())
        self.events[(kind, id(node), key)] = ev

    # ---- run --------------------------------------------------------------------------------
    def run(self) -> None:
        for p in self.func.params:
            labs = {f"param:{p}"} | name_seeds(p)
            if is_target_name(p) and p not in ("self", "cls"):
                labs |= {TGT, f"tv:{self.func.line}:{p}"}
            self.env[p] = frozenset(labs)
        self.block(self.func.body)

    def block(self, stmts: list[ast.stmt]) -> None:
        extra_dead: frozenset | None = None
        for s in stmts:
            if extra_dead is not None:
                self.dead.append(extra_dead)
                self.dead_ranges.append((s.lineno, getattr(s, "end_lineno", s.lineno) or s.lineno, extra_dead))
            try:
                self.stmt(s)
            finally:
                if extra_dead is not None:
                    self.dead.pop()
            if isinstance(s, ast.If) and not s.orelse and s.body and isinstance(s.body[-1], (ast.Return, ast.Raise)):
                truth, used = self.envm.truth(s.test, self.func.path, self.locals_consts)
                if truth is True and extra_dead is None:
                    extra_dead = frozenset(used)

    def stmt(self, s: ast.stmt) -> None:  # noqa: C901 - a dispatcher
        self.work += 1
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for d in getattr(s, "decorator_list", []):
                self.expr(d)
            return
        if isinstance(s, ast.Assign):
            labs = self.expr(s.value)
            for t in s.targets:
                self.assign(t, labs, s.value, s)
            self._post_assign(s.targets, s.value, s)
        elif isinstance(s, ast.AnnAssign):
            if s.value is not None:
                labs = self.expr(s.value)
                self.assign(s.target, labs, s.value, s)
                self._post_assign([s.target], s.value, s)
        elif isinstance(s, ast.AugAssign):
            labs = self.expr(s.value)
            self._aug(s.target, labs, s)
        elif isinstance(s, ast.Expr):
            self.expr(s.value)
        elif isinstance(s, ast.Return):
            if s.value is not None:
                self.ret |= self.expr(s.value)
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            it = self.expr(s.iter)
            names = tuple(sorted({n.id for n in ast.walk(s.target) if isinstance(n, ast.Name)}))
            loop = Loop(s.lineno, s.end_lineno or s.lineno, names, ast.unparse(s.iter)[:80], id(s))
            self.loops.append(loop)
            before = dict(self.env)
            for _ in range(2):
                self.assign(s.target, it, s.iter, s)
                self.block(s.body)
                if self.work > WORK_LIMIT or not self._carried_changed(s, before):
                    break
            self.loops.pop()
            self._join(before)
            self.block(s.orelse)
        elif isinstance(s, ast.While):
            self.expr(s.test)
            loop = Loop(s.lineno, s.end_lineno or s.lineno, (), ast.unparse(s.test)[:80], id(s))
            truth, used = self.envm.truth(s.test, self.func.path, self.locals_consts)
            if truth is False:
                self._dead_push(s.body, used)
            self.loops.append(loop)
            before = dict(self.env)
            for _ in range(2):
                self.block(s.body)
                if self.work > WORK_LIMIT or not self._carried_changed(s, before):
                    break
            self.loops.pop()
            if truth is False:
                self.dead.pop()
            self._join(before)
            self.block(s.orelse)
        elif isinstance(s, ast.If):
            tl = self.expr(s.test)
            truth, used = self.envm.truth(s.test, self.func.path, self.locals_consts)
            before = dict(self.env)
            tainted = tl & {TGT, GOLD}
            if tainted:
                self.pc.append(frozenset(tl))
            if truth is False:
                self._dead_push(s.body, used)
            overridden = frozenset(v for v in used if v in self.envm.overrides)
            self.enabled.append(overridden if truth is True else frozenset())
            self.if_tests.append(ast.unparse(s.test)[:120])
            self.block(s.body)
            self.if_tests.pop()
            self.enabled.pop()
            if truth is False:
                self.dead.pop()
            after_body = self.env
            self.env = dict(before)
            if truth is True and s.orelse:
                self._dead_push(s.orelse, used)
            self.enabled.append(overridden if truth is False else frozenset())
            self.block(s.orelse)
            self.enabled.pop()
            if truth is True and s.orelse:
                self.dead.pop()
            if tainted:
                self.pc.pop()
            self._join(after_body)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            ng = 0
            for item in s.items:
                q = self.qual(item.context_expr.func) if isinstance(item.context_expr, ast.Call) else ""
                if q.rsplit(".", 1)[-1] in ("no_grad", "inference_mode"):
                    ng += 1
                labs = self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, labs, item.context_expr, s)
            self.nograd += ng
            self.block(s.body)
            self.nograd -= ng
        elif isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            self.block(s.body)
            for h in s.handlers:
                self.block(h.body)
            self.block(s.orelse)
            self.block(s.finalbody)
        elif isinstance(s, ast.Delete):
            names = [dotted(t) for t in s.targets if dotted(t)]
            self.emit("del", s, names=names)
        elif isinstance(s, ast.Assert):
            self.expr(s.test)
        elif type(s).__name__ == "Match":
            self.expr(s.subject)  # type: ignore[attr-defined]
            for c in s.cases:  # type: ignore[attr-defined]
                self.block(c.body)
        elif isinstance(s, (ast.Import, ast.ImportFrom)):
            mods = []
            if isinstance(s, ast.Import):
                mods = [a.name for a in s.names]
            elif s.module:
                mods = [s.module] + [f"{s.module}.{a.name}" for a in s.names]
            else:
                mods = [a.name for a in s.names]
            for m in mods:
                target = self.prog.module_of(m)
                if target is not None and target.path != self.func.path:
                    self.emit("import", s, key=m, module=target.path, name=m)

    def _carried_changed(self, loop: ast.AST, before: dict[str, frozenset]) -> bool:
        """Whether a second pass over the loop body can change anything: a name read in the body before
        the body assigns it (a loop-carried value such as `prev_y`) got new labels in the first pass."""
        carried = self.prog.cache.get(("carried", id(loop)))
        if carried is None:
            first_load: dict[str, int] = {}
            first_store: dict[str, int] = {}
            for n in ast.walk(loop):
                if isinstance(n, ast.Name):
                    d = first_store if isinstance(n.ctx, ast.Store) else first_load
                    pos = (n.lineno, n.col_offset)
                    if n.id not in d or pos < d[n.id]:
                        d[n.id] = pos
            carried = frozenset(k for k, v in first_load.items() if k in first_store and v < first_store[k])
            self.prog.cache[("carried", id(loop))] = carried
        return any(not (self.env.get(k, frozenset()) <= before.get(k, frozenset())) for k in carried)

    def _dead_push(self, body: list[ast.stmt], used: set[str]) -> None:
        vars_ = frozenset(used)
        self.dead.append(vars_)
        if body:
            self.dead_ranges.append((body[0].lineno, getattr(body[-1], "end_lineno", body[-1].lineno), vars_))

    def _join(self, other: dict[str, frozenset]) -> None:
        for k, v in other.items():
            self.env[k] = self.env.get(k, frozenset()) | v

    # ---- assignment -------------------------------------------------------------------------

    # ---- expressions ------------------------------------------------------------------------
    def lookup_name(self, name: str) -> frozenset:
        if name in self.env:
            return self.env[name]
        if name in self.outer:
            return self.outer[name]
        if name in self.globals:
            return self.globals[name]
        seeds = name_seeds(name)
        return frozenset(seeds)

    def expr(self, node: ast.AST | None) -> frozenset:  # noqa: C901 - a dispatcher
        if node is None:
            return frozenset()
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                low = node.value
                out = set()
                if "fineweb_train" in low or mentions_train_bin(low):
                    out.add(TRAIN)
                if "fineweb_val" in low:
                    out.add(VAL)
                if len(low) < 400:
                    for m in FILEREF.finditer(low):
                        self.emit("fileref", node, key=m.group(1), name=m.group(1))
                return frozenset(out)
            return frozenset()
        if isinstance(node, ast.Name):
            labs = self.lookup_name(node.id)
            self._ref(node)
            return labs
        if isinstance(node, ast.Attribute):
            d = dotted(node)
            if d and d in self.env:
                return self.env[d]
            if node.attr in KILL_ATTRS:
                self.expr(node.value)
                return frozenset()
            base = self.expr(node.value)
            out = set(base) | name_seeds(node.attr)
            if node.attr in self.envm.attrs:
                out |= {f"env:{v}" for v in self.envm.env_vars_in(self.envm.attrs[node.attr])}
            if d and d in self.globals:
                out |= self.globals[d]
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                out = (out - {"param:self", "param:cls"})
            if d:
                self._ref(node)
            return frozenset(out)
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.UnaryOp):
            return self.expr(node.operand)
        if isinstance(node, ast.BoolOp):
            return frozenset().union(*[self.expr(v) for v in node.values])
        if isinstance(node, ast.Compare):
            return frozenset().union(self.expr(node.left), *[self.expr(c) for c in node.comparators])
        if isinstance(node, ast.IfExp):
            self.expr(node.test)
            return self.expr(node.body) | self.expr(node.orelse)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return frozenset().union(*[self.expr(e) for e in node.elts]) if node.elts else frozenset()
        if isinstance(node, ast.Dict):
            return frozenset().union(frozenset(), *[self.expr(v) for v in node.values],
                                     *[self.expr(k) for k in node.keys if k is not None])
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            saved = dict(self.env)
            for g in node.generators:
                it = self.expr(g.iter)
                self.assign(g.target, it, None, node)  # type: ignore[arg-type]
                for cond in g.ifs:
                    self.expr(cond)
            if isinstance(node, ast.DictComp):
                out = self.expr(node.key) | self.expr(node.value)
            else:
                out = self.expr(node.elt)
            self.env = saved
            return out
        if isinstance(node, ast.Starred):
            return self.expr(node.value)
        if isinstance(node, ast.NamedExpr):
            labs = self.expr(node.value)
            self.assign(node.target, labs, node.value, node)  # type: ignore[arg-type]
            return labs
        if isinstance(node, ast.JoinedStr):
            return frozenset().union(frozenset(), *[self.expr(v) for v in node.values])
        if isinstance(node, ast.FormattedValue):
            return self.expr(node.value)
        if isinstance(node, ast.Await):
            return self.expr(node.value)
        if isinstance(node, ast.Slice):
            return frozenset().union(self.expr(node.lower), self.expr(node.upper), self.expr(node.step))
        if isinstance(node, ast.Lambda):
            return frozenset()
        return frozenset()

    def _resolve(self, func_node: ast.AST) -> tuple:
        d = dotted(func_node) if isinstance(func_node, (ast.Name, ast.Attribute)) else None
        if d and d in self.func_alias:
            return self.func_alias[d]
        return self.prog.resolve(self.func, func_node)

    def _ref(self, node: ast.AST) -> None:
        """A function or class named as a value (passed, stored, compiled) is reachable from here."""
        if isinstance(node, ast.Name):
            callees, _, cls = self.prog.resolve(self.func, node)
            if callees or cls:
                self.emit("ref", node, key=node.id, callees=callees, cls=cls)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in self.mod.imports:
            callees, _, cls = self.prog.resolve(self.func, node)
            if callees or cls:
                self.emit("ref", node, key=dotted(node), callees=callees, cls=cls)

