"""The hostile inputs of issue 21, one by one: each ends in a verdict whose review names what could
not be analysed, never in exit 2, a hang or gigabytes. Unit level first (fast, exact messages), then
through the CLI in a forked child whose peak RSS is measured (tests/hostile_kit.py)."""

from __future__ import annotations

import json
import re
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adversarial_kit import run_main, valid_meta, valid_spec
from auditor.core import budget
from auditor.load import loader
from auditor.analysis import envdefaults
from auditor.analysis.cscan import _strip_comments, scan_c
from auditor.analysis.vocabulary import mentions_train_bin as _train_bin
from auditor.analysis.index import ProgramIndex
from auditor.load.decode import MAX_BUILT_BYTES, MAX_DECODED_BYTES, DecodeError, decode_stub
from auditor.load.logparse import parse_log
from auditor.load.subjson import parse_submission_json
from hostile_kit import ForkServer, write_hostile

# ------------------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize("raw", ["9" * 309, "-" + "9" * 309, "9" * 4000, "1e400", "-1e400"])
def test_submission_json_number_beyond_a_float_is_a_finding(raw):
    text = json.dumps(valid_meta()).replace('"val_bpb": 1.0814', f'"val_bpb": {raw}')
    meta = parse_submission_json("submission.json", text.encode())
    assert meta.val_bpb is None and meta.parse_error is None
    msgs = [f.message for f in meta.issues]
    assert "val_bpb: number too large (beyond a finite float or a 64-bit integer); it is treated as missing" in msgs


def test_submission_json_huge_integers_are_not_figures():
    doc = valid_meta()
    doc.update(bytes_total="@1", seeds="@2")
    text = json.dumps(doc).replace('"@1"', "9" * 30).replace('"@2"', "[42, " + "9" * 400 + "]")
    meta = parse_submission_json("submission.json", text.encode())
    assert meta.bytes_total is None and meta.seeds == [42]
    where = sorted(f.message.split(":")[0] for f in meta.issues if "number too large" in f.message)
    assert where == ["bytes_total", "seeds/1"]


@pytest.mark.parametrize("line", [
    "500/20000 train_loss: 3.3 train_time: " + "9" * 320 + ".0m tok/s: 7",
    "step:10/20 train_loss:3.3 train_time:" + "9" * 400 + "ms",
    "quantized val_loss:" + "9" * 400 + ".0 val_bpb:" + "9" * 400 + ".5 eval_time:" + "9" * 400 + "ms",
    "total_eval_time: " + "9" * 400 + ".0s",
    "  max_wallclock_seconds: 1e999",
    "  max_wallclock_seconds: nan",
    "  seed: " + "9" * 4000,
])
def test_log_numbers_that_overflow_are_not_read(line):
    runs = parse_log("train_seed42.log", f"Hyperparameters:\n{line}\nseed:42\n")
    for run in runs:
        for key, fig in vars(run).items():
            v = getattr(fig, "value", None)
            assert v is None or (abs(v) < 10 ** 18), (key, v)
        for p in run.phases:
            assert p.val_bpb < 10 ** 18 and p.val_loss < 10 ** 18


def test_log_digits_run_of_19_or_more_does_not_match():
    runs = parse_log("train.log", "seed:1234567890123456789\nval_tokens: 123456789012345678\n")
    assert runs[0].seed is None and runs[0].val_tokens.value == 123456789012345678


# ------------------------------------------------------------------------------------------ stubs

@pytest.mark.parametrize("src, message", [
    ("exec(b'print(1)'.decode('bogus'))\n", "unknown codec 'bogus' in .decode()"),
    ("exec(b'x'.decode('zlib_codec'))\n", "'zlib_codec' is not a text encoding (Python refuses it in .decode())"),
    ("exec('print(1)'.encode('rot13'))\n", "'rot13' is not a text encoding (Python refuses it in .encode())"),
    ("exec(b'print(1)'.decode('idna'))\n", "codec 'idna' in .decode() is not evaluated"),
    ("import lzma\nexec(lzma.decompress(b'xx', format=lzma.FORMAT_RAW, filters=[{'id': lzma.FILTER_DELTA}]))\n",
     "LZMA filter spec rejected (Invalid or unsupported options)"),
    ("import lzma\nexec(lzma.decompress(b'', format=lzma.FORMAT_RAW, filters=[{[1]: 2}]))\n",
     "unhashable dict key in the stub"),
    ("import zlib\nexec(zlib.decompress(b'xx', 1180591620717411303424))\n", "zlib payload is corrupt (Error -3 while decompressing data: "
                                                          "incorrect header check)"),
    ("import codecs\nexec(codecs.decode(b'x', 'bogus'))\n", "codecs.decode with 'bogus' is not supported"),
])
def test_stub_arguments_stdlib_rejects_are_decode_errors(src, message):
    with pytest.raises(DecodeError) as exc:
        decode_stub(src, "train_gpt.py", {})
    assert str(exc.value) == message


def test_text_codec_decodes_like_python():
    decoded = decode_stub("exec(b'\\xff\\xfep\\x00r\\x00i\\x00n\\x00t\\x00(\\x001\\x00)\\x00'.decode('utf-16'))\n",
                          "train_gpt.py", {})
    assert decoded.text == "print(1)"


def test_string_concatenation_is_bounded_before_it_is_built():
    mb = "A" * 1_000_000
    src = f"A='{mb}'\nB=A+A+A+A+A+A\nC=B+B+B+B+B+B+B+B\nD=C+C+C+C+C+C+C+C\nexec(D)\n"
    tracemalloc.start()
    with pytest.raises(DecodeError) as exc:
        decode_stub(src, "train_gpt.py", {})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert str(exc.value) == f"D: C: decompressed payload exceeds the {MAX_DECODED_BYTES:,}-byte bound"
    assert peak < 40 * 1024 * 1024, peak  # the source, A and B; never C (48 MB) or D (384 MB)


def test_all_values_built_for_one_file_are_bounded():
    big = "A" * 2_700_000  # each of B, C, D builds 5.4 + 8.1 MB; D passes the 32 MiB budget
    src = f"A='{big}'\nB=A+A+A\nC=A+A+A\nD=A+A+A\nexec(D)\n"
    with pytest.raises(DecodeError) as exc:
        decode_stub(src, "train_gpt.py", {})
    assert str(exc.value) == f"the stub builds more than {MAX_BUILT_BYTES:,} bytes of values in all"


@pytest.mark.parametrize("body", [b"1+" * 5_000_000 + b"1", b"(" + b"1," * 5_000_000 + b")"])
def test_one_line_expression_is_not_parsed_past_the_token_bound(body):
    src = (b"exec(" + body + b")\n").decode()
    tracemalloc.start()
    t0 = time.process_time()
    with pytest.raises(DecodeError) as exc:
        decode_stub(src, "train_gpt.py", {})
    cpu = time.process_time() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert str(exc.value) == "script too large to analyse"  # 10 MB > budget.PARSE_SOURCE_BYTES
    small = src[: 3 * budget.PARSE_TOKENS] + ")\n"
    with pytest.raises(DecodeError) as exc:
        decode_stub(small, "train_gpt.py", {})
    assert str(exc.value) == f"script has more than {budget.PARSE_TOKENS:,} tokens; over the bound for parsing it"
    assert cpu < 2 and peak < 64 * 1024 * 1024, (cpu, peak)


def test_token_estimate_is_linear_and_never_below_pythons_count():
    import io
    import tokenize

    src = "x = 'a\\'b' + \"\"\"c\n\"d\"\"\" # note\nf(r'\\n', b\"z\")\n"
    real = [t for t in tokenize.generate_tokens(io.StringIO(src).readline)
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)]
    assert budget.count_tokens(src) >= len(real) - 1  # the comment is a token here, not in the parser
    for text in ["'" + "\\'" * 2_000_000, '"""' + "a" * 4_000_000, "'\\\n" * 1_000_000, "_" * 4_000_000]:
        t0 = time.process_time()
        budget.count_tokens(text)
        assert time.process_time() - t0 < 1.0


# ------------------------------------------------------------------------------------------ scanners

def test_c_comment_stripping_is_linear():
    line = "x = x + 1; /* c */ " * 200_000  # 3.8 MB on one line: quadratic took minutes
    t0 = time.process_time()
    out = _strip_comments(line + "\n/* open\n still */ int y; // tail\n")
    assert time.process_time() - t0 < 1.0
    assert out[0] == "x = x + 1;  " * 200_000 and out[1:] == ["", " int y; "]


def test_long_c_lines_are_skipped_and_listed():
    long = "  hint[i] = " + "a + " * 2_000 + "tok;"
    src = "void f(int* tokens, float* hint, int n) {\n  for (int i = 0; i < n; i++) {\n" \
          "    int tok = tokens[i];\n" + long + "\n    if (tok > 3) hint[i] = 1.0f;\n  }\n}\n"
    skipped: list[int] = []
    hits = scan_c(src, skipped=skipped)
    assert skipped == [4] and [(h.kind, h.line) for h in hits] == [("pos_gate", 5)]


def test_c_scan_of_many_tainted_names_stays_linear():
    lines = ["void f(int* tokens, float* hint, int n) {"] + [f"  int t{k} = tokens[i];" for k in range(20_000)]
    t0 = time.process_time()
    scan_c("\n".join(lines) + "\n  if (t19999 > 3) hint[i] = 1.0f;\n}\n")
    assert time.process_time() - t0 < 5.0


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(["train", "_", "*", "/", ".bin", "a", "1", ".", " ", "é", "bin", "tr"]), max_size=12))
def test_train_path_test_agrees_with_the_regex_it_replaces(parts):
    text = "".join(parts)
    assert _train_bin(text) == bool(re.search(r"(^|[/_*])train_?\*?\w*\.bin", text))


def test_train_path_test_is_linear():
    t0 = time.process_time()
    assert not _train_bin("_train" * 200_000)  # the regex took 24 s on a tenth of this
    assert _train_bin("x = '" + "_train" * 100_000 + ".bin'")
    assert time.process_time() - t0 < 1.0


def test_long_identifier_makes_the_file_unanalysed():
    index = ProgramIndex()
    assert index.add("train_gpt.py", "loss" * 1_000 + "_sum = 1\n") is None
    assert index.bounded["train_gpt.py"] == "an identifier of 4,004 characters (line 1); over the bound of 256 " \
                                                 "for names"
    assert index.add("ok.py", "x = '" + "a" * 10_000 + "'\n") is not None  # long strings are fine


# ------------------------------------------------------------------------------------------ env defaults

def _env(src: str) -> tuple[envdefaults.EnvModel, object]:
    import ast

    m = envdefaults.EnvModel()
    m.add_module("train_gpt.py", ast.parse(src), src)
    return m, m.defaults.get("X", (None,))[0]


@pytest.mark.parametrize("expr", ["'a' * 1500000000", "b'x' * 1099511627776", "(1,) * 10000000000",
                                  "N * N * N * N * N", "T + T + T", "T * 3"])
def test_env_default_over_the_value_bound_is_unknown_and_named(expr):
    tracemalloc.start()
    m, value = _env(f"import os\nN = {'9' * 300}\nT = ('y',) * 500000\n"
                    f"class Hyperparameters:\n    x = os.environ.get('X', {expr})\n")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert value is envdefaults.UNKNOWN and peak < 32 * 1024 * 1024
    assert re.fullmatch(r"line \d+: a configuration value would be [\d,]+ (items|bits) long \(bound [\d,]+\); "
                        r"not computed, taken as unknown", m.bounded["train_gpt.py"])


def test_env_default_fan_out_is_bounded_by_steps():
    fan = "\n".join(f"F{i} = max({', '.join([f'F{i - 1}'] * 40)})" for i in range(1, 8))
    t0 = time.process_time()
    m, value = _env(f"import os\nF0 = 1\n{fan}\nclass H:\n    x = os.environ.get('X', F7)\n")
    assert time.process_time() - t0 < 2.0
    assert value is envdefaults.UNKNOWN
    assert m.bounded["train_gpt.py"] == (f"a configuration value needs more than {budget.EVAL_STEPS:,} evaluation "
                                         "steps; taken as unknown")


def test_env_default_of_ordinary_size_is_still_computed():
    _, value = _env("import os\nclass H:\n    x = os.environ.get('X', 'ab' * 3 + str(1024))\n")
    assert value == "ababab1024"


# ------------------------------------------------------------------------------------------ loader and CLI

@pytest.mark.parametrize("path, message", [
    ("", "auditor: error: empty folder path (give the record folder to audit)\n"),
    ("   ", "auditor: error: empty folder path (give the record folder to audit)\n"),
    ("a\x00b", "auditor: error: folder path holds a NUL character\n"),
])
def test_empty_or_malformed_path_is_a_one_line_usage_error(path, message):
    res = run_main(["run", path, "--format", "json"])
    assert (res.code, res.stdout, res.stderr) == (2, "", message)


def test_folder_read_budget_names_the_files_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(budget, "TOTAL_READ_BYTES", 3_000)
    folder = write_hostile(tmp_path / "rec", valid_spec() + [("train_seed7.log", b"x\n" * 2_000)])
    sub = loader.load_submission(folder)
    msgs = {(f.evidence[0].path if f.evidence else None): f.message for f in sub.load_issues}
    assert "train_seed7.log" in msgs and msgs["train_seed7.log"].startswith("not read: the folder's files read so far")
    assert "3,000-byte budget for one folder; check this file by hand" in msgs["train_seed7.log"]


def test_log_parse_budget_parses_a_prefix_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(budget, "LOG_PARSE_BYTES", 1_500)
    folder = write_hostile(tmp_path / "rec", valid_spec())
    sub = loader.load_submission(folder)
    partly = [f for f in sub.load_issues if f.message.startswith("log only partly parsed")]
    # files are read in name order: 1337 and 2025 fit, 42 gets what is left of the budget
    assert [f.evidence[0].path for f in partly] == ["train_seed42.log"]
    assert re.fullmatch(r"log only partly parsed: its first \d+ characters \(logs together are parsed up to 1,500\); "
                        r"check the rest by hand", partly[0].message)


# ------------------------------------------------------------------------------------------ through the CLI

@pytest.fixture(scope="module")
def server():
    srv = ForkServer()
    yield srv
    srv.close()


def _hp(expr: str) -> bytes:
    return f"import os\n\nclass Hyperparameters:\n    x = os.environ.get('X', {expr})\n".encode()


CLI_CASES = {
    "json-309-digit-val_bpb": ([("submission.json", json.dumps(valid_meta()).replace(
        '"val_bpb": 1.0814', '"val_bpb": ' + "9" * 309).encode())], "SUBMISSION_JSON", None,
        "val_bpb: number too large"),
    "log-320-digit-minutes": ([("train_seed42.log", b"500/20000 train_loss: 3.3 train_time: " + b"9" * 320
                                + b".0m tok/s: 7\n")], None, None, None),
    "stub-decode-bogus": ([("train_gpt.py", b"exec(b'print(1)'.decode('bogus'))\n")], "C1_CAUSAL", "train_gpt.py",
                          "train_gpt.py: not analysed (unknown codec 'bogus' in .decode())"),
    "c-one-line-500KB": ([("helper.c", b"int f(){ int x = 1; " + b"x = x + 1; " * 45_000 + b"}\n")], "C1_CAUSAL",
                         "helper.c", "helper.c: not analysed (C source line 1 longer than 4,096 characters, "
                                     "not scanned)"),
    "env-default-1.5G": ([("train_gpt.py", _hp("'a' * 1500000000"))], "C1_CAUSAL", "train_gpt.py",
                         "train_gpt.py: not analysed (line 4: a configuration value would be 1,500,000,000 items "
                         "long (bound 1,048,576); not computed, taken as unknown)"),
    "parse-10MB-tuple": ([("train_gpt.py", b"x=(" + b"1," * 5_000_000 + b")\nexec(x)\n")], "C1_CAUSAL", None,
                         "train_gpt.py (script too large to analyse; 10,000,013 characters of source"),
    "parse-900KB-binop": ([("train_gpt.py", b"x = " + b"1+" * 450_000 + b"1\n")], "C1_CAUSAL", None,
                          "train_gpt.py (more than 400,000 tokens; over the bound for parsing it)"),
}


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_hostile_case_through_the_cli(server, tmp_path, name):
    pieces, rule, path, text = CLI_CASES[name]
    folder = write_hostile(tmp_path / "records" / "track_10min_16mb" / "2026-01-01_X", valid_spec() + pieces)
    res = server.run(["run", str(folder), "--format", "json"])
    assert res.problems == [], (res.problems, res.stderr[-2000:])
    assert res.cpu < 5 and res.rss_mb < 512, (res.cpu, res.rss_mb)
    if rule is not None:
        doc = json.loads(res.stdout)
        msgs = [f["message"] for f in doc["findings"] if f["rule"] == rule and f["severity"] in ("warn", "fail")]
        assert any(text in m for m in msgs), msgs
        assert res.verdict in ("FAIL", "NEEDS_REVIEW")


def test_workflow_and_readme_never_run_python_m_auditor_in_a_folder():
    root = Path(__file__).resolve().parent.parent
    workflow = (root / ".github" / "workflows" / "audit-records.yml").read_text()
    action = (root / "action.yml").read_text()  # the workflow runs the composite action
    assert "python -m auditor" not in workflow + action
    assert '/bin/auditor" ci ' in action  # the venv's console script
    readme = (root / "README.md").read_text()
    for m in re.finditer(r"python3? (-\w+ )*-m auditor", readme):
        assert "-P" in m.group(0) or "rather than" in readme[max(0, m.start() - 80):m.start()], m.group(0)


def test_stub_decoding_budget_is_shared_by_the_folder(tmp_path):
    from adversarial_kit import bomb_stub

    pieces = [(f"s{i:02d}.py", bomb_stub(9 * 1024 * 1024)) for i in range(30)]
    folder = write_hostile(tmp_path / "rec", valid_spec() + pieces)
    t0 = time.process_time()
    sub = loader.load_submission(folder)
    assert time.process_time() - t0 < 5.0  # 30 bombs of 8 MB each took 0.9 s of decompression apiece
    errors = [sub.code_file(f"s{i:02d}.py").decode_error for i in range(30)]
    bomb = f"decompressed payload exceeds the {MAX_DECODED_BYTES:,}-byte bound"
    spent = f"the stub builds more than {MAX_BUILT_BYTES:,} bytes of values in all"
    assert errors[0] == bomb and errors[-1] == spent and set(errors) == {bomb, spent}


def test_stub_parse_budget_is_shared_by_the_folder(tmp_path):
    stub = b"y = [" + b"1," * 124_000 + b"]\nexec('print(1)')\n"  # ~250,000 tokens each
    folder = write_hostile(tmp_path / "rec", valid_spec() + [(f"s{i}.py", stub) for i in range(3)])
    sub = loader.load_submission(folder)
    assert [sub.code_file(f"s{i}.py").decode_error for i in range(2)] == [None, None]
    assert sub.code_file("s2.py").decode_error == ("not parsed for stub decoding: the folder's scripts already took "
                                                   "496,016 of the 600,000 tokens budgeted for that")


def test_lzma_header_asking_for_a_huge_dictionary_is_refused():
    import base64
    import lzma

    data = lzma.compress(b"print(1)\n", filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 1536 << 20}])
    src = f"import lzma,base64\nexec(lzma.decompress(base64.b85decode({base64.b85encode(data).decode()!r})))\n"
    with pytest.raises(DecodeError) as exc:
        decode_stub(src, "train_gpt.py", {})
    assert str(exc.value) == "LZMA payload is corrupt (Memory usage limit exceeded)"


def test_a_number_reported_too_large_is_never_used():
    text = json.dumps(valid_meta()).replace('"val_bpb": 1.0814', '"val_bpb": ' + "9" * 20)
    meta = parse_submission_json("submission.json", text.encode())
    assert meta.val_bpb is None
    assert any(f.message.startswith("val_bpb: number too large") for f in meta.issues)
