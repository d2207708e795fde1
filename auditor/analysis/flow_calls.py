"""Expression and call semantics of the flow analysis (a mixin of FlowAnalyzer in flow.py).

Split from flow.py so that each file has one job: flow.py walks statements and keeps the abstract state;
this module says what subscripts, arithmetic and calls do to labels, and which calls are events
(updates, steps, restores, scores, mixtures, external calls, summaries of project functions).

Call semantics (~400 lines): every call shape the rules rely on, in one place.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from auditor.analysis.envdefaults import dotted
from auditor.analysis.vocabulary import (
    NLL_NAME,
    SPREAD,
    BYTES_NAME,
    EXT_ROOTS,
    GOLD,
    HLOOKUP,
    KILL_FUNCS,
    KILL_METHODS,
    LOOKUP,
    LOSS_FUNCS,
    MIN_FUNCS,
    NLL,
    NOT_STATE_RESET,
    PERBYTE,
    RATIO,
    SCORE_LIST,
    STACK2,
    STATE_OBJ,
    STATE_UPDATE,
    TABLE_NAME,
    TGT,
    THASH,
    TRAIN,
    TRAIN_READERS,
    VAL,
    WEIGHT_NAME,
)

if TYPE_CHECKING:
    from auditor.analysis.index import Func


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


class CallSemantics:
    """Methods FlowAnalyzer mixes in; they read and emit through the analyser's own state."""

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
                if TABLE_NAME.search(base.rsplit(".", 1)[-1]):
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
            token_loss = bool(left & {GOLD, NLL}) or (isinstance(node.left, ast.Name) and NLL_NAME.match(node.left.id))
            if (token_loss and self._is_bytes(node.right)) or (SPREAD in left and SPREAD in right):
                out.add(PERBYTE)  # a token's value divided by its byte count (repeated per byte, then divided)
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
        return bool(d and BYTES_NAME.search(d.rsplit(".", 1)[-1]))

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
            if d and WEIGHT_NAME.search(d.rsplit(".", 1)[-1]):
                weights.append(f)
        if not weights:
            return
        wtexts = {ast.unparse(w) for w in weights}
        operands = [f for f in f1 + f2 if ast.unparse(f) not in wtexts and _one_minus(f) is None]
        wl = frozenset().union(*[self.expr(w) for w in weights])
        ol = [self.expr(o) for o in operands]
        self.emit("mix", node, wl.union(*ol) if ol else wl, weight_labels=wl, operand_labels=ol,
                  weight_text=", ".join(sorted(wtexts))[:80])

    def _call(self, node: ast.Call) -> frozenset:
        """The labels a call's result carries, and the events the call is (one place for call semantics)."""
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
        if q in KILL_FUNCS or (isinstance(node.func, ast.Attribute) and leaf in KILL_METHODS):
            return frozenset()
        self._external_call(node, q, allargs)
        self._state_effects(node, q, leaf, recv, args, allargs)
        self._train_reads(node, leaf, recv, allargs)
        user = self._user_call(node, args, kws, allargs)
        if user is not None:
            return user
        return self._library_call(node, q, leaf, recv, args, kws, allargs)

    def _external_call(self, node: ast.Call, q: str, allargs: frozenset) -> None:
        """Calls into the outside world (network, processes, exec/eval), with the strings they were given."""
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

    def _state_effects(self, node: ast.Call, q: str, leaf: str, recv: frozenset, args: list[frozenset],
                       allargs: frozenset) -> None:
        """Parameter and count-table updates, optimizer steps, state restores, score-list appends."""
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
                    TABLE_NAME.search(obj.rsplit(".", 1)[-1] or "x"):
                idx = args[1] if len(args) > 1 else allargs
                if idx & {VAL, TGT, GOLD}:
                    self.emit("update", node, idx | {"count"}, table=obj, how=leaf)
            elif leaf in STATE_UPDATE and STATE_OBJ.search(obj.rsplit(".", 1)[-1] or "") and allargs & {VAL, TGT}:
                self.emit("update", node, allargs | {"count"}, table=obj, how=f".{leaf}()")
            if re.match(r"_?reset", leaf) and not NOT_STATE_RESET.search(f"{obj}.{leaf}"):
                self.emit("restore", node, obj=obj)
            if leaf in ("append", "extend") and isinstance(node.func.value, ast.Name) and PERBYTE in allargs:
                # a list of per-byte spread values carries the spread to what reads it back
                self.env[node.func.value.id] = self.lookup_name(node.func.value.id) | {PERBYTE}
            if leaf in ("append", "extend") and SCORE_LIST.search(obj.rsplit(".", 1)[-1] or "") \
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

    def _train_reads(self, node: ast.Call, leaf: str, recv: frozenset, allargs: frozenset) -> None:
        if leaf in TRAIN_READERS and _maybe_train(allargs | recv):
            self.emit("train_read", node, allargs | recv, how=leaf)
        elif isinstance(node.func, ast.Attribute) and leaf in ("next_batch", "next", "take", "__next__") \
                and _maybe_train(recv):
            self.emit("train_read", node, recv, how=leaf)

    def _user_call(self, node: ast.Call, args: list[frozenset], kws: dict, allargs: frozenset) -> frozenset | None:
        """A call of project functions: their summarised effects happen here; None when it is not one."""
        callees, bound, cls = self._resolve(node.func)
        if callees or cls:
            self.emit("call", node, allargs, key="call", callees=callees, cls=cls)
        self._passed_functions(node, callees or [], args, kws)
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
        return None

    def _library_call(self, node: ast.Call, q: str, leaf: str, recv: frozenset, args: list[frozenset], kws: dict,
                      allargs: frozenset) -> frozenset:
        """Library semantics: losses, gathers at the target, minima, stacks and mixtures."""
        out = set(allargs | recv)
        if leaf in LOSS_FUNCS and (TGT in out or GOLD in out):
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
        elif leaf in MIN_FUNCS:
            self._min_select(node, leaf, args, recv)
        elif leaf in ("repeat", "repeat_interleave") and len(node.args) + len(node.keywords) >= 2 - \
                isinstance(node.func, ast.Attribute) and q.split(".")[0] in ("np", "numpy", "torch", ""):
            out.add(SPREAD)  # one copy per byte of the token: a per-byte spread of per-token values
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
        module_call = q.split(".")[0] in ("torch", "np", "numpy", "math") or q in MIN_FUNCS
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

    def _passed_functions(self, node: ast.Call, callees: list, args: list[frozenset],
                          kws: dict[str | None, frozenset]) -> None:
        """A project function passed as a positional argument is called with the arguments after it (the
        `timed_eval(label, eval_val, h, model, ...)` pattern): its effects happen at this call."""
        for i, a in enumerate(node.args):
            if not isinstance(a, (ast.Name, ast.Attribute)):
                continue
            passed, pbound, _ = self._resolve(a)
            for fn in passed or []:
                if fn not in callees:
                    self._apply_summary(node, fn, pbound, args[i + 1:], kws)

    def _apply_summary(self, node: ast.Call, callee: "Func", bound: bool, args: list[frozenset],
                       kws: dict[str | None, frozenset]) -> None:
        summ = self.summaries.get(callee)
        if summ is None:
            return
        for (kind, labels), origin in summ.effects.items():
            labs = frozenset(self._subst(labels, callee, bound, args, kws))
            self.emit(kind, node, labs, key=("via", callee.qname, kind, labels), via=callee.qname,
                      via_name=callee.name, origin=origin, how=origin.get("how"), argnames=_argnames(node))
