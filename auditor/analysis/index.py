"""Symbol tables for the submission's Python files: modules, functions, classes, imports, call targets.

Calls are resolved within the submission only (library code is a black box whose results carry the
labels of its arguments). Method calls on unknown objects resolve by method name to every class in the
submission that defines it; that over-approximates reachability, which is the safe direction for a
checker that downgrades unreachable code to info.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from auditor.core import budget
from auditor.analysis.envdefaults import dotted
from auditor.analysis.pyparse import parse_source

# method names too generic to link by name alone (they would connect unrelated library objects)
_GENERIC_METHODS = {"step", "zero_grad", "backward", "item", "to", "cuda", "cpu", "float", "half", "view",
                    "reshape", "sum", "mean", "append", "extend", "get", "items", "keys", "values", "copy_",
                    "format", "join", "split", "strip", "write", "read", "close", "add", "update", "pop",
                    "numel", "size", "contiguous", "detach", "clone", "state_dict", "load_state_dict",
                    "train", "eval", "parameters", "named_parameters", "__init__"}


@dataclass(eq=False)
class Func:
    """A function, method, or a module's top level (name '<module>')."""

    name: str
    qname: str
    path: str
    node: ast.AST
    cls: str | None = None
    parent: "Func | None" = None
    params: list[str] = field(default_factory=list)
    nested: dict[str, "Func"] = field(default_factory=dict)

    @property
    def line(self) -> int:
        return getattr(self.node, "lineno", 1)

    @property
    def end_line(self) -> int:
        return getattr(self.node, "end_lineno", None) or 10 ** 9

    @property
    def body(self) -> list[ast.stmt]:
        return self.node.body  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"Func({self.qname})"


@dataclass
class Module:
    path: str
    modname: str
    tree: ast.Module
    lines: list[str]
    top: Func
    functions: dict[str, Func] = field(default_factory=dict)  # top-level functions by name
    classes: dict[str, dict[str, Func]] = field(default_factory=dict)  # class -> method -> Func
    class_lines: dict[str, int] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)  # local name -> dotted origin


class ProgramIndex:
    def __init__(self) -> None:
        self.modules: dict[str, Module] = {}
        self.by_modname: dict[str, Module] = {}
        self.funcs: list[Func] = []
        self.methods_by_name: dict[str, list[Func]] = {}
        self.parse_errors: dict[str, str] = {}
        self.parse_error_lines: dict[str, int | None] = {}
        self.bounded: dict[str, str] = {}  # files over a parsing bound: not analysed, not a syntax error
        self.cache: dict = {}  # per-node facts reused across fixpoint rounds (keyed by node identity)
        self.long_strings: dict[str, list[ast.Constant]] = {}
        self.class_nodes: dict[tuple[str, str], ast.ClassDef] = {}
        self.loops: dict[str, list[ast.AST]] = {}

    def add(self, path: str, text: str) -> Module | None:
        # ast.parse costs ~400 bytes per token and cannot be interrupted: estimate first (linear)
        if budget.count_tokens(text, budget.PARSE_TOKENS) > budget.PARSE_TOKENS:
            self.bounded[path] = f"more than {budget.PARSE_TOKENS:,} tokens; over the bound for parsing it"
            return None
        res = parse_source(text, path)  # 3.12 syntax too (the auditor runs on 3.11)
        if not res.ok:
            self.parse_errors[path] = f"SyntaxError: {res.error} (line {res.error_line})"
            self.parse_error_lines[path] = res.error_line
            return None
        tree = res.tree
        long_name = _long_identifier(tree, text)
        if long_name is not None:
            self.bounded[path] = long_name
            return None
        p = PurePosixPath(path)
        modname = ".".join(p.with_suffix("").parts)
        if modname.endswith(".__init__"):
            modname = modname[: -len(".__init__")]
        top = Func("<module>", f"{path}:<module>", path, tree)
        mod = Module(path, modname, tree, text.splitlines(), top)
        self.modules[path] = mod
        self.by_modname[modname] = mod
        self.by_modname.setdefault(p.stem, mod)
        self.funcs.append(top)
        self._collect(mod, tree.body, None, top)
        strings = self.long_strings.setdefault(path, [])
        loops = self.loops.setdefault(path, [])
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 40:
                strings.append(node)
            elif isinstance(node, (ast.For, ast.While)):
                loops.append(node)
            elif isinstance(node, ast.ClassDef):
                self.class_nodes.setdefault((path, node.name), node)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    mod.imports[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                for a in node.names:
                    mod.imports[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.ImportFrom):
                for a in node.names:
                    mod.imports[a.asname or a.name] = a.name
        return mod

    def _collect(self, mod: Module, body: list[ast.stmt], cls: str | None, parent: Func) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                owner = f"{cls}." if cls else ""
                prefix = "" if parent.name == "<module>" else f"{parent.qname.split(':', 1)[1]}."
                f = Func(stmt.name, f"{mod.path}:{prefix}{owner}{stmt.name}", mod.path, stmt, cls,
                         parent if parent.name != "<module>" else None, _params(stmt))
                self.funcs.append(f)
                if cls is not None:
                    mod.classes[cls][stmt.name] = f
                    self.methods_by_name.setdefault(stmt.name, []).append(f)
                elif parent.name == "<module>":
                    mod.functions[stmt.name] = f
                else:
                    parent.nested[stmt.name] = f
                self._collect(mod, stmt.body, None, f)
            elif isinstance(stmt, ast.ClassDef):
                if parent.name == "<module>":
                    mod.classes.setdefault(stmt.name, {})
                    mod.class_lines[stmt.name] = stmt.lineno
                    self._collect(mod, stmt.body, stmt.name, parent)
            else:
                # defs nested inside if/for/with/try at this level
                for sub in _sub_bodies(stmt):
                    self._collect(mod, sub, cls, parent)

    # ---- resolution -------------------------------------------------------------------------
    def module_of(self, dotted_name: str) -> Module | None:
        parts = dotted_name.split(".")
        for i in range(len(parts), 0, -1):
            m = self.by_modname.get(".".join(parts[:i]))
            if m is not None:
                return m
        return None

    def class_methods(self, mod: Module, name: str) -> tuple[Module, dict[str, Func]] | None:
        if name in mod.classes:
            return mod, mod.classes[name]
        origin = mod.imports.get(name)
        if origin:
            om = self.module_of(origin.rsplit(".", 1)[0]) if "." in origin else None
            if om is not None and origin.rsplit(".", 1)[1] in om.classes:
                return om, om.classes[origin.rsplit(".", 1)[1]]
        return None

    def resolve(self, func: Func, call_func: ast.AST) -> tuple[list[Func], bool, str | None]:
        """(callees, bound-method call (skip self), class name when it instantiates a class)."""
        mod = self.modules[func.path]
        if isinstance(call_func, ast.Name):
            n = call_func.id
            f: Func | None = func
            while f is not None:
                if n in f.nested:
                    return [f.nested[n]], False, None
                f = f.parent
            if n in mod.functions:
                return [mod.functions[n]], False, None
            cm = self.class_methods(mod, n)
            if cm is not None:
                init = cm[1].get("__init__")
                return ([init] if init else []), True, n
            origin = mod.imports.get(n)
            if origin and "." in origin:
                om = self.module_of(origin.rsplit(".", 1)[0])
                if om is not None:
                    leaf = origin.rsplit(".", 1)[1]
                    if leaf in om.functions:
                        return [om.functions[leaf]], False, None
            return [], False, None
        if isinstance(call_func, ast.Attribute):
            attr = call_func.attr
            base = dotted(call_func.value)
            if base is not None and base in mod.imports:
                om = self.module_of(mod.imports[base])
                if om is not None:
                    if attr in om.functions:
                        return [om.functions[attr]], False, None
                    if attr in om.classes:
                        init = om.classes[attr].get("__init__")
                        return ([init] if init else []), True, attr
            if base in ("self", "cls") and func.cls is not None and attr in mod.classes.get(func.cls, {}):
                return [mod.classes[func.cls][attr]], True, None
            if attr in _GENERIC_METHODS:
                return [], True, None
            cands = self.methods_by_name.get(attr, [])
            return (list(cands) if len(cands) <= 4 else []), True, None
        return [], False, None


_LONG_WORD = re.compile(r"\b\w{%d}" % (budget.NAME_CHARS + 1))  # O(n): tried only at word starts


def _long_identifier(tree: ast.Module, text: str) -> str | None:
    """Why the file is not analysed when an identifier is longer than budget.NAME_CHARS, else None.
    The text prefilter (linear) skips the tree walk for every real file."""
    if _LONG_WORD.search(text) is None:
        return None
    for node in ast.walk(tree):
        for attr in ("id", "attr", "arg", "name", "asname"):
            v = getattr(node, attr, None)
            if isinstance(v, str) and len(v) > budget.NAME_CHARS:
                return (f"an identifier of {len(v):,} characters (line {getattr(node, 'lineno', '?')}); over the "
                        f"bound of {budget.NAME_CHARS} for names")
    return None


def _params(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = node.args
    return [p.arg for p in a.posonlyargs + a.args] + [p.arg for p in a.kwonlyargs]


def _sub_bodies(stmt: ast.stmt) -> list[list[ast.stmt]]:
    out = []
    for attr in ("body", "orelse", "finalbody"):
        b = getattr(stmt, attr, None)
        if isinstance(b, list) and b and isinstance(b[0], ast.stmt):
            out.append(b)
    for h in getattr(stmt, "handlers", []) or []:
        out.append(h.body)
    for c in getattr(stmt, "cases", []) or []:
        out.append(c.body)
    return out
