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
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditor.analysis.envdefaults import EnvModel, dotted

if TYPE_CHECKING:
    from auditor.analysis.index import Func, ProgramIndex

VAL, TRAIN, TGT, GOLD = "val", "train", "target", "gold"
LOOKUP, RATIO, PERBYTE, NLL = "lookup", "ratio", "perbyte", "nll"
STACK2 = "stack2"
THASH, HLOOKUP = "thash", "hlookup"  # a hash key mixing in the target; a table entry read with such a key

_TARGET_NAME = re.compile(r"^(y(_?(np|t|b|w|s|batch|flat|ids|tok|toks|cpu|gpu|dev|chunk|win|local|all|sel|i|j))?|"
                          r"targets?(_\w+)?|tgts?(_\w+)?|labels?(_\w+)?|target_ids|"
                          r"gold(_ids|_tokens?)?|next_tok(en)?s?(_\w+)?)$")
_NOT_TARGET = re.compile(r"^(y_?(hat|pred|logits?|prob\w*|lp|logp|mix\w*|hint\w*|bias|p|q|np_hat|min|max|off\w*|"
                         r"start|end|pos|idx|dim|size|len|scale|shift|ema|loss\w*|nll\w*|out\w*))$")
_VAL_NAME = re.compile(r"(^|_)(val|valid|validation)_?(tokens?|toks?|ids|data|stream|seq|set|files|pattern|"
                       r"path|shards?|tokens_idx)$")
_TRAIN_NAME = re.compile(r"^(train_?(files|pattern|glob|shards?|paths?|tokens|stream|loader|data|dir))$")
_WEIGHT_NAME = re.compile(r"(^|_)(alpha|lam|lamb|lambda|lmbda|gate|beta|w|wt|weight|mix|coef|coeff|trust|conf)(_|$|\d)",
                          re.I)
_TABLE_NAME = re.compile(r"(count|cnt|table|freq|hist|ctx|full|cache|ngram|gram|hash|bucket|hits|tab|ppm|occ)", re.I)
_SCORE_ACC = re.compile(r"((loss|nll|bits|bpb|logp|lp|score|xent|ce|neglog)\w*(sum|total|tot|acc|accum))$|"
                        r"^(sum|total|tot|acc)_?(loss|nll|bits|bpb|logp|ce|xent|neglog)\w*$|^nll$|^bits$", re.I)
_FILEREF = re.compile(r"([\w-]+\.(?:py|c|cc|cpp|cu|cuh|h|hpp))\b")
_SCORE_LIST = re.compile(r"(nll|loss|bits|score|logp|lp)(es|s)?(_\w+)?$", re.I)
_BYTES_NAME = re.compile(r"byte|nbytes|n_b\b|bytes_per", re.I)
_STATE_OBJ = re.compile(r"(cache|ngram|ppm|table|counter|counts|state|mixer|model_ng|lm_ng|gram)", re.I)
def _train_bin(text: str) -> bool:
    """re.search(r"(^|[/_*])train_?\\*?\\w*\\.bin", text) in O(n): that regex backtracks over `\\w*`
    from every `_train` in a long word (quadratic: a 120 KB string took 24 s). Each `.bin` ends a run
    of word characters; runs before different `.bin`s are disjoint, so each character is looked at a
    bounded number of times."""
    def run_start(end: int) -> int:  # start of the maximal run of word characters ending at `end`
        i = end
        while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
            i -= 1
        return i

    def train_ends_at(seg_start: int, seg_end: int) -> bool:
        # "train" or "train_" ends the word run text[seg_start:seg_end], legally preceded
        for tail in ("train", "train_"):
            s = seg_end - len(tail)
            if s >= seg_start and text.startswith(tail, s):
                if s == 0 or text[s - 1] in "/_*":
                    return True
        return False

    pos = text.find(".bin")
    while pos >= 0:
        q = run_start(pos)
        run = text[q:pos]
        if "_train" in run or (run.startswith("train") and (q == 0 or text[q - 1] in "/*")):
            return True
        if q > 0 and text[q - 1] == "*" and train_ends_at(run_start(q - 1), q - 1):
            return True
        pos = text.find(".bin", pos + 1)
    return False


_STATE_UPDATE = {"update", "add", "observe", "learn", "feed", "push", "extend_counts", "add_tokens", "ingest",
                 "accumulate", "record", "insert", "train_on", "fit"}
_OPTIMIZERS = {"SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Muon", "NorMuon", "Lion", "Adafactor", "LBFGS",
               "SparseAdam", "Adamax", "NAdam", "RAdam"}
_KILL_ATTRS = {"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "grad_fn", "itemsize", "layout"}
_KILL_METHODS = {"size", "numel", "dim", "nelement", "element_size", "stride", "data_ptr", "is_contiguous",
                 "get_device", "type"}
_KILL_FUNCS = {"len", "range", "print", "isinstance", "hasattr", "type", "id", "callable", "log0", "log",
               "logger.info", "print0", "time.time", "time.perf_counter"}
_LOSS_FUNCS = {"cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
               "kl_div"}
_MIN_FUNCS = {"minimum", "fmin", "min", "amin", "argmin", "nanmin"}
_TRAIN_READERS = {"load_data_shard", "fromfile", "memmap", "open", "glob", "load", "TokenStream",
                  "DistributedTokenLoader", "read_bytes", "loadtxt", "iglob", "listdir", "scandir"}
EXT_ROOTS = {"subprocess", "os", "urllib", "requests", "huggingface_hub", "torch.hub", "datasets", "socket",
             "http", "wget", "gdown", "boto3", "httpx", "aiohttp", "shutil", "ctypes", "torch.utils.cpp_extension",
             "importlib", "pip"}


WORK_LIMIT = 200_000  # per function; past it loops are interpreted once (labels may be missed, never invented)


@dataclass(frozen=True)
class Loop:
    start: int
    end: int
    targets: tuple[str, ...]
    iter_text: str
    node_id: int


@dataclass
class Event:
    kind: str
    path: str
    line: int
    func: "Func"
    labels: frozenset
    loops: tuple[Loop, ...]
    dead: frozenset | None
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    end_line: int = 0
    nograd: bool = False

    def in_loop(self, loop: Loop) -> bool:
        return any(l.node_id == loop.node_id for l in self.loops)


@dataclass
class Summary:
    ret: frozenset = frozenset()
    # (kind, labels) -> origin dict (path, line, text, chain)
    effects: dict[tuple[str, frozenset], dict] = field(default_factory=dict)

    def key(self) -> tuple:
        return (self.ret, frozenset(self.effects))


def _next_token_slice(node: ast.AST | None) -> bool:
    """`x[1:]` / `x[:, 1:]` (possibly followed by .reshape/.view/.to/...): the shifted-by-one targets."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr in ("reshape", "view", "to", "long", "unsqueeze", "contiguous", "flatten", "cuda"):
        node = node.func.value
    if not isinstance(node, ast.Subscript):
        return False
    sl = node.slice
    last = sl.elts[-1] if isinstance(sl, ast.Tuple) and sl.elts else sl
    return isinstance(last, ast.Slice) and isinstance(last.lower, ast.Constant) and last.lower.value == 1 \
        and last.upper is None and last.step is None


def _const_or_prime(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return True
    if isinstance(node, ast.Subscript):
        node = node.value
    d = dotted(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
    return bool(d and re.search(r"(prime|mult|salt|seed|^p\d*$|^P\d*$)", d.rsplit(".", 1)[-1], re.I))


def _argnames(node: ast.Call) -> list[str]:
    """Names passed as arguments (objects a callee can mutate); wrapped values (copies) are left out."""
    vals = list(node.args) + [k.value for k in node.keywords]
    return sorted({d for v in vals if isinstance(v, (ast.Name, ast.Attribute)) for d in [dotted(v)] if d})


def _has_param(labels: frozenset) -> bool:
    return any(l.startswith("param:") for l in labels)


def _maybe_train(labels: frozenset) -> bool:
    return TRAIN in labels or _has_param(labels)


def is_target_name(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return bool(_TARGET_NAME.match(leaf)) and not _NOT_TARGET.match(leaf) and not leaf.startswith("y_pred")


def name_seeds(name: str) -> set[str]:
    leaf = name.rsplit(".", 1)[-1]
    out = set()
    if _VAL_NAME.search(leaf):
        out.add(VAL)
    if _TRAIN_NAME.match(leaf):
        out.add(TRAIN)
    return out


def _is_sum_expr(node: ast.AST) -> bool:
    """True when a denominator is a sum/normaliser over a vector (a full-vocabulary normalisation)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            leaf = (dotted(n.func) or "").rsplit(".", 1)[-1]
            if leaf in ("sum", "logsumexp", "nansum", "softmax", "norm"):
                return True
        if isinstance(n, (ast.Name, ast.Attribute)):
            leaf = (dotted(n) or "").rsplit(".", 1)[-1]
            if re.search(r"(^|_)(z|Z|norm|partition|denom_sum|total_mass|row_sum|vocab_sum)$", leaf):
                return True
    return False


def _unwrap_mult(node: ast.AST) -> list[ast.AST] | None:
    """Factors of a product a*b*c (None when not a product)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        out = []
        for side in (node.left, node.right):
            f = _unwrap_mult(side)
            out.extend(f if f is not None else [side])
        return out
    return None


def _one_minus(node: ast.AST) -> ast.AST | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and isinstance(node.left, ast.Constant) \
            and node.left.value in (1, 1.0):
        return node.right
    return None


class FlowAnalyzer:
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
        ev = Event(kind, self.func.path, line, self.func, frozenset(labels), tuple(self.loops), dead,
                   self.text(line), data, getattr(node, "end_lineno", line) or line, self.nograd > 0)
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
            self.if_tests.append(ast.unparse(s.test)[:120])
            self.block(s.body)
            self.if_tests.pop()
            if truth is False:
                self.dead.pop()
            after_body = self.env
            self.env = dict(before)
            if truth is True and s.orelse:
                self._dead_push(s.orelse, used)
            self.block(s.orelse)
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
        if not self.loops or not base or _TABLE_NAME.search(base.rsplit(".", 1)[-1]):
            return
        loopvars = set(self.loops[-1].targets)
        if loopvars and any(isinstance(n, ast.Name) and n.id in loopvars for n in ast.walk(target.slice)):
            self.emit("pos_write", target, frozenset(), table=base)

    def _named(self, name: str, labs: frozenset, stmt: ast.stmt) -> frozenset:
        out = set(labs) | name_seeds(name)
        if is_target_name(name):
            out |= {TGT, f"tv:{stmt.lineno}:{name}"}
        leaf = name.rsplit(".", 1)[-1]
        if self.pc and _WEIGHT_NAME.search(leaf):
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
            if leaf in _OPTIMIZERS:
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
            if _SCORE_ACC.search(n.rsplit(".", 1)[-1]) and isinstance(value, ast.BinOp) \
                    and isinstance(value.op, ast.Add) and dotted(value.left) == n:
                labs = self.expr(value.right)
                if labs & {VAL, GOLD, NLL, TGT}:
                    self.emit("score", stmt, labs, acc=n)

    def _aug(self, target: ast.AST, labs: frozenset, stmt: ast.AugAssign) -> None:
        if isinstance(target, (ast.Name, ast.Attribute)):
            d = dotted(target)
            if d:
                self.env[d] = self.env.get(d, self.globals.get(d, frozenset())) | labs
                if isinstance(stmt.op, (ast.Add, ast.Sub)) and _SCORE_ACC.search(d.rsplit(".", 1)[-1]) \
                        and (labs & {VAL, GOLD, NLL, TGT} or _has_param(labs)):
                    self.emit("score", stmt, labs, acc=d)
        elif isinstance(target, ast.Subscript):
            idx = self.expr(target.slice)
            base = dotted(target.value)
            if base:
                self.env[base] = self.env.get(base, frozenset()) | labs
                if isinstance(stmt.op, (ast.Add, ast.Sub)) and _SCORE_ACC.search(base.rsplit(".", 1)[-1]) \
                        and labs & {VAL, GOLD, NLL, TGT}:
                    self.emit("score", stmt, labs, acc=base)
                    return
            self._count_update(target, idx, stmt)

    def _count_update(self, target: ast.Subscript, idx: frozenset, stmt: ast.stmt) -> None:
        base = dotted(target.value) or ""
        if _TABLE_NAME.search(base.rsplit(".", 1)[-1]) and (idx & {VAL, TGT, GOLD} or _has_param(idx)):
            self.emit("update", stmt, idx | {"count"}, table=base, how="count")

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
                if "fineweb_train" in low or _train_bin(low):
                    out.add(TRAIN)
                if "fineweb_val" in low:
                    out.add(VAL)
                if len(low) < 400:
                    for m in _FILEREF.finditer(low):
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
            if node.attr in _KILL_ATTRS:
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

    def _subscript(self, node: ast.Subscript) -> frozenset:
        v = self.expr(node.value)
        sl = node.slice
        s = self.expr(sl)
        out = set(v)
        is_slice = isinstance(sl, ast.Slice) or (isinstance(sl, ast.Tuple) and
                                                 any(isinstance(e, ast.Slice) for e in sl.elts))
        if not is_slice:
            out |= s & {VAL, TRAIN}
            if TGT in s:
                out.add(GOLD)
                out |= {l for l in s if l.startswith("tv:")}
                base = dotted(node.value) or ""
                if _TABLE_NAME.search(base.rsplit(".", 1)[-1]):
                    out.add(LOOKUP)
                    self.emit("lookup", node, s, table=base, hashed=THASH in s)
            if THASH in s:
                out |= {GOLD, LOOKUP, HLOOKUP}
                self.emit("lookup", node, s, table=dotted(node.value) or "", hashed=True)
        if VAL in v and is_slice:
            bounds = [sl] if isinstance(sl, ast.Slice) else [e for e in sl.elts if isinstance(e, ast.Slice)]
            for b in bounds:
                if b.upper is not None or b.lower is not None:
                    self.emit("val_slice", node, self.expr(b.upper) | self.expr(b.lower), key=id(b),
                              upper=b.upper, lower=b.lower, base=dotted(node.value) or ast.unparse(node.value)[:60])
        return frozenset(out)

    def _binop(self, node: ast.BinOp) -> frozenset:
        left, right = self.expr(node.left), self.expr(node.right)
        out = set(left | right)
        if isinstance(node.op, ast.Div):
            if LOOKUP in left and not _is_sum_expr(node.right):
                out.add(RATIO)
                self.emit("ratio", node, left | right, denom=ast.unparse(node.right)[:80])
            if left & {GOLD, NLL} and self._is_bytes(node.right):
                out.add(PERBYTE)
                self.emit("perbyte", node, left, denom=ast.unparse(node.right)[:80])
        elif isinstance(node.op, ast.Pow):
            if left & {GOLD, NLL} and any(self._is_bytes(n) for n in ast.walk(node.right)
                                          if isinstance(n, (ast.Name, ast.Attribute, ast.Subscript))):
                out.add(PERBYTE)
                self.emit("perbyte", node, left, denom=ast.unparse(node.right)[:80])
        elif isinstance(node.op, (ast.Add, ast.Sub)):
            self._maybe_mix(node)
        if isinstance(node.op, (ast.BitXor, ast.BitAnd, ast.Mod, ast.LShift, ast.RShift, ast.BitOr)) or (
                isinstance(node.op, ast.Mult) and (_const_or_prime(node.left) or _const_or_prime(node.right))):
            if (left | right) & {TGT, THASH}:
                out.add(THASH)
        return frozenset(out)

    def _is_bytes(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Subscript):
            node = node.value
        if isinstance(node, ast.Call):
            node = node.func.value if isinstance(node.func, ast.Attribute) else node.func
        d = dotted(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
        return bool(d and _BYTES_NAME.search(d.rsplit(".", 1)[-1]))

    def _maybe_mix(self, node: ast.BinOp) -> None:
        f1, f2 = _unwrap_mult(node.left), _unwrap_mult(node.right)
        if not f1 or not f2:
            return
        weights: list[ast.AST] = []
        texts2 = {ast.unparse(x) for x in f2}
        texts1 = {ast.unparse(x) for x in f1}
        for a in f1:
            om = _one_minus(a)
            if om is not None and ast.unparse(om) in texts2:
                weights.append(om)
        for b in f2:
            om = _one_minus(b)
            if om is not None and ast.unparse(om) in texts1:
                weights.append(om)
        for f in f1 + f2:
            d = dotted(f) if isinstance(f, (ast.Name, ast.Attribute)) else None
            if d and _WEIGHT_NAME.search(d.rsplit(".", 1)[-1]):
                weights.append(f)
        if not weights:
            return
        wtexts = {ast.unparse(w) for w in weights}
        operands = [f for f in f1 + f2 if ast.unparse(f) not in wtexts and _one_minus(f) is None]
        wl = frozenset().union(*[self.expr(w) for w in weights])
        ol = [self.expr(o) for o in operands]
        self.emit("mix", node, wl.union(*ol) if ol else wl, weight_labels=wl, operand_labels=ol,
                  weight_text=", ".join(sorted(wtexts))[:80])

    def _call(self, node: ast.Call) -> frozenset:  # noqa: C901 - one place for call semantics
        r = self.envm.env_call(node)
        if r is not None:
            for a in node.args[1:]:
                self.expr(a)
            return frozenset({f"env:{r[0]}"})
        q = self.qual(node.func)
        leaf = q.rsplit(".", 1)[-1] if q else (node.func.attr if isinstance(node.func, ast.Attribute) else "")
        recv = self.expr(node.func.value) if isinstance(node.func, ast.Attribute) else frozenset()
        args = [self.expr(a) for a in node.args]
        kws = {k.arg: self.expr(k.value) for k in node.keywords}
        allargs = frozenset().union(frozenset(), *args, *kws.values())
        if q in _KILL_FUNCS or (isinstance(node.func, ast.Attribute) and leaf in _KILL_METHODS):
            return frozenset()
        root = q.split(".")[0] if q else ""
        if q and (root in EXT_ROOTS or q.startswith(("torch.hub", "torch.utils.cpp_extension"))):
            strings = []
            sources: list[ast.AST] = [node]
            if node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in self.locals_consts:
                sources.insert(0, self.locals_consts[node.args[0].id])
            for src in sources:
                for n in ast.walk(src):
                    if isinstance(n, ast.Constant) and isinstance(n.value, str):
                        strings.append(n.value)
            self.emit("ext", node, allargs, key=q, qual=q, strings=strings, call=node, guards=list(self.if_tests))
        if isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval", "__import__", "compile"):
            self.emit("ext", node, allargs, key=node.func.id, qual=node.func.id,
                      strings=[n.value for n in ast.walk(node)
                               if isinstance(n, ast.Constant) and isinstance(n.value, str)],
                      call=node)
        # --- updates, steps, restores
        if isinstance(node.func, ast.Attribute):
            obj = dotted(node.func.value) or ""
            if leaf == "backward":
                self.emit("update", node, recv, how="backward", obj=obj)
            elif leaf == "step" and (obj in self.opt_names or re.search(r"opt", obj, re.I)):
                info = self.opt_names.get(obj, {})
                self.emit("step", node, recv, obj=obj, fresh=info.get("fresh", False), params=info.get("params", []),
                          opt_line=info.get("line"))
            elif leaf == "load_state_dict":
                self.emit("restore", node, obj=obj)
            elif leaf in ("index_add_", "scatter_add_", "index_put_", "scatter_add", "index_add", "put_") and \
                    _TABLE_NAME.search(obj.rsplit(".", 1)[-1] or "x"):
                idx = args[1] if len(args) > 1 else allargs
                if idx & {VAL, TGT, GOLD}:
                    self.emit("update", node, idx | {"count"}, table=obj, how=leaf)
            elif leaf in _STATE_UPDATE and _STATE_OBJ.search(obj.rsplit(".", 1)[-1] or "") and allargs & {VAL, TGT}:
                self.emit("update", node, allargs | {"count"}, table=obj, how=f".{leaf}()")
            if re.match(r"_?reset", leaf):
                self.emit("restore", node, obj=obj)
            if leaf in ("append", "extend") and _SCORE_LIST.search(obj.rsplit(".", 1)[-1] or "") \
                    and allargs & {VAL, GOLD, NLL, TGT}:
                self.emit("score", node, allargs, acc=obj)
        if q == "torch.autograd.grad" and args:
            self.emit("update", node, args[0], how="autograd.grad")
        if leaf == "at" and q.endswith("add.at") and len(args) >= 2:
            table = dotted(node.args[0]) or ""
            if args[1] & {VAL, TGT, GOLD}:
                self.emit("update", node, args[1] | {"count"}, table=table, how="np.add.at")
        if isinstance(node.func, ast.Name) and re.match(r"_?reset", node.func.id):
            self.emit("restore", node, obj=node.func.id)
        # --- training data reads
        if leaf in _TRAIN_READERS and _maybe_train(allargs | recv):
            self.emit("train_read", node, allargs | recv, how=leaf)
        elif isinstance(node.func, ast.Attribute) and leaf in ("next_batch", "next", "take", "__next__") \
                and _maybe_train(recv):
            self.emit("train_read", node, recv, how=leaf)
        # --- user functions
        callees, bound, cls = self._resolve(node.func)
        if callees or cls:
            self.emit("call", node, allargs, key="call", callees=callees, cls=cls)
        if callees:
            out: set[str] = set()
            for callee in callees:
                self._apply_summary(node, callee, bound, args, kws)
                summ = self.summaries.get(callee)
                if summ is not None:
                    out |= self._subst(summ.ret, callee, bound, args, kws)
            if cls is not None:
                out |= allargs
            return frozenset(out)
        # --- library semantics
        out = set(allargs | recv)
        if leaf in _LOSS_FUNCS and (TGT in out or GOLD in out):
            out = (out - {TGT}) | {NLL, GOLD}
            self.emit("loss", node, frozenset(out))
        elif leaf in ("gather", "take_along_dim"):
            idx = args[-1] if args else kws.get("index", frozenset())
            if "index" in kws:
                idx = kws["index"]
            if TGT in idx:
                src = recv if isinstance(node.func, ast.Attribute) and q.split(".")[0] not in ("torch", "np", "numpy") \
                    else (args[0] if args else frozenset())
                out = set(src) | {GOLD} | {l for l in idx if l.startswith("tv:")} | (idx & {VAL})
        elif leaf in _MIN_FUNCS:
            self._min_select(node, leaf, args, recv)
        elif leaf in ("stack", "cat", "vstack", "hstack", "array") and node.args and \
                isinstance(node.args[0], (ast.List, ast.Tuple)):
            elts = node.args[0].elts
            if sum(1 for e in elts if self.expr(e) & {GOLD, NLL}) >= 2:
                out.add(STACK2)
        elif leaf in ("lerp",) and (len(args) >= 2 or recv):
            ops = [recv, args[0]] if isinstance(node.func, ast.Attribute) and q.split(".")[0] not in ("torch",) \
                else args[:2]
            w = args[-1] if args else frozenset()
            self.emit("mix", node, frozenset().union(w, *ops), weight_labels=w, operand_labels=ops,
                      weight_text=ast.unparse(node.args[-1])[:80] if node.args else "")
        elif leaf in ("logaddexp", "logaddexp2") and len(args) >= 2:
            self.emit("mix", node, args[0] | args[1], weight_labels=frozenset(), operand_labels=args[:2],
                      weight_text="")
        elif leaf == "logsumexp" and args and STACK2 in args[0] | recv:
            self.emit("mix", node, args[0] | recv, weight_labels=frozenset(), operand_labels=[args[0] | recv],
                      weight_text="")
        elif leaf == "where" and len(node.args) == 3 and isinstance(node.args[0], ast.Compare):
            c = node.args[0]
            sides = {ast.unparse(c.left), ast.unparse(c.comparators[0])}
            if {ast.unparse(node.args[1]), ast.unparse(node.args[2])} == sides and args[1] & {GOLD, NLL} \
                    and args[2] & {GOLD, NLL}:
                self.emit("min_select", node, args[1] | args[2], how="where")
        if leaf not in ("stack", "cat", "vstack", "hstack", "array"):
            out.discard(STACK2)  # only the stacked tensor itself is "several passes side by side"
        return frozenset(out)

    def _min_select(self, node: ast.Call, leaf: str, args: list[frozenset], recv: frozenset) -> None:
        """min/argmin across passes or experts of per-token losses: best-of selection with the target."""
        q = self.qual(node.func)
        module_call = q.split(".")[0] in ("torch", "np", "numpy", "math") or q in _MIN_FUNCS
        if isinstance(node.func, ast.Attribute) and not module_call:
            if STACK2 in recv:
                self.emit("min_select", node, recv, how=f".{leaf}()")
            return
        if len(node.args) == 1 and args and STACK2 in args[0]:
            self.emit("min_select", node, args[0], how=leaf)
            return
        scored = [a for a in args if a & {GOLD, NLL}]
        if len(scored) >= 2:
            self.emit("min_select", node, frozenset().union(*scored), how=leaf)

    def _subst(self, labels: frozenset, callee: "Func", bound: bool, args: list[frozenset],
               kws: dict[str | None, frozenset]) -> set[str]:
        params = callee.params
        offset = 1 if (bound and params and params[0] in ("self", "cls")) else 0
        amap: dict[str, frozenset] = {}
        for i, a in enumerate(args):
            if i + offset < len(params):
                amap[params[i + offset]] = a
        for k, v in kws.items():
            if k:
                amap[k] = v
        out: set[str] = set()
        for l in labels:
            if l.startswith("param:"):
                out |= amap.get(l[6:], frozenset())
            else:
                out.add(l)
        return out

    def _apply_summary(self, node: ast.Call, callee: "Func", bound: bool, args: list[frozenset],
                       kws: dict[str | None, frozenset]) -> None:
        summ = self.summaries.get(callee)
        if summ is None:
            return
        for (kind, labels), origin in summ.effects.items():
            labs = frozenset(self._subst(labels, callee, bound, args, kws))
            self.emit(kind, node, labs, key=("via", callee.qname, kind, labels), via=callee.qname,
                      via_name=callee.name, origin=origin, how=origin.get("how"), argnames=_argnames(node))
