"""Static values of configuration: env-var defaults, Hyperparameters attributes, README overrides.

Record scripts switch techniques on and off with `os.environ.get("X", "0")`, usually through a
`Hyperparameters` class. A code path behind a switch that is off by default (and not turned on by the
README's run command) is dormant: reviewers want it reported as info, not as a violation. This module
evaluates such conditions without running anything; whatever it cannot decide is UNKNOWN, which the
callers treat as "may run".

One static interpreter of configuration expressions (~420 lines), bounded in one place.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from auditor.core import budget


class _Unknown:
    _inst = None

    def __new__(cls):
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:  # never decide on an unknown by accident
        raise TypeError("UNKNOWN has no truth value")


UNKNOWN = _Unknown()

_ENV_FUNCS = {"os.environ.get", "os.getenv", "environ.get", "getenv", "os.environ.setdefault"}
_HELPER_HINT = re.compile(r"(environ\.get|getenv|environ\.setdefault)\(\s*[A-Za-z_]\w*\s*[,)]")
_CMD_LINE = re.compile(r"(torchrun|python3?\s|\.py\b|bash\s|\bsh\s|\bexport\s)")
_ASSIGN = re.compile(r"(?:^|\s)(?:export\s+)?([A-Z][A-Z0-9_]{1,63})=(\"[^\"]*\"|'[^']*'|[^\s;&|]*)")


def dotted(node: ast.AST) -> str | None:
    """`a.b.c` for Name/Attribute chains, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def env_read(node: ast.AST) -> tuple[str, ast.AST | None] | None:
    """(VAR, default-expression) when `node` reads an environment variable, else None."""
    if isinstance(node, ast.Call):
        name = dotted(node.func) or ""
        if name in _ENV_FUNCS or name.endswith("environ.get"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                default = node.args[1] if len(node.args) > 1 else None
                for kw in node.keywords:
                    if kw.arg == "default":
                        default = kw.value
                return node.args[0].value, default
    if isinstance(node, ast.Subscript):
        name = dotted(node.value) or ""
        if name.endswith("environ") and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            return node.slice.value, None
    return None


def readme_env(readme: str | None) -> dict[str, str]:
    """VAR=value assignments on the README's command lines (first value wins).
    O(n) in the README (at most budget.README_BYTES): each regex either has no nested repetition or
    fails only at the last unmatched quote of a line."""
    out: dict[str, str] = {}
    if not readme:
        return out
    for line in re.sub(r"\\\s*\n", " ", readme).splitlines():  # join shell line continuations
        if not _CMD_LINE.search(line):
            continue
        for m in _ASSIGN.finditer(line):
            val = m.group(2)
            if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
                val = val[1:-1]
            out.setdefault(m.group(1), val)
    return out


@dataclass
class EnvModel:
    """Everything needed to decide a condition: env overrides, env defaults, attributes, constants."""

    overrides: dict[str, str] = field(default_factory=dict)
    override_source: dict[str, str] = field(default_factory=dict)  # VAR -> where the override was read
    defaults: dict[str, tuple[Any, int, str]] = field(default_factory=dict)  # VAR -> (default, line, path)
    attrs: dict[str, ast.AST] = field(default_factory=dict)  # attribute name -> defining expression
    ambiguous_attrs: set[str] = field(default_factory=set)
    module_consts: dict[str, dict[str, ast.AST]] = field(default_factory=dict)  # path -> NAME -> expression
    # env-reading helpers such as `def env_int(name, default): return int(os.environ.get(name, default))`:
    # function name -> (parameter names, parameter defaults, returned expression)
    helpers: dict[str, tuple[list[str], dict[str, ast.AST], ast.AST]] = field(default_factory=dict)
    # files where an evaluation hit a bound of auditor.core.budget (path -> why): the value was taken as
    # UNKNOWN ("may run"), and the review names the file
    bounded: dict[str, str] = field(default_factory=dict)
    steps_left: int = field(default=0, repr=False, compare=False)

    def _over(self, path: str, why: str) -> Any:
        self.bounded.setdefault(path, why)
        return UNKNOWN

    def add_log_config(self, config: dict) -> None:
        """The runs' own configuration dump decides a switch the README's run command does not set: for an
        env var read by the code whose lower-case name the logs print (`PPM_ENABLED` / `ppm_enabled: True`),
        the logged value stands in for the default. Booleans become 1/0, as the code's int() reads them."""
        for var in sorted(self.defaults):
            seen = config.get(var.lower())
            if seen is None or var in self.overrides:
                continue
            value, where = seen
            value = {"true": "1", "false": "0", "none": ""}.get(value.lower(), value)
            self.overrides[var] = value
            self.override_source[var] = f"the run's logged configuration, {where.path}:{where.line}"

    def _find_helpers(self, tree: ast.Module) -> None:
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            params = [a.arg for a in fn.args.args]
            rets = [n for n in ast.walk(fn) if isinstance(n, ast.Return) and n.value is not None]
            if len(rets) != 1 or not params:
                continue
            for n in ast.walk(rets[0].value):
                if isinstance(n, ast.Call) and (dotted(n.func) or "") in _ENV_FUNCS and n.args \
                        and isinstance(n.args[0], ast.Name) and n.args[0].id in params:
                    defaults = dict(zip(params[len(params) - len(fn.args.defaults):], fn.args.defaults))
                    self.helpers[fn.name] = (params, defaults, rets[0].value)
                    break

    def env_call(self, node: ast.AST) -> tuple[str, ast.AST | None] | None:
        """Like env_read, also through an env-reading helper called with a literal name."""
        r = env_read(node)
        if r is not None:
            return r
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in self.helpers \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            params, defaults, _ = self.helpers[node.func.id]
            default = node.args[1] if len(node.args) > 1 else None
            for kw in node.keywords:
                if len(params) > 1 and kw.arg == params[1]:
                    default = kw.value
            if default is None and len(params) > 1:
                default = defaults.get(params[1])
            return node.args[0].value, default
        return None

    def env_vars_in(self, node: ast.AST) -> set[str]:
        out = set()
        for n in ast.walk(node):
            r = self.env_call(n) if isinstance(n, (ast.Call, ast.Subscript)) else None
            if r is not None:
                out.add(r[0])
        return out

    def add_module(self, path: str, tree: ast.Module, text: str | None = None) -> None:
        if text is None or _HELPER_HINT.search(text):  # helpers read a variable *name*, not a literal
            self._find_helpers(tree)
        consts = self.module_consts.setdefault(path, {})
        counts: dict[str, int] = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                n = stmt.targets[0].id
                counts[n] = counts.get(n, 0) + 1
                consts[n] = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                consts[stmt.target.id] = stmt.value
        for n, c in counts.items():
            if c > 1:
                consts.pop(n, None)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign):
                        for t in stmt.targets:
                            if isinstance(t, ast.Name):
                                self._attr(t.id, stmt.value)
                    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                        self._attr(stmt.target.id, stmt.value)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                t = node.targets[0]
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                    if any(env_read(n) for n in ast.walk(node.value)):
                        self._attr(t.attr, node.value)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "add_argument":
                self._argparse(node)
            r = self.env_call(node) if isinstance(node, (ast.Call, ast.Subscript)) else None
            if r is not None and r[0] not in self.defaults:
                default = UNKNOWN if r[1] is None else self.const(r[1], path)
                self.defaults[r[0]] = (None if r[1] is None else default, node.lineno, path)

    def _attr(self, name: str, value: ast.AST) -> None:
        if name in self.attrs and ast.dump(self.attrs[name]) != ast.dump(value):
            self.ambiguous_attrs.add(name)
        self.attrs.setdefault(name, value)

    def _argparse(self, node: ast.Call) -> None:
        flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        long = [f for f in flags if f.startswith("--")]
        if not long:
            return
        name = long[0][2:].replace("-", "_")
        default: ast.AST = ast.Constant(None)
        for kw in node.keywords:
            if kw.arg == "default":
                default = kw.value
            if kw.arg == "action" and isinstance(kw.value, ast.Constant) and kw.value.value == "store_true":
                default = ast.Constant(False)
        self._attr(name, default)

    # ---- evaluation -------------------------------------------------------------------------
    def const(self, node: ast.AST | None, path: str, locals_: dict[str, ast.AST] | None = None,
              used: set[str] | None = None, depth: int = 0) -> Any:  # noqa: C901 - one dispatcher over expression node types; each branch charges the budget
        """Static value of an expression, or UNKNOWN. Env vars consulted are added to `used`.

        Bounded (auditor.core.budget): at most EVAL_STEPS nodes per top-level call (names can refer to
        names many times over, which would otherwise be exponential), and no string, bytes, tuple or
        integer larger than VALUE_CHARS / VALUE_INT_BITS is built: its size is predicted from the
        operands first (`'a' * 1500000000` is never computed)."""
        if depth == 0:
            self.steps_left = budget.EVAL_STEPS
        if node is None or depth > 30:
            return UNKNOWN
        self.steps_left -= 1
        if self.steps_left < 0:
            if self.steps_left == -1:
                return self._over(path, f"a configuration value needs more than {budget.EVAL_STEPS:,} evaluation "
                                        "steps; taken as unknown")
            return UNKNOWN
        ev = lambda n: self.const(n, path, locals_, used, depth + 1)  # noqa: E731
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in self.helpers:
            params, defaults, ret = self.helpers[node.func.id]
            loc = dict(locals_ or {})
            loc.update(defaults)
            loc.update(zip(params, node.args))
            loc.update({k.arg: k.value for k in node.keywords if k.arg})
            return self.const(ret, path, loc, used, depth + 1)
        r = env_read(node)
        if r is None and isinstance(node, ast.Call) and (dotted(node.func) or "") in _ENV_FUNCS and node.args:
            name = ev(node.args[0])
            if isinstance(name, str):
                r = (name, node.args[1] if len(node.args) > 1 else None)
        if r is not None:
            var, default = r
            if used is not None:
                used.add(var)
            if var in self.overrides:
                return self.overrides[var]
            if var in ("RANK", "LOCAL_RANK"):
                return "0"
            if var == "WORLD_SIZE":
                return "8"
            return None if default is None else ev(default)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if locals_ and node.id in locals_:
                return ev(locals_[node.id])
            consts = self.module_consts.get(path, {})
            if node.id in consts:
                return ev(consts[node.id])
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            return UNKNOWN
        if isinstance(node, ast.Attribute):
            if node.attr in self.attrs and node.attr not in self.ambiguous_attrs:
                return ev(self.attrs[node.attr])
            return UNKNOWN
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            if v is UNKNOWN:
                return UNKNOWN
            try:
                if isinstance(node.op, ast.Not):
                    return not v
                if isinstance(node.op, ast.USub):
                    return -v
            except TypeError:
                return UNKNOWN
            return UNKNOWN
        if isinstance(node, ast.BoolOp):
            vals = [ev(v) for v in node.values]
            if isinstance(node.op, ast.And):
                for v in vals:
                    if v is UNKNOWN:
                        # a known-false operand decides the whole conjunction
                        return False if any(x is not UNKNOWN and not x for x in vals) else UNKNOWN
                    if not v:
                        return v
                return vals[-1]
            for v in vals:
                if v is UNKNOWN:
                    return True if any(x is not UNKNOWN and x for x in vals) else UNKNOWN
                if v:
                    return v
            return vals[-1]
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            a, b = ev(node.left), ev(node.comparators[0])
            if a is UNKNOWN or b is UNKNOWN:
                return UNKNOWN
            op = node.ops[0]
            try:
                if isinstance(op, ast.Eq):
                    return a == b
                if isinstance(op, ast.NotEq):
                    return a != b
                if isinstance(op, ast.Gt):
                    return a > b
                if isinstance(op, ast.GtE):
                    return a >= b
                if isinstance(op, ast.Lt):
                    return a < b
                if isinstance(op, ast.LtE):
                    return a <= b
                if isinstance(op, ast.In):
                    return a in b
                if isinstance(op, ast.NotIn):
                    return a not in b
                if isinstance(op, ast.Is):
                    return a is b
                if isinstance(op, ast.IsNot):
                    return a is not b
            except TypeError:
                return UNKNOWN
            return UNKNOWN
        if isinstance(node, ast.IfExp):
            t = ev(node.test)
            if t is UNKNOWN:
                return UNKNOWN
            return ev(node.body) if t else ev(node.orelse)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            vals = [ev(e) for e in node.elts]
            return UNKNOWN if any(v is UNKNOWN for v in vals) else tuple(vals)
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if a is UNKNOWN or b is UNKNOWN:
                return UNKNOWN
            if isinstance(node.op, (ast.Add, ast.Mult)):
                size = budget.predicted_size("add" if isinstance(node.op, ast.Add) else "mul", a, b)
                limit = budget.VALUE_INT_BITS if isinstance(a, int) and isinstance(b, int) else budget.VALUE_CHARS
                if size is not None and size > limit:
                    return self._over(path, f"line {getattr(node, 'lineno', '?')}: a configuration value would be "
                                            f"{size:,} {'bits' if limit == budget.VALUE_INT_BITS else 'items'} "
                                            f"long (bound {limit:,}); not computed, taken as unknown")
            try:
                if isinstance(node.op, ast.Add):
                    return a + b
                if isinstance(node.op, ast.Sub):
                    return a - b
                if isinstance(node.op, ast.Mult):
                    return a * b
                if isinstance(node.op, ast.FloorDiv):
                    return a // b
                if isinstance(node.op, ast.Div):
                    return a / b
            except Exception:  # noqa: BLE001 - any arithmetic error means "cannot decide"
                return UNKNOWN
            return UNKNOWN
        if isinstance(node, ast.Call):
            fname = dotted(node.func) or ""
            if fname in ("int", "float", "bool", "str") and len(node.args) == 1:
                v = ev(node.args[0])
                if v is UNKNOWN:
                    return UNKNOWN
                if fname == "str" and isinstance(v, (tuple, list, dict, set)):
                    return UNKNOWN  # its text could be far larger than the items it references
                try:
                    if fname == "bool" and isinstance(v, str):
                        return bool(v)
                    return {"int": int, "float": float, "bool": bool, "str": str}[fname](v)
                except (TypeError, ValueError, OverflowError):
                    return UNKNOWN
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("lower", "upper", "strip") and not node.args:
                v = ev(node.func.value)
                return getattr(v, node.func.attr)() if isinstance(v, str) else UNKNOWN
            if isinstance(node.func, ast.Attribute) and node.func.attr == "startswith" and len(node.args) == 1:
                v, p = ev(node.func.value), ev(node.args[0])
                if isinstance(v, str) and isinstance(p, (str, tuple)):
                    return v.startswith(p)
                return UNKNOWN
            if fname in ("max", "min") and node.args:
                vals = [ev(a) for a in node.args]
                if any(v is UNKNOWN for v in vals):
                    return UNKNOWN
                try:
                    return (max if fname == "max" else min)(vals)
                except TypeError:
                    return UNKNOWN
        return UNKNOWN

    def truth(self, node: ast.AST, path: str, locals_: dict[str, ast.AST] | None = None
              ) -> tuple[bool | None, set[str]]:
        """(True/False/None=unknown, env vars the decision rests on)."""
        used: set[str] = set()
        v = self.const(node, path, locals_, used)
        if v is UNKNOWN:
            return None, used
        try:
            return bool(v), used
        except Exception:  # noqa: BLE001 - exotic values: undecided
            return None, used

    def describe(self, var: str) -> str:
        """'SLOT_ENABLED=0 (default)' or 'X=1 (README run command)'."""
        if var in self.overrides:
            return f"{var}={self.overrides[var]} ({self.override_source.get(var, 'README run command')})"
        d = self.defaults.get(var)
        if d is None or d[0] is UNKNOWN:
            return f"{var} (unset)"
        shown = repr(d[0]) if not isinstance(d[0], str) else d[0]
        if len(shown) > 200:  # a value can be up to budget.VALUE_CHARS long; a message stays short
            shown = shown[:200] + f"… ({len(shown):,} characters)"
        return f"{var}={shown} (default)"


# an env var name read by the script: os.environ.get("X"), os.getenv("X"), os.environ["X"], and helpers
# whose name says env (_env_bool("X"), env_int("X"), _env_missing("X"))
ENV_NAME = re.compile(r"""(?:\benviron\s*\[|\benviron\.(?:get|setdefault)\s*\(|\b[A-Za-z_]*(?:env|ENV|Env)[A-Za-z_]*\s*\()"""
                      r"""\s*["']([A-Z][A-Z0-9_]{1,63})["']""")
_SIMPLE_VALUE = re.compile(r"[\w.+\-]{1,64}")  # a number, a word, a switch: not a path, not code
_TABLE_ROW = re.compile(r"(?m)^\|\s*`?([A-Z][A-Z0-9_]{1,63})`?\s*\|\s*([^|\n]{1,64}?)\s*\|")
_NOT_RUN_CONFIG = re.compile(r"(_PATH|_DIR|_FILE|_FILES|_NAME|_ID|_URL|RANK|WORLD_SIZE|NPROC\w*)$")


def run_configuration(script: str | None, readme: str | None, log_config: dict) -> dict[str, tuple[str, str]]:
    """The environment the record says it ran with, for the env vars its script reads: the README run
    command's `VAR=value` assignments first, then the runs' logged configuration (`ppm_enabled: True`
    for `PPM_ENABLED`; booleans become 1/0, as the code's int() reads them). VAR -> (value, source).
    The gauntlet runs this configuration (shrunk), not the script's bare defaults: a technique the
    README switches on is what the record's score came from. Paths, run ids, ranks and values that are
    not a plain number, word or switch are left out. O(n) in the script and the README."""
    read = {v for v in ENV_NAME.findall(script or "") if not _NOT_RUN_CONFIG.search(v)}
    out: dict[str, tuple[str, str]] = {}
    for var, value in readme_env(readme).items():
        if var in read and _SIMPLE_VALUE.fullmatch(value):
            out[var] = (value, "README run command")
    for m in _TABLE_ROW.finditer(readme or ""):  # | NGRAM_EVAL_MAX_ORDER | 12 |: a README's settings table
        var, value = m.group(1), m.group(2).strip("`")
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+", value):  # 4,194,304
            value = value.replace(",", "")
        if var in read and var not in out and _SIMPLE_VALUE.fullmatch(value):
            out[var] = (value, "README settings table")
    for var in sorted(read):
        seen = log_config.get(var.lower())
        if seen is None or var in out:
            continue
        value, where = seen
        value = {"true": "1", "false": "0"}.get(str(value).lower(), str(value))
        if _SIMPLE_VALUE.fullmatch(value):
            out[var] = (value, f"logged configuration, {where.path}:{where.line}")
    return out
