"""Hostile folders (issue 21) and a runner that measures what each audit costs.

Strategies build malformed record folders from the real-shaped synthetic record of adversarial_kit
(`valid_spec`), swapping or adding one to three hostile pieces. The classes: numbers that overflow
(submission.json and logs), codec arguments stdlib rejects, compressor construction and stream
failures of every format (truncated, concatenated, corrupt), decompression bombs of every format,
values whose size explodes when evaluated (string repeat/concat/join in stubs and env defaults,
fan-out through names), huge one-line expressions for the parser, long C lines, deep nesting,
symlinks, FIFOs, hard links, invalid UTF-8 and NULs, huge files and lines, odd file names.

Runner: a fork server. One child interpreter imports the auditor once, then forks a grandchild per
case that runs `auditor.cli.main(["run", FOLDER, "--format", "json"])` with stdout and stderr in
files; os.wait4 gives that grandchild's own CPU time and peak RSS (ru_maxrss: a forked child
counts only the pages it touches, so the server's own peak, ~70 MB, is added: the figure bounds what
a fresh `auditor run` would reach). A case past its wall
limit is killed and reported as a hang. A safety address-space limit (4 GiB) keeps a regression
from taking the machine down; hitting it shows as exit 2 "out of memory".
"""

from __future__ import annotations

import base64
import bz2
import gzip
import json
import lzma
import os
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from adversarial_kit import Spec, valid_meta, valid_spec
from recordkit import SCRIPT, modern_log

ROOT = Path(__file__).resolve().parent.parent
RSS_BOUND_MB = 1024
CPU_BOUND_S = 10.0
HANG_S = 60.0  # wall clock after which a case is killed (a loaded 2-core box is slower than the CPU bound)

# --------------------------------------------------------------------------------------------------
# special entries of a spec: (path, Special) instead of (path, bytes)


@dataclass(frozen=True)
class Special:
    kind: str  # symlink | fifo | hardlink | sparse
    arg: str = ""
    size: int = 0


def write_hostile(root: Path, spec: list) -> Path:
    """Write a spec whose entries may be Special. Later entries win; a path that is both a file and
    a folder becomes the folder."""
    root.mkdir(parents=True, exist_ok=True)
    final = dict(spec)
    dirs = {"/".join(rel.split("/")[:i]) for rel in final for i in range(1, rel.count("/") + 1)}
    for rel, content in final.items():
        if rel in dirs:
            continue
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Special):
            if content.kind == "symlink":
                os.symlink(content.arg, p)
            elif content.kind == "fifo":
                os.mkfifo(p)
            elif content.kind == "hardlink":
                target = root.parent / "outside.txt"
                target.write_text("secret\n")
                os.link(target, p)
            elif content.kind == "sparse":
                with open(p, "wb") as fh:
                    fh.truncate(content.size)
        else:
            p.write_bytes(content)
    return root


def spec_size(spec: list) -> int:
    return sum(len(v) if isinstance(v, (bytes, bytearray)) else 0 for v in dict(spec).values())


def summary(spec: list) -> str:
    parts = []
    for k, v in dict(spec).items():
        if isinstance(v, Special):
            parts.append(f"{k!r}={v!r}")
        else:
            parts.append(f"{k!r}({len(v)}B: {bytes(v[:50])!r})")
    return ", ".join(parts)[:600]


# --------------------------------------------------------------------------------------------------
# pieces

HUGE_NUMBERS = ["9" * 309, "-" + "9" * 309, "9" * 4000, "1e400", "-1e400", "NaN", "Infinity", "-Infinity",
                "1e-400", "9" * 20, "9" * 5000]


@st.composite
def json_numbers(draw) -> bytes:
    """submission.json with numbers no float or 64-bit int holds (or NaN/Infinity) in figure keys."""
    doc = valid_meta()
    keys = draw(st.lists(st.sampled_from(["val_bpb", "val_loss", "bytes_total", "bytes_code", "seeds",
                                          "seed_results", "mean_val_bpb"]), min_size=1, max_size=3, unique=True))
    values = {}
    for i, key in enumerate(keys):
        num = draw(st.sampled_from(HUGE_NUMBERS))
        if key == "seeds":
            values[i] = f"[42, {num}, 2025]"
        elif key == "seed_results":
            values[i] = '{"42": {"val_bpb": %s, "artifact_bytes": %s}, "%s": {"val_bpb": 1.08}}' % (
                num, draw(st.sampled_from(HUGE_NUMBERS)), draw(st.sampled_from(["1337", "9" * 400])))
        else:
            values[i] = num
        doc[key] = f"@@{i}@@"
    text = json.dumps(doc)
    for i, value in values.items():
        text = text.replace(f'"@@{i}@@"', value)
    return text.encode()


LOG_NUMBER_LINES = [
    "500/20000 train_loss: 3.3 train_time: {F}m tok/s: 7",
    "step:{I}/20000 train_loss:3.3 train_time:{I}ms step_avg:1ms",
    "stopping_early: wallclock_cap train_time: {I}ms step: {I}/20000",
    "quantized val_loss:{F} val_bpb:{F} eval_time:{I}ms",
    "quantized_sliding_window val_loss:1.9 val_bpb:{F} eval_time:{I}ms",
    "total_eval_time: {F}s",
    "Code size: {I} bytes",
    "Total submission size quantized+brotli: {I} bytes",
    "val_tokens: {I}",
    "seed:{I}",
    "world_size:{I} grad_accum_steps:1",
    "  max_wallclock_seconds: {W}",
    "  seed: {W}",
    "  world_size: {W}",
    "  val_doc_fraction: {W}",
    "gptq:reserving {F}s from training budget, effective={I}ms",
    "artifact_production_wallclock: {F}s (must be < 600)",
]


@st.composite
def log_numbers(draw) -> bytes:
    base = modern_log(42, 1.0814).splitlines()
    digits = st.sampled_from([19, 40, 309, 320, 400, 1000, 4000, 4090, 4200])
    for _ in range(draw(st.integers(1, 4))):
        tpl = draw(st.sampled_from(LOG_NUMBER_LINES))
        line = (tpl.replace("{F}", "9" * draw(digits) + ".5").replace("{I}", "9" * draw(digits))
                .replace("{W}", draw(st.sampled_from(["1e999", "-1e999", "nan", "inf", "9" * 5000, "1e308",
                                                     "9" * 400 + ".0", "0x10"]))))
        base.insert(draw(st.integers(0, len(base))), line)
    return "\n".join(base).encode() + b"\n"


CODECS = ["bogus", "zlib_codec", "zlib", "rot13", "rot_13", "idna", "punycode", "utf-16", "utf-32-be", "hex_codec",
          "base64_codec", "bz2_codec", "uu_codec", "quopri_codec", "utf_8_sig", "unicode_escape",
          "raw_unicode_escape", "utf-7", "", "mbcs", "undefined", "cp037", "latin-1", "ascii"]


def _lit(b: bytes) -> str:
    return repr(b)


@st.composite
def codec_stub(draw) -> bytes:
    codec = draw(st.sampled_from(CODECS + [None]))
    arg = repr(codec) if codec is not None else draw(st.sampled_from(["123", "None", "b'utf-8'", "[1]", "{}"]))
    how = draw(st.sampled_from(["decode", "encode", "codecs.decode", "codecs.encode"]))
    payload = draw(st.sampled_from([b"print(1)", b"\xff\xfe\x00p", b"eJzLSM3JyQcABiwCFQ==", b"", b"xn--bcher-kva",
                                    b"\\u0070rint(1)", b"+AGEAYgBj-"]))
    if how == "decode":
        return f"exec({_lit(payload)}.decode({arg}))\n".encode()
    if how == "encode":
        return f"exec({payload.decode('latin-1')!r}.encode({arg}).decode())\n".encode()
    return f"import codecs\nexec({how}({_lit(payload)}, {arg}))\n".encode()


def _compress(fmt: str, data: bytes) -> bytes:
    if fmt == "xz":
        return lzma.compress(data)
    if fmt == "raw":
        return lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    if fmt == "alone":
        return lzma.compress(data, format=lzma.FORMAT_ALONE)
    if fmt == "zlib":
        return zlib.compress(data)
    if fmt == "gzip":
        return gzip.compress(data, mtime=0)
    if fmt == "bz2":
        return bz2.compress(data)
    raise ValueError(fmt)


CALLS = {
    "xz": "lzma.decompress({p})",
    "raw": "lzma.decompress({p}, format=lzma.FORMAT_RAW, filters=[{'id': lzma.FILTER_LZMA2}])",
    "alone": "lzma.decompress({p})",
    "zlib": "zlib.decompress({p})",
    "gzip": "gzip.decompress({p})",
    "bz2": "bz2.decompress({p})",
}
ENCODINGS = {"b85": ("base64.b85decode", base64.b85encode), "b64": ("base64.b64decode", base64.b64encode),
             "a85": ("base64.a85decode", base64.a85encode), "b32": ("base64.b32decode", base64.b32encode)}
_BOMBS: dict[tuple[str, int], bytes] = {}


def _bomb(fmt: str, size: int) -> bytes:
    key = (fmt, size)
    if key not in _BOMBS:
        if fmt in ("xz", "raw", "alone"):
            f = {"xz": lzma.FORMAT_XZ, "raw": lzma.FORMAT_RAW, "alone": lzma.FORMAT_ALONE}[fmt]
            comp = (lzma.LZMACompressor(format=f, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}]) if fmt == "raw"
                    else lzma.LZMACompressor(format=f, preset=1))
        elif fmt == "zlib":
            comp = zlib.compressobj(9)
        elif fmt == "gzip":
            comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        else:
            comp = bz2.BZ2Compressor(9)
        chunk = b"\x00" * (1 << 20)
        parts = [comp.compress(chunk) for _ in range(size >> 20)]
        parts.append(comp.flush())
        _BOMBS[key] = b"".join(parts)
    return _BOMBS[key]


@st.composite
def compressor_stub(draw) -> bytes:
    """A stub whose decompression fails, is a bomb, or is two streams."""
    fmt = draw(st.sampled_from(sorted(CALLS)))
    enc = draw(st.sampled_from(sorted(ENCODINGS)))
    good = _compress(fmt, SCRIPT.encode())
    mode = draw(st.sampled_from(["ok", "truncated", "concat", "concat-garbage", "corrupt", "empty", "bomb", "bomb",
                                 "bad-filter", "bad-wbits", "nul-tail", "bomb-concat"]))
    call = CALLS[fmt]
    if mode == "truncated":
        data = good[: draw(st.integers(0, max(0, len(good) - 1)))]
    elif mode == "concat":
        data = good + _compress(fmt, b"print('second stream')\n")
    elif mode == "concat-garbage":
        data = good + draw(st.binary(min_size=1, max_size=40))
    elif mode == "corrupt":
        pos = draw(st.integers(0, len(good) - 1))
        data = good[:pos] + bytes([good[pos] ^ 0xFF]) + good[pos + 1:]
    elif mode == "empty":
        data = b""
    elif mode in ("bomb", "bomb-concat"):
        size = draw(st.sampled_from([9, 64] + ([512] if fmt in ("xz", "raw", "zlib", "gzip") else []))) << 20
        data = _bomb(fmt, size)
        if mode == "bomb-concat":
            data = good + data
    elif mode == "bad-filter":
        data = good
        call = "lzma.decompress({p}, format=lzma.FORMAT_RAW, filters=" + draw(st.sampled_from([
            "[{'id': lzma.FILTER_DELTA}]", "[{'id': lzma.FILTER_X86}]", "[{'id': lzma.FILTER_LZMA1, 'dict_size': 2**40}]",
            "[{[1]: 2}]", "[1]", "[{'id': 'nope'}]", "[{'id': lzma.FILTER_LZMA2, 'dict_size': -1}]",
            "[{'id': lzma.FILTER_LZMA2, 'lc': 9, 'lp': 9}]", "[{'id': lzma.FILTER_LZMA2}] * 5"])) + ")"
    elif mode == "bad-wbits":
        data = _compress("zlib", SCRIPT.encode())
        call = "zlib.decompress({p}, " + draw(st.sampled_from(["-16", "99", "2**70", "'x'", "-9", "None"])) + ")"
    elif mode == "nul-tail":
        data = good + b"\x00" * draw(st.integers(1, 64))
    else:
        data = good
    fn, encode = ENCODINGS[enc]
    payload = encode(data).decode()
    expr = call.replace("{p}", f"{fn}({payload!r})")
    if draw(st.booleans()):
        expr = f"codecs.decode({expr}, 'utf-8')" if draw(st.booleans()) else f"{expr}.decode()"
    return f"import lzma, zlib, gzip, bz2, base64, codecs\nexec({expr})\n".encode()


@st.composite
def value_bomb_stub(draw) -> bytes:
    """Module constants whose evaluation would build gigabytes (string concatenation chains)."""
    width = draw(st.sampled_from([2, 8, 16]))
    start = draw(st.sampled_from([1_000, 100_000, 1_000_000]))
    levels = draw(st.integers(1, 4))
    lines = [f"A0 = '{'A' * start}'"]
    for i in range(1, levels + 1):
        lines.append(f"A{i} = " + "+".join([f"A{i - 1}"] * width))
    tail = draw(st.sampled_from(["exec(A{n})", "exec(A{n} + A{n})", "exec(A{n}.encode().decode())",
                                 "exec(bytes.fromhex(A{n}))"]))
    lines.append(tail.format(n=levels))
    return ("\n".join(lines) + "\n").encode()


ENV_BOMBS = [
    "'a' * 1500000000", "'a' * 10**9", "b'x' * 2**40", "(1,) * 10**10", "'ab' * N", "N * N * N * N",
    "str(T)", "T + T + T", "int('9' * 5000)", "float(10 ** 400)", "float(BIG)", "BIG * BIG * BIG",
    "-BIG", "BIG // 0", "max(F, F, F, F)", "'x' * -1", "[1] * 10**12",
]


@st.composite
def env_bomb_script(draw) -> bytes:
    expr = draw(st.sampled_from(ENV_BOMBS))
    fan = ", ".join(["E"] * 50)
    prelude = (f"N = 10**6\nT = ('{'y' * 1000}',) * 1\nBIG = {'9' * 4000}\n"
               f"E = 1\nF = max({fan})\n" + "".join(f"F{i} = max({', '.join([f'F{i - 1}' if i else 'F'] * 50)})\n"
                                                    for i in range(draw(st.integers(0, 6)))))
    cond = draw(st.sampled_from(["X == 'a'", "Hyperparameters.x", "len(X) > 3"]))
    return (f"import os\n{prelude}\nclass Hyperparameters:\n    x = os.environ.get('X', {expr})\n\n"
            f"X = os.environ.get('Y', {expr})\n\ndef main():\n    if {cond}:\n        print(1)\n\n"
            f"if __name__ == '__main__':\n    main()\n").encode()


@st.composite
def parse_bomb(draw) -> bytes:
    n = draw(st.sampled_from([10_000, 300_000, 1_000_000, 5_000_000]))
    kind = draw(st.sampled_from(["binop", "tuple", "list-str", "calls", "parens", "statements", "unary",
                                 "strings-concat", "dict", "long-name", "train-string"]))
    exec_it = draw(st.booleans())
    body = {
        "binop": b"x = " + b"1+" * n + b"1",
        "tuple": b"x = (" + b"1," * n + b")",
        "list-str": b"x = [" + b"'a'," * (n // 2) + b"]",
        "calls": b"x = f" + b"()" * min(n, 200_000),
        "parens": b"x = " + b"(" * min(n, 100_000) + b"1" + b")" * min(n, 100_000),
        "statements": b"x=1\n" * (n // 2),
        "unary": b"x = " + b"-" * min(n, 200_000) + b"1",
        "strings-concat": b"x = " + b"'a' " * (n // 2),
        "dict": b"x = {" + b"1:1," * (n // 2) + b"}",
        "long-name": b"loss" * min(n // 4, 250_000) + b"_sum = 1\ndef f(val_tokens):\n    x = 0\n    for t in val_tokens:\n"
                     b"        " + b"loss" * min(n // 4, 250_000) + b"_sum += t\n",
        "train-string": b"x = '" + b"_train" * min(n // 6, 160_000) + b"'",
    }[kind]
    return body + (b"\nexec(x)\n" if exec_it else b"\n")


@st.composite
def c_helper(draw) -> bytes:
    mode = draw(st.sampled_from(["long-line", "long-comment", "many-tainted", "open-comment", "long-word"]))
    n = draw(st.sampled_from([10_000, 500_000, 2_000_000, 8_000_000]))
    if mode == "long-line":
        return b"int f(int* tokens, int* hint){ int x = 1; " + b"x = x + 1; " * (n // 11) + b"}\n"
    if mode == "long-comment":
        return b"/* " + b"a" * n + b" */\nint x;\n" + b"// " + b"/*" * (n // 4) + b"\n"
    if mode == "many-tainted":
        lines = [b"void f(int* tokens, float* hint, int n) {", b"  for (int i = 0; i < n; i++) {"]
        lines += [b"    int t%d = tokens[i];" % k for k in range(min(n // 20, 200_000))]
        lines += [b"    if (t0 > 3) hint[i] = 1.0f;", b"  }", b"}"]
        return b"\n".join(lines) + b"\n"
    if mode == "open-comment":
        return b"int a; /*" + b" x" * (n // 2) + b"\n"
    return b"int " + b"a" * n + b";\n"


@st.composite
def junk_bytes(draw) -> bytes:
    mode = draw(st.sampled_from(["invalid-utf8", "nul", "bom", "crlf", "surrogates", "long-line", "binary"]))
    base = draw(st.sampled_from([SCRIPT.encode(), modern_log(42, 1.0814).encode(), json.dumps(valid_meta()).encode()]))
    if mode == "invalid-utf8":
        pos = draw(st.integers(0, len(base)))
        return base[:pos] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])) + base[pos:]
    if mode == "nul":
        return base.replace(b"\n", b"\x00\n", draw(st.integers(1, 20)))
    if mode == "bom":
        return b"\xef\xbb\xbf" + base
    if mode == "crlf":
        return base.replace(b"\n", b"\r")
    if mode == "surrogates":
        return base + b'"\\ud800"' + b"\xed\xb2\x80"
    if mode == "long-line":
        return base + b"x" * draw(st.sampled_from([100_000, 3_000_000]))
    return draw(st.binary(max_size=500))


ODD_NAMES = ["train_gpt.py\n", "tr\u202eain.py", "seed\x01.log", "..log", " .json", "submission_\u00e9.json",
             "a" * 250 + ".log", "-rf.py", "$(id).log", "train_seed42.log.py", "logs/\u2066x.txt", "README.MD",
             "submission.JSON", "x\\y.py", "\ufeffsubmission.json"]


@st.composite
def filesystem_piece(draw) -> list:
    mode = draw(st.sampled_from(["symlink-out", "symlink-in", "symlink-loop", "symlink-dangling", "fifo",
                                 "hardlink", "sparse", "deep-folders", "many-files", "odd-names", "dir-as-file",
                                 "total-budget"]))
    if mode == "symlink-out":
        return [(draw(st.sampled_from(["train_gpt.py", "train_seed42.log", "submission.json", "README.md"])),
                 Special("symlink", "/etc/passwd"))]
    if mode == "symlink-in":
        return [("helper.py", Special("symlink", "train_gpt.py"))]
    if mode == "symlink-loop":
        return [("loop.py", Special("symlink", "loop.py")), ("d/x", Special("symlink", ".."))]
    if mode == "symlink-dangling":
        return [("train_seed1337.log", Special("symlink", "nowhere.log"))]
    if mode == "fifo":
        return [(draw(st.sampled_from(["train_seed42.log", "helper.py", "submission.json", "README.md"])),
                 Special("fifo"))]
    if mode == "hardlink":
        return [("train_seed7.log", Special("hardlink"))]
    if mode == "sparse":
        return [(draw(st.sampled_from(["train_seed42.log", "train_gpt.py", "helper.c", "submission.json"])),
                 Special("sparse", size=draw(st.sampled_from([17 << 20, 2 << 30]))))]
    if mode == "deep-folders":
        return [("/".join(["d"] * draw(st.sampled_from([9, 30, 100]))) + "/train.log", b"val_bpb:1\n")]
    if mode == "many-files":
        return [(f"logs/run{i}.txt", b"seed:%d\n" % i) for i in range(draw(st.sampled_from([100, 5_100])))]
    if mode == "odd-names":
        return [(draw(st.sampled_from(ODD_NAMES)), draw(junk_bytes())) for _ in range(draw(st.integers(1, 3)))]
    if mode == "dir-as-file":
        return [("submission.json/x", b"{}"), ("train_gpt.py/y", b"")]
    # total-budget: several files each under the per-file limit that together pass the folder budget
    block = b"step:1/2 x\n" * (1 << 20)  # ~11 MB
    return [(f"train_seed{i}.log", block) for i in range(draw(st.integers(2, 6)))]


HOSTILE_CLASSES = {
    "json-numbers": lambda: json_numbers().map(lambda b: [("submission.json", b)]),
    "log-numbers": lambda: log_numbers().map(lambda b: [("train_seed42.log", b)]),
    "codec-stub": lambda: codec_stub().map(lambda b: [("train_gpt.py", b)]),
    "compressor-stub": lambda: compressor_stub().map(lambda b: [("train_gpt.py", b)]),
    "value-bomb-stub": lambda: value_bomb_stub().map(lambda b: [("train_gpt.py", b)]),
    "env-bomb": lambda: env_bomb_script().map(lambda b: [("train_gpt.py", b)]),
    "parse-bomb": lambda: st.tuples(parse_bomb(), st.sampled_from(["train_gpt.py", "helper.py"])).map(
        lambda t: [(t[1], t[0])]),
    "c-helper": lambda: c_helper().map(lambda b: [("kernel.cu", b)]),
    "junk-bytes": lambda: st.tuples(junk_bytes(), st.sampled_from(["train_gpt.py", "train_seed42.log",
                                                                    "submission.json", "README.md"])).map(
        lambda t: [(t[1], t[0])]),
    "filesystem": lambda: filesystem_piece(),
}


@st.composite
def hostile_folder(draw, classes: tuple[str, ...] = tuple(HOSTILE_CLASSES)) -> tuple[list[str], list]:
    """(classes used, spec): the valid record with one to three hostile pieces."""
    spec = Spec(valid_spec())
    used = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(classes)))
        used.append(name)
        spec.extend(draw(HOSTILE_CLASSES[name]()))
    return used, spec


# --------------------------------------------------------------------------------------------------
# the fork server

_SERVER = r'''
import json, os, resource, signal, sys, time
sys.argv = ["auditor"]
import auditor.cli
from auditor.engine import audit_folder  # noqa: F401  (imports every rule before forking)
import reports.render  # noqa: F401
limit_as = int(os.environ.get("HOSTILE_AS_LIMIT", str(4 << 30)))
# one audit before forking, so every lazily imported module (log parser, analyses, rules) is loaded
# once here and every case runs the same code
import tempfile, contextlib, io
with tempfile.TemporaryDirectory() as warm:
    for name, text in (("README.md", "# x\n"), ("train_gpt.py", "import os\nexec(b'x=1'.decode())\n"),
                       ("train_seed42.log", "seed:42\nquantized val_loss:1.0 val_bpb:1.0 eval_time:1ms\n"),
                       ("k.c", "int f(){return 0;}\n"), ("submission.json", '{"val_bpb": 1.0}')):
        open(os.path.join(warm, name), "w").write(text)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        auditor.cli.main(["run", warm, "--format", "json"])
# this process's own high-water mark (VmHWM; ru_maxrss would include the peak of whatever exec'd it)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
base_kb = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_mb": base_kb / 1024}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    sys.stdout.flush(); sys.stderr.flush()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))
            out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, 1); os.dup2(err, 2)
            sys.stdout = open(1, "w", closefd=False); sys.stderr = open(2, "w", closefd=False)
            code = auditor.cli.main(req["argv"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:
            import traceback; traceback.print_exc(); code = 70
        try:
            sys.stdout.flush(); sys.stderr.flush()
        finally:
            os._exit(code)
    killed = False
    while True:
        wpid, status, ru = os.wait4(pid, os.WNOHANG)
        if wpid:
            break
        if not killed and time.perf_counter() - t0 > req["hang_s"]:
            os.kill(pid, signal.SIGKILL); killed = True
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"code": code, "killed": killed, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
                      "rss_mb": ru.ru_maxrss / 1024}), flush=True)
'''


@dataclass
class Outcome:
    code: int
    killed: bool
    wall: float
    cpu: float
    rss_mb: float
    stdout: str = ""
    stderr: str = ""
    verdict: str | None = None
    problems: list[str] = field(default_factory=list)


class ForkServer:
    def __init__(self, root: Path = ROOT) -> None:
        env = dict(os.environ, PYTHONPATH=str(root))
        env.pop("AUDITOR_DEBUG", None)
        self.tmp = tempfile.TemporaryDirectory(prefix="hostile-io-")
        self.proc = subprocess.Popen([sys.executable, "-P", "-c", _SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=self.tmp.name)
        # the imported interpreter every case inherits; added to each case's own peak, so the figure
        # bounds what a fresh `auditor run` process would reach
        self.base_mb = json.loads(self.proc.stdout.readline())["base_mb"]

    def run(self, argv: list[str], hang_s: float = HANG_S) -> Outcome:
        out, err = os.path.join(self.tmp.name, "out"), os.path.join(self.tmp.name, "err")
        self.proc.stdin.write(json.dumps({"argv": argv, "stdout": out, "stderr": err, "hang_s": hang_s}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        reply["rss_mb"] += self.base_mb
        res = Outcome(**reply)
        res.stdout = Path(out).read_bytes().decode("utf-8", "replace") if os.path.exists(out) else ""
        res.stderr = Path(err).read_bytes().decode("utf-8", "replace") if os.path.exists(err) else ""
        res.problems = judge(res)
        return res

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.tmp.cleanup()


def judge(res: Outcome) -> list[str]:
    """What is wrong with one folder's outcome (empty: a clean verdict within the bounds)."""
    problems = []
    if res.killed:
        problems.append(f"hang: killed after {res.wall:.1f} s wall")
    if "Traceback" in res.stderr:
        problems.append("traceback")
    if res.code == 2:
        problems.append("exit 2: " + (res.stderr.strip().splitlines() or ["?"])[-1][:200])
    elif res.code in (0, 1, 3):
        try:
            doc = json.loads(res.stdout)
            res.verdict = doc["verdict"]
            if res.verdict != {0: "PASS", 1: "FAIL", 3: "NEEDS_REVIEW"}[res.code]:
                problems.append(f"exit {res.code} but verdict {res.verdict}")
        except (ValueError, KeyError):
            problems.append("output is not the JSON review")
    elif not res.killed:
        problems.append(f"exit {res.code}")
    if res.cpu > CPU_BOUND_S:
        problems.append(f"{res.cpu:.1f} s CPU (bound {CPU_BOUND_S})")
    if res.rss_mb > RSS_BOUND_MB:
        problems.append(f"{res.rss_mb:.0f} MB peak RSS (bound {RSS_BOUND_MB})")
    return problems


# --------------------------------------------------------------------------------------------------
# reporting

def table(rows: list[dict]) -> str:
    """The long run's report: cases, exit codes, problems, max CPU/wall/RSS, per class."""
    from collections import Counter

    def line(name: str, rs: list[dict]) -> str:
        codes = Counter(str(r["code"]) for r in rs)
        bad = sum(1 for r in rs if r["problems"])
        internal = sum(1 for r in rs if any("internal error" in p for p in r["problems"]))
        tb = sum(1 for r in rs if "traceback" in r["problems"])
        over = sum(1 for r in rs if r["wall"] > CPU_BOUND_S)
        return (f"| {name} | {len(rs):,} | {' '.join(f'{k}:{v}' for k, v in sorted(codes.items()))} | {bad} | "
                f"{internal} | {tb} | {over} | {max((r['cpu'] for r in rs), default=0):.2f} | "
                f"{max((r['wall'] for r in rs), default=0):.2f} | {max((r['rss_mb'] for r in rs), default=0):.0f} |")

    out = ["| class | cases | exit codes | problems | internal errors | tracebacks | runs > 10 s wall | "
           "max CPU s | max wall s | max peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    classes = sorted({c for r in rows for c in r["classes"]})
    for c in classes:
        out.append(line(c, [r for r in rows if c in r["classes"]]))
    out.append(line("**all**", rows))
    return "\n".join(out)


if __name__ == "__main__":  # python tests/hostile_kit.py STATS.jsonl: the table of a (partial) long run
    rows = [json.loads(x) for x in Path(sys.argv[1]).read_text().splitlines() if x.strip()]
    rows = [r for r in rows if "harness_error" not in r]
    print(table(rows))
