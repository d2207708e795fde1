"""Self-extracting code stubs, decoded from AST literals and never executed.

Record scripts are often shipped as `exec(lzma.decompress(base64.b85decode("...")))` (xz container or
raw LZMA2 with `format=FORMAT_RAW`), zlib/base64 variants, or a tiny shim that execs a sibling file.
The auditor must read the code that actually runs, so we evaluate only a whitelist of pure decoding
calls over constant operands, with every decompression bounded by MAX_DECODED_BYTES.

One evaluator of the stub language in one file (~500 lines): its bounds are easiest to audit together.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import codecs
import lzma
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable

from auditor.core import budget

MAX_DECODED_BYTES = budget.DECODED_BYTES  # real decoded scripts are < 200 KB
MAX_LAYERS = budget.DECODE_LAYERS
MAX_SOURCE_BYTES = budget.PARSE_SOURCE_BYTES  # do not even parse a larger "script"
MAX_BUILT_BYTES = budget.BUILT_BYTES  # everything one file's evaluation builds, together
# what evaluating a stub can raise from the standard library (codecs, compressors, containers,
# numbers); each is the stub's failure, reported as a DecodeError, never the auditor's
_STDLIB_ERRORS = (ValueError, TypeError, LookupError, OverflowError, EOFError, OSError, lzma.LZMAError,
                  zlib.error, KeyError, IndexError, AttributeError)
# text codecs written in Python whose cost is not linear in their input (punycode inserts, idna
# splits labels), and those that cannot run here
_SLOW_CODECS = {"idna", "punycode", "mbcs", "oem", "undefined"}

_COMPRESSION_MODULES = {"lzma", "zlib", "bz2", "gzip", "base64", "codecs", "binascii"}


class DecodeError(Exception):
    """The stub could not be decoded (malformed literal, unsupported call, or over the bound)."""


@dataclass
class Decoded:
    text: str
    kind: str  # lzma-xz | lzma-raw | zlib | bz2 | base64 | exec-file
    layers: int
    target: str | None = None  # exec-file shims: the file that runs


def _too_big() -> DecodeError:
    return DecodeError(f"decompressed payload exceeds the {MAX_DECODED_BYTES:,}-byte bound")


def _bounded_streams(make: Callable, data: bytes, what: str, errors: tuple, *, garbage_ok: bool,
                     strip_nul: bool = False) -> bytes:
    """Decompress every concatenated stream, as `lzma.decompress`, `bz2.decompress` and
    `gzip.decompress` do. Reading only the first stream would let a stub show the auditor a benign
    first stream while Python runs the second; a truncated stream raises in Python, so it does here.
    `garbage_ok`: trailing bytes that are not a stream are ignored (lzma, bz2) or an error (gzip)."""
    out = bytearray()
    first = True
    while True:
        dec = make()
        try:
            chunk = dec.decompress(data, MAX_DECODED_BYTES + 1 - len(out))
        except errors as exc:
            if not first and garbage_ok:
                break
            raise DecodeError(f"{what} payload is corrupt ({exc})") from None
        out += chunk
        if len(out) > MAX_DECODED_BYTES:
            raise _too_big()
        if not dec.eof:
            raise DecodeError(f"{what} payload is truncated (no end-of-stream marker)")
        data = dec.unused_data
        if strip_nul:
            data = data.lstrip(b"\x00")
        first = False
        if not data:
            break
    return bytes(out)


def _bounded_lzma(data: bytes, raw: bool, filters: list | None) -> bytes:
    if raw:
        make = lambda: lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters or [{"id": lzma.FILTER_LZMA2}])
    else:  # the stream header names its dictionary size: liblzma refuses one past the limit
        make = lambda: lzma.LZMADecompressor(memlimit=budget.LZMA_MEMLIMIT)
    try:
        make()  # liblzma rejects some filter chains only when the decompressor is built
    except (ValueError, TypeError, OverflowError, lzma.LZMAError, MemoryError) as exc:
        raise DecodeError(f"LZMA filter spec rejected ({exc or type(exc).__name__})") from None
    try:
        return _bounded_streams(make, data, "LZMA", (lzma.LZMAError, EOFError), garbage_ok=True)
    except (ValueError, TypeError, OverflowError) as exc:  # a filter spec liblzma rejects
        raise DecodeError(f"LZMA filter spec rejected ({exc})") from None


def _bounded_zlib(data: bytes, wbits: int = zlib.MAX_WBITS, members: bool = False) -> bytes:
    """zlib.decompress reads one stream and ignores what follows; gzip.decompress (members=True)
    reads every member."""
    try:
        make = lambda: zlib.decompressobj(wbits)
        make()
    except (ValueError, zlib.error) as exc:
        raise DecodeError(f"unsupported zlib wbits ({exc})") from None
    if members:
        return _bounded_streams(make, data, "gzip", (zlib.error, EOFError), garbage_ok=False, strip_nul=True)
    dec = make()
    try:
        out = dec.decompress(data, MAX_DECODED_BYTES + 1)
    except zlib.error as exc:
        raise DecodeError(f"zlib payload is corrupt ({exc})") from None
    if len(out) > MAX_DECODED_BYTES:
        raise _too_big()
    if not dec.eof:
        raise DecodeError("zlib payload is truncated (no end-of-stream marker)")
    return out


def _bounded_bz2(data: bytes) -> bytes:
    return _bounded_streams(bz2.BZ2Decompressor, data, "bz2", (OSError, ValueError, EOFError), garbage_ok=True)


class _Evaluator:
    """Evaluates one expression of constants and whitelisted decoding calls."""

    def __init__(self, aliases: dict[str, str], constants: dict[str, object], built: list[int] | None = None):
        self.aliases = aliases  # local name -> module or "module.attr"
        self.constants = constants  # module-level NAME = <constant expr>
        self.kinds: list[str] = []
        self.built = built if built is not None else [0]  # bytes built so far (shared by a file's layers)
        self.failed: dict[str, str] = {}  # module constants that could not be evaluated -> why

    def build(self, size: int) -> None:
        """Account for a value of `size` bytes/characters about to be built: raises when it, or all
        values built for this file together, would pass the bound (checked before building)."""
        if size > MAX_DECODED_BYTES:
            raise _too_big()
        self.built[0] += size
        if self.built[0] > MAX_BUILT_BYTES:
            raise DecodeError(f"the stub builds more than {MAX_BUILT_BYTES:,} bytes of values in all")

    def safe_eval(self, node: ast.expr) -> object:
        """eval(), with every standard-library failure of what it evaluates turned into a DecodeError."""
        try:
            return self.eval(node)
        except _STDLIB_ERRORS as exc:
            raise DecodeError(f"the stub's expression fails ({type(exc).__name__}: {str(exc)[:120]})") from None

    def qualname(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    def eval(self, node: ast.expr, depth: int = 0) -> object:
        if depth > 50:
            raise DecodeError("expression too deep")
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self.constants:
                return self.constants[node.id]
            if node.id in self.failed:  # say why, not just "not a constant"
                raise DecodeError(f"{node.id}: {self.failed[node.id]}")
            qn = self.aliases.get(node.id)
            if qn is not None:
                return _Ref(qn)
            raise DecodeError(f"name {node.id!r} is not a constant")
        if isinstance(node, ast.Attribute):
            qn = self.qualname(node)
            if qn is not None and qn.split(".")[0] in _COMPRESSION_MODULES:
                return _Ref(qn)
            raise DecodeError("unsupported attribute")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left, depth + 1), self.eval(node.right, depth + 1)
            if type(left) is type(right) and isinstance(left, (str, bytes)):
                self.build(len(left) + len(right))  # predicted size, before building it
                return left + right
            raise DecodeError("unsupported concatenation")
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.eval(e, depth + 1) for e in node.elts]
        if isinstance(node, ast.Dict):
            out = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    continue
                key = self.eval(k, depth + 1)
                try:
                    out[key] = self.eval(v, depth + 1)
                except TypeError:  # an unhashable key ([1]: 2); Python raises too
                    raise DecodeError("unhashable dict key in the stub") from None
            return out
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise DecodeError(f"unsupported expression {type(node).__name__}")

    def call(self, node: ast.Call, depth: int) -> object:
        func = node.func
        # method calls on a value: x.decode(), x.encode()
        if isinstance(func, ast.Attribute) and func.attr in ("decode", "encode"):
            qn = self.qualname(func)
            if qn is None or qn.split(".")[0] not in _COMPRESSION_MODULES:
                value = self.eval(func.value, depth + 1)
                args = [self.eval(a, depth + 1) for a in node.args]
                enc = args[0] if args else "utf-8"
                if func.attr == "decode" and isinstance(value, bytes):
                    self.build(len(value))  # at most one character per byte
                    return _text_codec(value, enc if isinstance(enc, str) else "utf-8", "decode")
                if func.attr == "encode" and isinstance(value, str):
                    self.build(4 * len(value) + 4)  # at most four bytes per character (+ BOM)
                    return _text_codec(value, enc if isinstance(enc, str) else "utf-8", "encode")
                raise DecodeError("unsupported decode/encode")
        # x.replace(a, b) with b no longer than a (stubs strip their line breaks: `_b.replace(b"\n", b"")`),
        # and x.strip(): never longer than x, so bounded by what is already built
        if isinstance(func, ast.Attribute) and func.attr in ("replace", "strip") and not node.keywords:
            value = self.eval(func.value, depth + 1)
            args = [self.eval(a, depth + 1) for a in node.args]
            same = all(type(a) is type(value) for a in args) and isinstance(value, (str, bytes))
            if same and func.attr == "strip" and len(args) <= 1:
                return value.strip(*args)
            if same and func.attr == "replace" and len(args) == 2 and args[0] and len(args[1]) <= len(args[0]):
                return value.replace(args[0], args[1])
            raise DecodeError(f"unsupported .{func.attr}() in the stub")
        qn = self.qualname(func)
        if qn is None:
            raise DecodeError("unsupported callee")
        args = [self.eval(a, depth + 1) for a in node.args]
        kwargs = {k.arg: self.eval(k.value, depth + 1) for k in node.keywords if k.arg}
        handler = _HANDLERS.get(qn) or _HANDLERS.get(qn.split(".", 1)[-1] if "." in qn else qn)
        if handler is None:
            if qn == "bytes.fromhex" and args and isinstance(args[0], str):
                self.build(len(args[0]) // 2)
                try:
                    return bytes.fromhex(args[0])
                except ValueError:
                    raise DecodeError("bad hex literal") from None
            raise DecodeError(f"call to {qn} is not a known decoder")
        kind, fn = handler
        # charged before the call: a decoder that fails (a bomb past the bound, a stream corrupt after
        # megabytes) did its work all the same, so every call costs at least this much of the budget
        self.build(budget.DECODE_CALL_BYTES)
        data = args[0] if args else kwargs.get("data", kwargs.get("s", b""))
        if isinstance(data, str):
            data = data.encode("ascii", errors="replace")
        if not isinstance(data, (bytes, bytearray)):
            raise DecodeError(f"{qn} applied to a non-literal")
        out = fn(bytes(data), kwargs, args[1:])
        self.build(len(out))  # each decoder bounds its own output by MAX_DECODED_BYTES
        if kind:
            self.kinds.append(kind)
        return out


def _text_codec(value: str | bytes, encoding: str, how: str) -> str | bytes:
    """`value.decode(encoding)` / `value.encode(encoding)` as Python would run it, lenient where
    Python is strict (errors="replace", so a stray byte does not hide the payload). Every way the
    codec machinery refuses (unknown name, a bytes-to-bytes codec such as zlib_codec or a
    str-to-str one such as rot13, a codec that refuses errors="replace") is a DecodeError."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise DecodeError(f"unknown codec {encoding[:40]!r} in .{how}()") from None
    if not getattr(info, "_is_text_encoding", True):
        raise DecodeError(f"{encoding[:40]!r} is not a text encoding (Python refuses it in .{how}())")
    if info.name in _SLOW_CODECS:
        raise DecodeError(f"codec {info.name!r} in .{how}() is not evaluated")
    for errors in ("replace", "strict"):
        try:
            return value.decode(encoding, errors) if how == "decode" else value.encode(encoding, errors)
        except (UnicodeError, LookupError, ValueError, TypeError) as exc:
            last = exc
    raise DecodeError(f"codec {info.name!r} fails in .{how}() ({type(last).__name__})")


class _Ref(str):
    """A reference to a module attribute (e.g. lzma.FORMAT_RAW) used as a keyword value."""


def _b85(data, kw, rest):
    try:
        return base64.b85decode(data)
    except ValueError as exc:
        raise DecodeError(f"malformed base85 literal ({exc})") from None


def _a85(data, kw, rest):
    try:
        return base64.a85decode(data)
    except ValueError as exc:
        raise DecodeError(f"malformed ascii85 literal ({exc})") from None


def _b64(data, kw, rest):
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"malformed base64 literal ({exc})") from None


def _b32(data, kw, rest):
    try:
        return base64.b32decode(data)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"malformed base32 literal ({exc})") from None


def _lzma(data, kw, rest):
    fmt = kw.get("format")
    raw = isinstance(fmt, str) and fmt.endswith("FORMAT_RAW")
    filters = None
    if raw:
        filters = []
        for f in kw.get("filters") or [{"id": "lzma.FILTER_LZMA2"}]:
            if not isinstance(f, dict):
                raise DecodeError("unsupported LZMA filter spec")
            fid = f.get("id")
            name = fid.rsplit(".", 1)[-1] if isinstance(fid, str) else None
            if name is None or not hasattr(lzma, name):
                raise DecodeError("unsupported LZMA filter id")
            spec = {k: v for k, v in f.items() if k != "id" and isinstance(v, int)}
            spec["id"] = getattr(lzma, name)
            filters.append(spec)
    return _bounded_lzma(data, raw, filters)


def _zlib(data, kw, rest):
    wbits = kw.get("wbits", rest[0] if rest else zlib.MAX_WBITS)
    if not isinstance(wbits, int) or not -15 <= wbits <= 47:
        wbits = zlib.MAX_WBITS
    return _bounded_zlib(data, wbits)


def _gzip(data, kw, rest):
    return _bounded_zlib(data, 16 + zlib.MAX_WBITS, members=True)


def _bz2(data, kw, rest):
    return _bounded_bz2(data)


def _codecs(data, kw, rest):
    enc = rest[0] if rest else kw.get("encoding", "")
    if enc in ("zlib", "zlib_codec"):
        return _bounded_zlib(data)
    if enc in ("base64", "base64_codec"):
        return _b64(data, kw, [])
    if enc in ("bz2", "bz2_codec"):
        return _bounded_bz2(data)
    if enc in ("hex", "hex_codec"):
        try:
            return codecs.decode(data, "hex")
        except (binascii.Error, ValueError):
            raise DecodeError("bad hex literal") from None
    raise DecodeError(f"codecs.decode with {enc!r} is not supported")


_HANDLERS: dict[str, tuple[str, Callable]] = {
    "base64.b85decode": ("base85", _b85),
    "base64.a85decode": ("ascii85", _a85),
    "base64.b64decode": ("base64", _b64),
    "base64.standard_b64decode": ("base64", _b64),
    "base64.urlsafe_b64decode": ("base64", _b64),
    "base64.b32decode": ("base32", _b32),
    "binascii.a2b_base64": ("base64", _b64),
    "lzma.decompress": ("lzma", _lzma),
    "zlib.decompress": ("zlib", _zlib),
    "gzip.decompress": ("gzip", _gzip),
    "bz2.decompress": ("bz2", _bz2),
    "codecs.decode": ("codecs", _codecs),
}


def _imports(tree: ast.Module) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _module_constants(tree: ast.Module, ev: _Evaluator) -> dict[str, object]:
    consts: dict[str, object] = {}
    ev.constants = consts
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            spent = ev.built[0]
            try:
                value = ev.safe_eval(node.value)
            except DecodeError as exc:
                if ev.built[0] > MAX_BUILT_BYTES:
                    raise  # the whole file's budget is spent: stop, and say so
                ev.built[0] = spent  # nothing of a failed constant is kept
                ev.failed[node.targets[0].id] = str(exc)[:200]
                continue
            if isinstance(value, (str, bytes)) and not isinstance(value, _Ref):
                consts[node.targets[0].id] = value
                ev.failed.pop(node.targets[0].id, None)
    ev.kinds.clear()
    return consts


def _exec_calls(tree: ast.Module) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval"):
            if node.args:
                calls.append(node)
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("run_path",) and node.args:
                calls.append(node)
    return calls


def _looks_like_stub(tree: ast.Module) -> bool:
    """A stub is a short module whose real work is an exec() of decoded or loaded text."""
    stmts = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    return 0 < len(stmts) <= 6 and bool(_exec_calls(tree))


def _shim_target(call: ast.Call, siblings: set[str], here: str) -> str | None:
    """For `exec(open("x.py").read())`-style shims, the sibling file being run."""
    names = [n.value for n in ast.walk(call) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    base = str(PurePosixPath(here).parent)
    for s in names:
        cand = s if base in ("", ".") else f"{base}/{s}"
        if s.endswith(".py") and cand in siblings and cand != here:
            return cand
    # `__file__.replace("train_gpt", "train_gpt_decode")`-style: look for a sibling named by a fragment
    for s in names:
        for sib in sorted(siblings):
            if sib != here and sib.endswith(".py") and PurePosixPath(sib).stem == s:
                return sib
    return None


def _layer_kind(steps: list[str], call_text: str) -> str:
    if "lzma" in steps:
        return "lzma-raw" if "FORMAT_RAW" in call_text else "lzma-xz"
    for k in ("zlib", "gzip", "bz2", "codecs"):
        if k in steps:
            return k
    return steps[-1] if steps else "literal"


_MAYBE_STUB = re.compile(r"\b(?:exec|eval|run_path)\b")  # _exec_calls finds nothing without one of these


def decode_stub(source: str, path: str, siblings: dict[str, str], built: list[int] | None = None,
                tokens: list[int] | None = None) -> Decoded | None:
    """Peel up to MAX_LAYERS stub layers. Returns None when `source` is not a stub.

    `siblings` maps other files in the folder (relative path) to their text, for exec-file shims.
    Raises DecodeError when it is a stub that cannot be decoded.
    `built` and `tokens`, when given, are running totals shared by every file of a folder (bytes of
    values built, tokens parsed), checked against budget.BUILT_BYTES and budget.DECODE_TOKENS_TOTAL,
    so many files each within the per-file bounds cannot add up to minutes of work.
    """
    text, kinds, layers, target = source, [], 0, None
    built = built if built is not None else [0]  # bytes of values built, all layers together (budget.BUILT_BYTES)
    tokens = tokens if tokens is not None else [0]
    while layers < MAX_LAYERS:
        if not _MAYBE_STUB.search(text):
            break  # no exec/eval/run_path anywhere: not a stub, and no need to parse a big script
        if len(text) > MAX_SOURCE_BYTES:
            raise DecodeError("script too large to analyse")
        # ast.parse takes ~400 bytes per token and cannot be interrupted: estimate first (linear)
        n_tokens = budget.count_tokens(text, budget.PARSE_TOKENS)
        if n_tokens > budget.PARSE_TOKENS:
            raise DecodeError(f"{'decoded payload' if layers else 'script'} has more than "
                              f"{budget.PARSE_TOKENS:,} tokens; over the bound for parsing it")
        if tokens[0] + n_tokens > budget.DECODE_TOKENS_TOTAL:
            raise DecodeError(f"not parsed for stub decoding: the folder's scripts already took "
                              f"{tokens[0]:,} of the {budget.DECODE_TOKENS_TOTAL:,} tokens budgeted for that")
        tokens[0] += n_tokens
        try:
            with warnings.catch_warnings():  # "invalid escape sequence" in submission code is not our stderr's business
                warnings.simplefilter("ignore")
                tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            break
        if not _looks_like_stub(tree):
            break
        ev = _Evaluator(_imports(tree), {}, built)
        _module_constants(tree, ev)
        decoded: str | None = None
        payloads: list[str] = []
        errors = []
        # every exec'd payload, in source order: Python runs them all, so showing the auditor only
        # the first would let a benign first payload hide the second
        for call in sorted(_exec_calls(tree), key=lambda c: (c.lineno, c.col_offset)):
            ev.kinds.clear()
            try:
                value = ev.safe_eval(call.args[0])
            except DecodeError as exc:
                if built[0] > MAX_BUILT_BYTES:
                    raise
                errors.append(str(exc))
                shim = _shim_target(call, set(siblings), target or path)
                if shim is not None and not payloads:
                    decoded, target = siblings[shim], shim
                    kinds.append("exec-file")
                    break
                continue
            except (RecursionError, MemoryError):
                raise DecodeError("stub expression too deep to decode") from None
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            if isinstance(value, str) and not isinstance(value, _Ref):
                if not payloads:
                    kinds.append(_layer_kind(ev.kinds, ast.unparse(call)))
                payloads.append(value)
                if sum(map(len, payloads)) > MAX_DECODED_BYTES:
                    raise _too_big()
        if payloads:
            decoded = "\n".join(payloads)
        if decoded is None:
            if layers == 0 and errors:
                raise DecodeError(errors[0])
            break
        text, layers = decoded, layers + 1
    if layers == 0:
        return None
    return Decoded(text=text, kind=kinds[0] if kinds else "literal", layers=layers, target=target)
