"""Generators and harness for the adversarial suite: folders mixing valid and broken pieces, and a way
to run the public CLI on them that tells a verdict, a clean tool error and a crash apart.

Why a kit: the auditor reads folders written by people who may gain from fooling or crashing it, so
the tests describe folders as data (a list of (relative path, bytes) pairs) built by hypothesis
strategies from realistic pieces (recordkit's logs, JSON and script) plus corruptions. A spec can be
written twice in different orders, which the determinism tests rely on.

Long-run mode: AUDITOR_FUZZ_EXAMPLES=N raises hypothesis' max_examples (CI keeps it small and
derandomized). AUDITOR_FUZZ_STATS=FILE appends one JSON line per generated case (seconds, input bytes,
outcome) so a long run can report case count and the slowest case.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import lzma
import os
import signal
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from recordkit import SCRIPT, modern_log

# --------------------------------------------------------------------------------------------------
# settings

DEFAULT_EXAMPLES = 60
FUZZ_EXAMPLES = int(os.environ.get("AUDITOR_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
LONG_MODE = "AUDITOR_FUZZ_EXAMPLES" in os.environ and FUZZ_EXAMPLES > DEFAULT_EXAMPLES


def fuzz_settings(scale: float = 1.0) -> settings:
    """CI: small and derandomized (same cases every run). Long mode: many random cases."""
    return settings(
        max_examples=max(5, int(FUZZ_EXAMPLES * scale)),
        deadline=None,
        derandomize=not LONG_MODE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
        print_blob=True,
        # no "explain" phase: it replays the failure under a line tracer, 10-50x slower, which turns
        # a slow case into a spurious hang report
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )


def time_bound(input_bytes: int) -> float:
    """Generous CPU-time bound for one audit: 5 s + 1 s per MB of input. CPU, not wall clock: the
    machines that run this suite are shared, and a loaded box is not a slow auditor."""
    return 5.0 + input_bytes / 1_000_000


# --------------------------------------------------------------------------------------------------
# running the CLI

@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    seconds: float  # wall clock
    cpu: float = 0.0  # process CPU time: what the bounds use (CI machines and this one are shared)


class Hang(Exception):
    """Raised from the alarm handler: the case ran past its bound."""


@contextlib.contextmanager
def alarm(seconds: float, wall_factor: float = 10.0):
    """Best-effort hang guard for in-process runs (interrupts Python code, not a blocked C call):
    `seconds` of process CPU time, or `wall_factor` times that of wall clock (a blocked read uses
    no CPU)."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def handler(signum, frame):
        raise Hang(f"ran past {seconds:.1f} s of CPU" if signum == signal.SIGPROF else
                   f"ran past {seconds * wall_factor:.1f} s of wall clock")

    old_prof = signal.signal(signal.SIGPROF, handler)
    old_alrm = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds * wall_factor)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGPROF, old_prof)
        signal.signal(signal.SIGALRM, old_alrm)


def run_main(argv: list[str], hang_after: float = 0.0) -> CliResult:
    """`auditor.cli.main(argv)` in-process with stdout/stderr captured. A Python exception escaping
    main() is a crash and propagates (the test fails with its traceback); SystemExit is a usage error."""
    from auditor.cli import main

    out, err = io.StringIO(), io.StringIO()
    t0, c0 = time.perf_counter(), time.process_time()
    debug = os.environ.get("AUDITOR_DEBUG")
    os.environ["AUDITOR_DEBUG"] = "1"  # a crash propagates with its traceback instead of the exit-2 net
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), alarm(hang_after):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        if debug is None:
            os.environ.pop("AUDITOR_DEBUG", None)
        else:
            os.environ["AUDITOR_DEBUG"] = debug
    return CliResult(code, out.getvalue(), err.getvalue(), time.perf_counter() - t0, time.process_time() - c0)


def assert_clean_outcome(res: CliResult, fmt: str = "md") -> str | None:
    """The property every run must have: a verdict (exit 0/1/3, matching the report) or a clean
    one-line error with exit code 2. Returns the verdict (None for a tool error)."""
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    # in-process capture accepts any str; a real stdout must take it as UTF-8 (no lone surrogates)
    res.stdout.encode("utf-8")
    res.stderr.encode("utf-8")
    if res.code == 2:
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("auditor: error: "), res.stderr[-2000:]
        assert "internal error" not in lines[0], lines[0]  # the safety net caught a bug
        assert res.stdout == ""
        return None
    assert res.code in (0, 1, 3), (res.code, res.stderr[-2000:])
    expected = {0: "PASS", 1: "FAIL", 3: "NEEDS_REVIEW"}[res.code]
    if fmt == "json":
        doc = json.loads(res.stdout)
        assert doc["verdict"] == expected
    else:
        verdict_lines = [ln for ln in res.stdout.splitlines() if ln.startswith("**Verdict")]
        assert len(verdict_lines) == 1, verdict_lines
        assert verdict_lines[0].startswith("**Verdict: ") and expected in verdict_lines[0]
    return expected


def assert_tables_intact(markdown: str) -> int:
    """Every Markdown table keeps its header's column count on every row (GitHub would otherwise
    shift or split cells). Returns the number of table rows checked."""
    rows = 0
    block: list[str] = []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            width = block[0].count("|") - block[0].count("\\|")
            for row in block:
                assert row.count("|") - row.count("\\|") == width, (block[0], row)
                assert row.endswith("|"), row
            rows += len(block)
            block = []
    return rows


def record_stats(kind: str, res: CliResult, input_bytes: int, note: str = "") -> None:
    path = os.environ.get("AUDITOR_FUZZ_STATS")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"kind": kind, "seconds": round(res.seconds, 4), "cpu": round(res.cpu, 4),
                             "bytes": input_bytes,
                             "code": res.code, "note": note[:300]}) + "\n")


# --------------------------------------------------------------------------------------------------
# folder specs

class Spec(list):
    """list[tuple[str, bytes]]: relative POSIX path -> content; later entries win. The repr is a
    summary because hypothesis prints failing examples and these can hold megabytes."""

    def __repr__(self) -> str:
        return f"Spec<{describe(self)}>"


class Blob(bytes):
    """File content with a short repr (for hypothesis' failure reports)."""

    def __repr__(self) -> str:
        return f"Blob<{len(self)}B: {bytes(self[:80])!r}{'...' if len(self) > 80 else ''}>"


def write_spec(root: Path, spec: Spec, order: list[int] | None = None) -> Path:
    """Write the files of `spec` under root (creating parents) in the given index order."""
    root.mkdir(parents=True, exist_ok=True)
    idx = range(len(spec)) if order is None else order
    final = dict(spec)
    # a generated name can be both a file ("a") and a folder ("a/b/c/a"): the folder wins
    dirs = {"/".join(rel.split("/")[:i]) for rel in final for i in range(1, rel.count("/") + 1)}
    written = set()
    for i in idx:
        rel, _ = spec[i]
        if rel in dirs or rel in written:
            continue
        written.add(rel)
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(final[rel])
    return root


def spec_bytes(spec: Spec) -> int:
    return sum(len(v) for v in dict(spec).values())  # an upper bound when write_spec drops a clash


def describe(spec) -> str:
    return ", ".join(f"{k!r}({len(v)}B: {v[:60]!r}{'...' if len(v) > 60 else ''})" for k, v in dict(spec).items())


# --------------------------------------------------------------------------------------------------
# pieces

def valid_meta(seeds=(42, 1337, 2025), bpb=1.0814) -> dict:
    return {"author": "Test Author", "github_id": "tester", "name": "Test record",
            "blurb": "synthetic", "date": "2026-05-01", "track": "10min_16mb", "val_bpb": bpb,
            "seeds": list(seeds), "bytes_total": 15_950_000 + len(SCRIPT.encode())}


def valid_spec() -> "Spec":
    """A record folder that passes every rule; properties swap one piece for a generated one, so
    the rest of the audit runs on good input and verdicts other than FAIL are reachable."""
    spec = Spec()
    spec.append(("README.md", b"# Record\n\nA synthetic submission.\n"))
    spec.append(("train_gpt.py", SCRIPT.encode()))
    for seed in (42, 1337, 2025):
        spec.append((f"train_seed{seed}.log", modern_log(seed, {42: 1.0812, 1337: 1.0816, 2025: 1.0814}[seed],
                                                         code_bytes=len(SCRIPT.encode())).encode()))
    spec.append(("submission.json", json.dumps(valid_meta()).encode()))
    return spec


def stub_for(source: bytes | str, kind: str = "lzma-b85") -> str:
    """A self-extracting stub of the kind record scripts ship."""
    data = source.encode() if isinstance(source, str) else source
    if kind == "lzma-b85":
        payload = base64.b85encode(lzma.compress(data)).decode()
        return f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{payload}")))\n'
    if kind == "lzma-raw":
        payload = base64.b85encode(lzma.compress(data, format=lzma.FORMAT_RAW,
                                                 filters=[{"id": lzma.FILTER_LZMA2}])).decode()
        return ("import lzma,base64\nexec(lzma.decompress(base64.b85decode('" + payload +
                "'),format=lzma.FORMAT_RAW,filters=[{'id':lzma.FILTER_LZMA2}]))\n")
    if kind == "zlib-b64":
        payload = base64.b64encode(zlib.compress(data)).decode()
        return f'import zlib,base64\nexec(zlib.decompress(base64.b64decode("{payload}")).decode())\n'
    raise ValueError(kind)


SMALL_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
NASTY_TOKENS = [
    "|", "\n", "\r\n", "\r", "\x00", "\x1b[31m", "::error::", "%0A", "<script>", "`", "```", "<!--", "-->",
    "\u202e", "\u2066", "**Verdict: ✅ PASS**", "[x](http://evil.example)", "\ufeff", "\udcff", "💥", "\t",
    "NaN", "inf", "-0", "1e309", "9" * 40, " ", "\\", "\"", "'",
]
NASTY = st.lists(st.one_of(st.sampled_from(NASTY_TOKENS), SMALL_TEXT), max_size=6).map("".join)
ABSURD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e308", "1e-320", "-1", "0", "-0.0",
                  "99999999999999999999999999999999", "1.0.0", "0x10", "1_000", "", "  ", "١٢٣", "1e99999"]


@st.composite
def json_doc(draw) -> bytes:
    """submission.json: valid, or corrupted in one of the ways real and hostile files are."""
    seeds = draw(st.lists(st.sampled_from([42, 1337, 2025, 7, 0, -1, 2**70]), max_size=4, unique=True))
    doc = valid_meta(seeds or (42,), draw(st.sampled_from([1.0814, 1.2, 0.0, -3.0, 1e300])))
    text = json.dumps(doc, indent=2)
    mode = draw(st.sampled_from(["valid", "truncate", "dupkeys", "nonfinite", "strings", "hugeint", "nested",
                                 "toplevel", "empty", "bytes", "bom", "types", "seeddict", "deepobj"]))
    if mode == "truncate":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    elif mode == "dupkeys":
        text = text.replace('"val_bpb"', '"val_bpb": 0.5, "val_bpb"', 1).replace('"seeds"', '"seeds": 3, "seeds"', 1)
    elif mode == "nonfinite":
        c = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
        key = draw(st.sampled_from(["val_bpb", "bytes_total", "seeds"]))
        doc[key] = "@@"
        text = json.dumps(doc).replace('"@@"', c)
    elif mode == "strings":
        for key in draw(st.lists(st.sampled_from(["val_bpb", "bytes_total", "val_loss", "seeds", "name",
                                                  "author", "date"]), max_size=4)):
            doc[key] = draw(st.one_of(NASTY, st.sampled_from(ABSURD_NUMBERS)))
        text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    elif mode == "hugeint":
        doc["bytes_total"] = "@@"
        text = json.dumps(doc).replace('"@@"', "9" * draw(st.sampled_from([20, 400, 4000, 5000])))
    elif mode == "nested":
        depth = draw(st.sampled_from([10, 1000, 100_000]))
        text = "[" * depth + "]" * draw(st.sampled_from([0, depth]))
    elif mode == "deepobj":
        depth = draw(st.sampled_from([50, 3000]))
        doc["seed_results"] = "@@"
        text = json.dumps(doc).replace('"@@"', '{"42":' * depth + "1" + "}" * depth)
    elif mode == "toplevel":
        text = draw(st.sampled_from(["[]", "null", "1", '"x"', "true", "[1,2]", "1e999"]))
    elif mode == "empty":
        text = ""
    elif mode == "bytes":
        return draw(st.binary(max_size=200))
    elif mode == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    elif mode == "types":
        doc["seed_results"] = {"42": {"val_bpb": "x"}, "abc": 3, "1337": [1], "2025": {"val_bpb": float("1e308")}}
        doc["seeds"] = {"a": 1}
        text = json.dumps(doc)
    elif mode == "seeddict":
        doc["seeds"] = {str(s): {"val_bpb": 1.08, "artifact_bytes": "15000000"} for s in seeds}
        del doc["val_bpb"]
        text = json.dumps(doc)
    return text.encode("utf-8", errors="surrogatepass")


LINE_OPS = ["keep", "crlf", "nul", "bytes", "longline", "absurd", "dup", "drop", "nasty", "tsprefix", "rank"]


@st.composite
def log_doc(draw, seed: int = 42) -> bytes:
    """A per-seed log: the recordkit log with some lines mutated, plus optional junk."""
    lines = modern_log(seed, 1.0814).splitlines()
    out: list[bytes] = []
    n_mut = draw(st.integers(0, 4))
    mutate = set(draw(st.lists(st.integers(0, len(lines) - 1), max_size=n_mut)))
    for i, line in enumerate(lines):
        if i not in mutate:
            out.append(line.encode())
            continue
        op = draw(st.sampled_from(LINE_OPS))
        b = line.encode()
        if op == "crlf":
            out.append(b + b"\r")
        elif op == "nul":
            pos = draw(st.integers(0, len(b)))
            out.append(b[:pos] + b"\x00" + b[pos:])
        elif op == "bytes":
            out.append(draw(st.binary(max_size=80)))
        elif op == "longline":
            out.append(b + draw(st.sampled_from([b"9", b" ", b"val_bpb:", b"a:"])) * draw(
                st.sampled_from([5_000, 200_000, 1_000_000])))
        elif op == "absurd":
            # replace every number in the line by an absurd one
            import re
            val = draw(st.sampled_from(ABSURD_NUMBERS)).encode()
            out.append(re.sub(rb"[0-9]+(\.[0-9]+)?", lambda m: val, b))
        elif op == "dup":
            out.extend([b] * draw(st.integers(2, 50)))
        elif op == "drop":
            continue
        elif op == "nasty":
            out.append(b + draw(NASTY).encode("utf-8", errors="surrogatepass"))
        elif op == "tsprefix":
            out.append(b"1776142348.135 " + b)
        elif op == "rank":
            out.append(b"[rank3]: " + b)
        else:
            out.append(b)
    tail = draw(st.sampled_from(["none", "none", "many", "random", "scoreflood"]))
    if tail == "many":
        # many lines: sized so CI stays fast; long mode sometimes writes a million
        n = draw(st.sampled_from([10_000, 100_000] + ([1_000_000] if LONG_MODE else [])))
        out.append(b"x\n" * n)
    elif tail == "random":
        out.append(draw(st.binary(max_size=2000)))
    elif tail == "scoreflood":
        out.append(b"\n".join(b"quantized_sliding_window val_loss:%d val_bpb:%d eval_time:%dms" % (i, i, i)
                              for i in range(draw(st.sampled_from([10, 5000])))))
    sep = draw(st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"]))
    return sep.join(out) + sep


CODE_KINDS = ["script", "stub", "stub-raw", "stub-zlib", "nested", "bad-b85", "bad-lzma", "syntax", "py2",
              "py312", "deep-parens", "deep-binop", "nul", "exec-sibling", "huge-literal", "binary", "empty",
              "self-exec", "bomb"]


@st.composite
def code_doc(draw) -> bytes:
    kind = draw(st.sampled_from(CODE_KINDS))
    if kind == "script":
        return SCRIPT.encode()
    if kind == "stub":
        return stub_for(SCRIPT).encode()
    if kind == "stub-raw":
        return stub_for(SCRIPT, "lzma-raw").encode()
    if kind == "stub-zlib":
        return stub_for(SCRIPT, "zlib-b64").encode()
    if kind == "nested":
        text = SCRIPT
        for _ in range(draw(st.integers(2, 7))):
            text = stub_for(text, draw(st.sampled_from(["lzma-b85", "lzma-raw", "zlib-b64"])))
        return text.encode()
    if kind == "bad-b85":
        good = stub_for(SCRIPT)
        return good.replace('b85decode("', 'b85decode("~~~' + draw(st.sampled_from(["", "{", "\\x00"])), 1).encode()
    if kind == "bad-lzma":
        junk = draw(st.binary(max_size=64))
        return (f'import lzma,base64\nexec(lzma.decompress(base64.b85decode("{base64.b85encode(junk).decode()}")))\n'
                ).encode()
    if kind == "syntax":
        text = SCRIPT
        pos = draw(st.integers(0, len(text)))
        return (text[:pos] + draw(st.sampled_from(["(", "def", ":", "'''", "\\", "    x", "€"])) + text[pos:]).encode()
    if kind == "py2":
        return b'print "hello"\nexec "x=1"\nraise E, "v"\n'
    if kind == "py312":
        return b"type Alias = list[int]\ndef f[T](x: T) -> T:\n    return x\nprint(f'{\"a\" \"b\"}')\n"
    if kind == "deep-parens":
        n = draw(st.sampled_from([100, 1000, 100_000]))
        return b"x = " + b"(" * n + b"1" + b")" * n + b"\n"
    if kind == "deep-binop":
        n = draw(st.sampled_from([1000, 100_000]))
        return b"exec(" + b"'a'+" * n + b"'a')\n"
    if kind == "nul":
        return SCRIPT.encode()[:20] + b"\x00" + SCRIPT.encode()[20:]
    if kind == "exec-sibling":
        return b'exec(open(__file__.replace("train_gpt", "train_gpt_real")).read())\n'
    if kind == "huge-literal":
        return b'import zlib,base64\nexec(zlib.decompress(base64.b64decode("' + b"A" * 2_000_000 + b'")))\n'
    if kind == "binary":
        return draw(st.binary(max_size=300))
    if kind == "empty":
        return b""
    if kind == "self-exec":
        return b'exec(open("train_gpt.py").read())\n'
    if kind == "bomb":
        return bomb_stub()
    raise AssertionError(kind)


_BOMB_CACHE: dict[int, bytes] = {}


def bomb_stub(size: int = 64 * 1024 * 1024) -> bytes:
    """A small stub whose payload decompresses to `size` bytes (cached: compressing takes a moment)."""
    if size not in _BOMB_CACHE:
        comp = lzma.LZMACompressor(preset=1)
        chunk = b"#" * (1 << 20)
        parts = [comp.compress(chunk) for _ in range(size // len(chunk))]
        parts.append(comp.flush())
        payload = base64.b85encode(b"".join(parts)).decode()
        _BOMB_CACHE[size] = f'import lzma,base64\nexec(lzma.decompress(base64.b85decode("{payload}")))\n'.encode()
    return _BOMB_CACHE[size]


@st.composite
def readme_doc(draw) -> bytes:
    mode = draw(st.sampled_from(["plain", "plain", "nasty", "binary", "empty"]))
    if mode == "plain":
        return b"# Record\n\nSome text.\n"
    if mode == "nasty":
        return ("# " + draw(NASTY) + "\n\n" + draw(NASTY) + "\n").encode("utf-8", errors="surrogatepass")
    if mode == "binary":
        return draw(st.binary(max_size=200))
    return b""


NAME_PIECES = ["a", "b", "train", "log", "seed", ".log", ".py", ".txt", ".json", "submission", "_", "-", " ",
               "$(touch x)", ";", "|", "`", "\n", "\r", "*", "?", "..", "é", "\u202e", "%0A", "::", "\t", "'", '"']


@st.composite
def junk_name(draw) -> str:
    name = "".join(draw(st.lists(st.sampled_from(NAME_PIECES), min_size=1, max_size=5)))
    name = name.replace("/", "_")
    if name in (".", "..") or not name.strip("."):
        name = "x" + name
    return name


@st.composite
def folder_spec(draw) -> Spec:
    """A record folder mixing valid and broken pieces."""
    spec = Spec()
    if draw(st.integers(0, 9)) > 0:
        spec.append(("submission.json", draw(json_doc())))
    if draw(st.booleans()):
        spec.append((draw(st.sampled_from(["submission_extra.json", "submission_v2.json"])), draw(json_doc())))
    for seed in draw(st.lists(st.sampled_from([42, 1337, 2025, 7]), max_size=3, unique=True)):
        spec.append((f"train_seed{seed}.log", draw(log_doc(seed))))
    if draw(st.integers(0, 4)) > 0:
        spec.append(("train_gpt.py", draw(code_doc())))
    if draw(st.booleans()):
        spec.append(("train_gpt_real.py", draw(code_doc())))
    if draw(st.integers(0, 3)) > 0:
        spec.append(("README.md", draw(readme_doc())))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(["", "sub/", "a/b/c/", "logs/"]))
        spec.append((where + draw(junk_name()), draw(st.one_of(log_doc(), code_doc(), json_doc(), st.binary(max_size=100)))))
    return spec
