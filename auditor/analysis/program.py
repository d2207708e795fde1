"""Whole-submission analysis: data flow to a fixpoint over function summaries, then reachability.

One CodeAnalysis per audit (rules share it through `ctx.memo("code_analysis", ...)`). Everything is
computed from the decoded text of the shipped files; nothing is imported or executed.

The analysis pipeline (~460 lines: fixpoint, reachability, scanners) shares one CodeAnalysis.
"""

from __future__ import annotations

import ast
import re
import time
from dataclasses import dataclass, field
from typing import Iterable

from auditor.analysis.events import EventKind
from auditor.core import budget
from auditor.analysis.cscan import CFinding, looks_like_c, scan_c
from auditor.analysis.envdefaults import EnvModel, readme_env
from auditor.analysis.events import Event, Summary
from auditor.analysis.flow import FlowAnalyzer
from auditor.analysis.patterns import causal_sweep
from auditor.analysis.index import Func, ProgramIndex
from auditor.analysis.syntactic import PosGate, SmearSite, position_gates, smear_sites
from auditor.core.model import CodeFile, Evidence, Submission

MAX_ROUNDS = 6
_EFFECT_KINDS = {"update", "score", "train_read"}
_KEEP = {"val", "train", "target", "gold", "nll", "count", "ratio", "lookup", "perbyte"}
_SHIFT_HINT = re.compile(r":\s*-\s*1\s*\]|\bpad\(|\broll\(")
_FILEREF = re.compile(r"[\w./-]*?([\w-]+\.(py|c|cc|cpp|cu|cuh|h|hpp))\b")


@dataclass
class Reach:
    state: str  # live | dormant | unreferenced
    env_vars: frozenset = frozenset()


@dataclass
class CodeAnalysis:
    sub: Submission
    index: ProgramIndex
    envm: EnvModel
    events: list[Event] = field(default_factory=list)
    summaries: dict[Func, Summary] = field(default_factory=dict)
    status: dict[Func, Reach] = field(default_factory=dict)
    dead_ranges: dict[Func, list] = field(default_factory=dict)
    pos_gates: list[tuple[Func, PosGate]] = field(default_factory=list)
    smears: list[tuple[Func, SmearSite]] = field(default_factory=list)
    c_hits: list[tuple[str, CFinding, Func | None]] = field(default_factory=list)
    file_refs: list[tuple[str, Event]] = field(default_factory=list)  # (basename, event)
    python_files: list[str] = field(default_factory=list)
    c_files: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    parse_errors: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # no Python parses these
    entry: str | None = None
    rounds: int = 0
    elapsed_s: float = 0.0

    # ---- queries ----------------------------------------------------------------------------
    def of(self, *kinds: str) -> list[Event]:
        wanted = {EventKind(k) for k in kinds}  # a misspelt kind raises instead of matching nothing
        return [e for e in self.events if e.kind in wanted]

    def reach(self, ev: Event) -> Reach:
        if ev.dead is not None:
            return Reach("dormant", ev.dead)
        reach = self.status.get(ev.func, Reach("unreferenced"))
        if reach.state == "live" and ev.enabled_by:
            return Reach("live", reach.env_vars | ev.enabled_by)  # live because the configuration turns it on
        return reach

    def val_context(self, ev: Event) -> bool:
        """The event handles validation data: directly, or in a function some caller feeds with it."""
        if "val" in ev.labels:
            return True
        if not any(l.startswith("param:") for l in ev.labels):
            return False
        cache = self.__dict__.setdefault("_val_callers", {})
        if ev.func not in cache:
            cache[ev.func] = any("val" in c.labels and ev.func in (c.data.callees or [])
                                 for c in self.events if c.kind == "call")
        return cache[ev.func]

    def reach_at(self, func: Func, line: int) -> Reach:
        for start, end, vars_ in self.dead_ranges.get(func, []):
            if start <= line <= end:
                return Reach("dormant", vars_)
        return self.status.get(func, Reach("unreferenced"))

    def innermost(self, path: str, line: int) -> Func | None:
        best = None
        for f in self.index.funcs:
            if f.path == path and f.name != "<module>" and f.line <= line <= f.end_line:
                if best is None or f.line >= best.line:
                    best = f
        if best is None and path in self.index.modules:
            return self.index.modules[path].top
        return best

    def code(self, path: str) -> CodeFile | None:
        return self.sub.code_file(path)

    def evidence(self, path: str, line: int | None, text: str | None = None) -> Evidence:
        if text is None:
            text = ""
            cf = self.code(path)
            if cf is not None and cf.text and line:
                lines = cf.text.splitlines()
                if 0 < line <= len(lines):
                    text = lines[line - 1].strip()[:240]
        return Evidence(path, line, text)

    def ev_evidence(self, ev: Event) -> Evidence:
        return self.evidence(ev.path, ev.line, ev.text or None)

    def decoded_note(self, paths: Iterable[str]) -> str:
        notes = []
        for p in sorted(set(paths)):
            cf = self.code(p)
            if cf is not None and cf.stub:
                notes.append(f"line numbers in {p} refer to the decoded payload of {p} ({cf.stub} stub)")
        return ("; ".join(notes) + ".") if notes else ""

    def describe_vars(self, vars_: Iterable[str]) -> str:
        vs = sorted(vars_)
        if not vs:
            return "a condition that is false with the default configuration"
        return ", ".join(self.envm.describe(v) for v in vs)

    def where(self, func: Func) -> str:
        if func.name == "<module>":
            return f"module level of {func.path}"
        owner = f"{func.cls}." if func.cls else ""
        return f"{owner}{func.name}() in {func.path}"

    def checked_files(self) -> str:
        files = self.python_files + self.c_files
        return ", ".join(files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")


MAX_ANALYSED_CHARS = budget.ANALYSED_CHARS_PER_FILE
MAX_TOTAL_CHARS = budget.ANALYSED_CHARS_TOTAL


def analyze(sub: Submission) -> CodeAnalysis:
    t0 = time.perf_counter()
    index = ProgramIndex()
    envm = EnvModel(overrides=readme_env(sub.readme))
    ca = CodeAnalysis(sub, index, envm)
    shipped = {c.path for c in sub.code}
    shims = {c.path: c.stub_target for c in sub.code if c.stub == "exec-file" and c.stub_target in shipped}
    analysed_chars = 0
    for cf in sub.code:
        if cf.path in shims:
            continue  # an exec shim: its decoded text is the target file, analysed under its own name
        if cf.kind == "python":
            if cf.text is None:
                ca.unreadable[cf.path] = cf.decode_error or "not decoded"
                continue
            size = len(cf.text)
            if size > MAX_ANALYSED_CHARS or analysed_chars + size > MAX_TOTAL_CHARS:
                # real record scripts are < 200 KB; the analysis costs ~8 s CPU per MB, so a bloated file
                # is reported for a human instead of stalling the audit
                ca.unreadable[cf.path] = ((f"{cf.decode_error}; " if cf.decode_error else "") +
                                          f"{size:,} characters of source, over the analysis bound of "
                                          f"{MAX_ANALYSED_CHARS:,} per file / {MAX_TOTAL_CHARS:,} in all")
                continue
            analysed_chars += size
            if cf.decode_error:
                ca.unreadable[cf.path] = cf.decode_error
            mod = index.add(cf.path, cf.text)
            if mod is None:
                if cf.path in index.bounded:  # over a parsing bound: not analysed, not a syntax error
                    ca.unreadable[cf.path] = index.bounded[cf.path]
                    continue
                ca.unreadable[cf.path] = index.parse_errors.get(cf.path, "does not parse")
                ca.parse_errors[cf.path] = (ca.unreadable[cf.path], index.parse_error_lines.get(cf.path))
                continue
            envm.add_module(cf.path, mod.tree, cf.text)
            ca.python_files.append(cf.path)
        elif cf.kind == "c" and cf.text is not None:
            size = len(cf.text)
            if size > MAX_ANALYSED_CHARS or analysed_chars + size > MAX_TOTAL_CHARS:
                ca.unreadable[cf.path] = (f"{size:,} characters of source, over the analysis bound of "
                                          f"{MAX_ANALYSED_CHARS:,} per file / {MAX_TOTAL_CHARS:,} in all")
                continue
            analysed_chars += size
            ca.c_files.append(cf.path)
    envm.add_log_config(sub.log_config)
    ep = sub.entry_point
    entry = shims.get(ep.path, ep.path) if ep is not None else None
    ca.entry = entry if entry in index.modules else None
    for step in (_fixpoint, _reachability, _syntactic, _c_scan):
        try:
            step(ca)
        except (RecursionError, MemoryError) as exc:  # adversarial nesting: report, do not crash the audit
            ca.unreadable.setdefault("(analysis)", f"{step.__name__.strip('_')} stopped: {type(exc).__name__}")
    for path, why in envm.bounded.items():  # a configuration value over a bound of auditor.core.budget
        ca.unreadable.setdefault(path, why)
    ca.elapsed_s = time.perf_counter() - t0
    return ca


def _fixpoint(ca: CodeAnalysis) -> None:
    """Analyse every function, then re-analyse only callers of functions whose summary changed."""
    index = ca.index
    summaries: dict[Func, Summary] = {f: Summary() for f in index.funcs}
    globals_: dict[str, dict] = {}
    results: dict[Func, list[Event]] = {}
    envs: dict[Func, dict] = {}
    callers: dict[Func, set[Func]] = {}
    dirty = set(index.funcs)
    order = {f: i for i, f in enumerate(_callee_first(index))}
    for rnd in range(MAX_ROUNDS):
        if not dirty:
            break
        changed: set[Func] = set()
        globals_changed: set[str] = set()
        for f in sorted(dirty, key=order.__getitem__):
            outer = envs.get(f.parent) if f.parent is not None else None
            an = FlowAnalyzer(index, ca.envm, f, summaries, globals_, outer)
            try:
                an.run()
            except RecursionError:
                results[f] = []
                ca.unreadable.setdefault(f.path, f"{ca.where(f)} is too deeply nested to analyse")
                continue
            envs[f] = an.env
            if f.name == "<module>":
                if globals_.get(f.path) != an.env:
                    globals_changed.add(f.path)
                globals_[f.path] = an.env
            ca.dead_ranges[f] = an.dead_ranges
            evs = list(an.events.values())
            results[f] = evs
            for ev in evs:
                if ev.kind == "call":
                    for g in ev.data.callees or []:
                        callers.setdefault(g, set()).add(f)
            new = _summary(f, an, evs)
            if new.key() != summaries[f].key():
                changed.add(f)
            summaries[f] = new
        ca.rounds = rnd + 1
        dirty = set()
        for f in changed:
            dirty |= callers.get(f, set())
        if rnd > 0:  # round 0 analysed module tops first; later changes to globals reach every function
            for path in globals_changed:
                dirty |= {g for g in index.funcs if g.path == path and g.name != "<module>"}
    ca.summaries = summaries
    events = [e for f in index.funcs for e in results.get(f, [])]
    ca.events = sorted(events, key=lambda e: (e.path, e.line, e.kind))
    for ev in ca.events:
        if ev.kind == "fileref":
            ca.file_refs.append((ev.data.name, ev))


def _callee_first(index: ProgramIndex) -> list[Func]:
    """Module tops first (they define the globals), then functions after the functions they call, so
    most summaries are final the first time a caller reads them."""
    deps: dict[Func, list[Func]] = {}
    for f in index.funcs:
        if f.name == "<module>":
            continue
        out: list[Func] = []
        stack = list(ast.iter_child_nodes(f.node))
        while stack:  # the function's own body; nested defs are walked as functions of their own
            n = stack.pop()
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(n, ast.Call):
                out.extend(index.resolve(f, n.func)[0])
            stack.extend(ast.iter_child_nodes(n))
        deps[f] = out
    order: list[Func] = [f for f in index.funcs if f.name == "<module>"]
    seen: set[Func] = set(order)
    for root in index.funcs:
        if root in seen:
            continue
        stack: list[tuple[Func, int]] = [(root, 0)]
        seen.add(root)
        while stack:
            f, i = stack[-1]
            ds = deps.get(f, [])
            if i < len(ds):
                stack[-1] = (f, i + 1)
                g = ds[i]
                if g not in seen:
                    seen.add(g)
                    stack.append((g, 0))
            else:
                stack.pop()
                order.append(f)
    return order


def _summary(f: Func, an: FlowAnalyzer, evs: list[Event]) -> Summary:
    new = Summary(ret=frozenset(l for l in an.ret if not l.startswith(("tv:", "env:"))))
    for ev in evs:
        if ev.kind not in _EFFECT_KINDS or ev.dead is not None:
            continue
        if causal_sweep(ev, evs) is not None:
            continue  # causal within the sweep; callers see its per-position output, not a prefilled state
        labs = frozenset(l for l in ev.labels if l in _KEEP or l.startswith("param:"))
        if ev.kind in ("update", "score") and not (labs & {"val", "target", "gold", "nll"} or
                                                    any(l.startswith("param:") for l in labs)):
            continue
        origin = ev.data.origin or {"path": ev.path, "line": ev.line, "text": ev.text,
                                           "func": f.qname, "how": ev.data.how}
        new.effects.setdefault((ev.kind, labs), origin)
    return new


def _edges(ca: CodeAnalysis, ev: Event) -> list[Func]:
    index = ca.index
    out: list[Func] = []
    if ev.kind in ("call", "ref"):
        out.extend(ev.data.callees or [])
        cls = ev.data.cls
        if cls:
            mod = index.modules[ev.func.path]
            cm = index.class_methods(mod, cls)
            if cm is not None:
                out.extend(cm[1].values())
    elif ev.kind == "import":
        m = index.modules.get(ev.data.module)
        if m is not None:
            out.append(m.top)  # importing runs the module's top level, not its functions
    return out


def _reachability(ca: CodeAnalysis) -> None:
    index = ca.index
    by_func: dict[Func, list[Event]] = {}
    for ev in ca.events:
        if ev.kind in ("call", "ref", "import"):
            by_func.setdefault(ev.func, []).append(ev)
    if ca.entry is not None:
        roots = [index.modules[ca.entry].top]
    else:
        roots = [m.top for m in index.modules.values()]
    status: dict[Func, Reach] = {}
    for r in roots:
        status[r] = Reach("live")

    def spread(stack: list[Func], unconditional_only: bool) -> None:
        """Live reachability; env_vars of a live function are the switches the README or the logged
        configuration had to turn on to reach it (empty when it runs with the defaults)."""
        while stack:
            f = stack.pop()
            for ev in by_func.get(f, []):
                if ev.dead is not None or (unconditional_only and ev.enabled_by):
                    continue
                for g in _edges(ca, ev):
                    if g not in status:
                        status[g] = Reach("live", status[f].env_vars | ev.enabled_by)
                        stack.append(g)
    spread(list(roots), unconditional_only=True)  # what runs with the defaults wins
    spread(list(status), unconditional_only=False)
    # dormant: reached only through a statically false guard
    dstack: list[tuple[Func, frozenset]] = []
    for f in list(status):
        for ev in by_func.get(f, []):
            if ev.dead is not None:
                for g in _edges(ca, ev):
                    if g not in status:
                        status[g] = Reach("dormant", ev.dead)
                        dstack.append((g, ev.dead))
    while dstack:
        f, vars_ = dstack.pop()
        for ev in by_func.get(f, []):
            for g in _edges(ca, ev):
                if g not in status:
                    v = vars_ | (ev.dead or frozenset())
                    status[g] = Reach("dormant", v)
                    dstack.append((g, v))
    # nested functions inherit the state of their parent when never referenced by name
    for f in index.funcs:
        if f not in status and f.parent is not None and f.parent in status:
            status[f] = status[f.parent]
    for f in index.funcs:
        status.setdefault(f, Reach("unreferenced"))
    ca.status = status


def _syntactic(ca: CodeAnalysis) -> None:
    index = ca.index
    seen_gates: set[tuple] = set()
    for path, loops in index.loops.items():
        for g in position_gates(loops):
            key = (path, g.read_line, g.write_line)
            if key in seen_gates:
                continue
            seen_gates.add(key)
            owner = ca.innermost(path, g.write_line)
            if owner is not None:
                ca.pos_gates.append((owner, g))
    for f in index.funcs:
        if f.name == "<module>":
            continue
        lines = index.modules[f.path].lines[f.line - 1: f.end_line]
        if not _SHIFT_HINT.search("\n".join(lines)):
            continue  # no one-position shift in the text: nothing for the AST check to find
        cls_node = index.class_nodes.get((f.path, f.cls)) if f.cls else None
        for s in smear_sites(cls_node, f.node):
            if ca.innermost(f.path, s.line) is f:
                ca.smears.append((f, s))


def _skipped_note(ca: CodeAnalysis, path: str, skipped: list[int]) -> None:
    if skipped:
        lines = ", ".join(map(str, skipped[:5])) + (f" and {len(skipped) - 5:,} more" if len(skipped) > 5 else "")
        ca.unreadable.setdefault(path, f"C source line{'s' if len(skipped) > 1 else ''} {lines} longer than "
                                       f"{budget.SCAN_LINE_CHARS:,} characters, not scanned")


def _c_scan(ca: CodeAnalysis) -> None:
    for cf in ca.sub.code:
        if cf.kind == "c" and cf.path in ca.c_files:
            skipped: list[int] = []
            for hit in scan_c(cf.text, skipped=skipped):
                ca.c_hits.append((cf.path, hit, None))
            _skipped_note(ca, cf.path, skipped)
    for path, mod in ca.index.modules.items():
        const_names: dict[int, str] = {}
        for stmt in mod.tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                const_names[id(stmt.value)] = stmt.targets[0].id
        for node in ca.index.long_strings.get(path, []):
            if looks_like_c(node.value):
                owner = ca.innermost(path, node.lineno)
                if id(node) in const_names:
                    owner = _user_of(ca, path, const_names[id(node)]) or owner
                skipped: list[int] = []
                for hit in scan_c(node.value, first_line=node.lineno, skipped=skipped):
                    ca.c_hits.append((path, hit, owner))
                _skipped_note(ca, path, skipped)


def _user_of(ca: CodeAnalysis, path: str, name: str) -> Func | None:
    """The function that reads a module-level constant (a live one first): where embedded C is compiled."""
    users = []
    for f in ca.index.funcs:
        if f.path != path or f.name == "<module>":
            continue
        if any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) for n in ast.walk(f.node)):
            users.append(f)
    users.sort(key=lambda f: (ca.status.get(f, Reach("unreferenced")).state != "live", f.line))
    return users[0] if users else None


def c_file_reach(ca: CodeAnalysis, path: str) -> tuple[Reach, Event | None]:
    """A shipped C file runs when live Python code names it (compile command, load(), CDLL)."""
    base = path.rsplit("/", 1)[-1]
    best: tuple[Reach, Event | None] = (Reach("unreferenced"), None)
    for name, ev in ca.file_refs:
        if name == base:
            r = ca.reach(ev)
            if r.state == "live":
                return r, ev
            if best[1] is None:
                best = (r, ev)
    return best
