"""Bombs and traps: inputs built to exhaust memory, time or recursion, or to make the auditor read
outside the folder. Each must end in a verdict (or a clean exit-2 error) within a bound, with the
problem reported and nothing outside the folder read."""

from __future__ import annotations

import base64
import json
import lzma
import os
import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from adversarial_kit import assert_clean_outcome, assert_tables_intact, bomb_stub, run_main, stub_for, time_bound
from auditor.load.decode import MAX_DECODED_BYTES, DecodeError, decode_stub
from auditor.load.loader import load_submission
from recordkit import SCRIPT, write_record

SECRET = "TOP-SECRET-OUTSIDE-THE-FOLDER-1f3a"


def _cli_subprocess(*args: str, cwd=None, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float, int]:
    """Run the CLI in a child; returns (result, child CPU seconds, child peak RSS in KiB) via a
    wrapper that reports its own getrusage, so neither other children of this test process nor a
    loaded machine blur the figures."""
    code = ("import resource,sys,json;from auditor.cli import main\n"
            "try:\n rc=main(sys.argv[1:])\nexcept SystemExit as e:\n rc=e.code if isinstance(e.code,int) else 2\n"
            "sys.stdout.flush()\n"
            "u=resource.getrusage(resource.RUSAGE_SELF)\n"
            "sys.stderr.write('\\n@@RSS %d %.3f\\n' % (u.ru_maxrss, u.ru_utime + u.ru_stime))\n"
            "sys.exit(rc)\n")
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd,
                         timeout=timeout, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    err, _, usage = res.stderr.rpartition("\n@@RSS ")
    res.stderr = err.rstrip("\n") + ("\n" if err.strip() else "")
    rss, cpu = usage.split() if usage.strip() else ("0", "0")
    return res, float(cpu), int(rss)


def _outcome(res: subprocess.CompletedProcess, fmt: str = "md") -> str | None:
    from adversarial_kit import CliResult

    return assert_clean_outcome(CliResult(res.returncode, res.stdout, res.stderr, 0.0), fmt)


# --------------------------------------------------------------------------------------------------
# decompression bombs

def test_gigabyte_lzma_bomb_is_bounded_and_reported(tmp_path):
    # 32 concatenated xz streams of 64 MiB each: 2 GiB if decoded the way Python's lzma.decompress does
    one = bomb_stub()
    payload_b85 = one.split(b'b85decode("')[1].split(b'")')[0]
    stream = base64.b85decode(payload_b85)
    stub = ('import lzma,base64\nexec(lzma.decompress(base64.b85decode("'
            + base64.b85encode(stream * 32).decode() + '")))\n')
    folder = write_record(tmp_path, script=stub)
    res, cpu, rss_kib = _cli_subprocess("run", str(folder), "--format", "json")
    assert _outcome(res, "json") in ("FAIL", "NEEDS_REVIEW")
    doc = json.loads(res.stdout)
    entry = next(c for c in doc["submission"]["code"] if c["path"] == "train_gpt.py")
    assert entry["decode_error"] == f"decompressed payload exceeds the {MAX_DECODED_BYTES:,}-byte bound"
    assert entry["decoded_bytes"] == len(stub.encode())  # the stub text itself, not 2 GiB
    assert cpu < 30
    assert rss_kib < 1_000_000, f"peak RSS {rss_kib} KiB"


@pytest.mark.parametrize("kind", ["lzma", "zlib", "gzip", "bz2-nested"])
def test_bombs_in_each_codec_raise_the_bound(kind):
    big = b"\x00" * (MAX_DECODED_BYTES + 1)
    if kind == "lzma":
        src = bomb_stub().decode()
    elif kind == "zlib":
        src = f'import zlib,base64\nexec(zlib.decompress(base64.b64decode("{base64.b64encode(zlib.compress(big)).decode()}")))\n'
    elif kind == "gzip":
        import gzip
        src = f'import gzip,base64\nexec(gzip.decompress(base64.b64decode("{base64.b64encode(gzip.compress(big)).decode()}")))\n'
    else:
        import bz2
        inner = f'import bz2,base64\nexec(bz2.decompress(base64.b64decode("{base64.b64encode(bz2.compress(big)).decode()}")))\n'
        src = stub_for(inner)  # the bomb is the second layer
    t0 = time.process_time()
    if kind == "bz2-nested":
        decoded = decode_stub(src, "train_gpt.py", {})
        assert decoded.layers == 1 and decoded.text.startswith("import bz2,base64")  # layer 2 refused, layer 1 kept
    else:
        with pytest.raises(DecodeError, match="exceeds the 8,388,608-byte bound"):
            decode_stub(src, "train_gpt.py", {})
    assert time.process_time() - t0 < 10


def test_second_stream_cannot_hide_from_the_auditor():
    """lzma/gzip/bz2.decompress run every concatenated stream; the auditor must see them all."""
    import bz2
    import gzip

    benign, hidden = b"print('benign')\n", b"import socket  # hidden\n"
    for mod, comp in (("lzma", lzma.compress), ("gzip", gzip.compress), ("bz2", bz2.compress)):
        payload = base64.b85encode(comp(benign) + comp(hidden)).decode()
        src = f'import {mod},base64\nexec({mod}.decompress(base64.b85decode("{payload}")))\n'
        assert decode_stub(src, "train_gpt.py", {}).text == (benign + hidden).decode(), mod


def test_second_exec_cannot_hide_from_the_auditor():
    first = stub_for("print('benign')\n")
    second = stub_for("import socket  # hidden\n").split("\n", 1)[1]
    decoded = decode_stub(first + second, "train_gpt.py", {})
    assert decoded.text == "print('benign')\n\nimport socket  # hidden\n"


def test_truncated_stream_is_a_decode_error_as_in_python():
    payload = base64.b85encode(lzma.compress(SCRIPT.encode())[:-12]).decode()
    src = f'import lzma,base64\nexec(lzma.decompress(base64.b85decode("{payload}")))\n'
    with pytest.raises(lzma.LZMAError):
        lzma.decompress(base64.b85decode(payload))
    with pytest.raises(DecodeError, match="truncated"):
        decode_stub(src, "train_gpt.py", {})


def test_deeply_nested_stub_layers_stop_at_the_layer_bound():
    text = SCRIPT
    for _ in range(12):
        text = stub_for(text)
    decoded = decode_stub(text, "train_gpt.py", {})
    assert decoded.layers == 4 and decoded.text.startswith("import lzma")


# --------------------------------------------------------------------------------------------------
# recursion

DEEP_SOURCES = {
    "parens": "x = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n",
    "binop": "x = " + "1+" * 100_000 + "1\n",
    "attr": "x = a" + ".b" * 100_000 + "\n",
    "calls": "x = f" + "()" * 50_000 + "\n",
    "unary": "x = " + "-" * 100_000 + "1\n",
    "lists": "x = " + "[" * 5_000 + "]" * 5_000 + "\n",
    "exec-concat": "exec(" + "'a'+" * 100_000 + "'a')\n",
    "exec-nested-calls": "import zlib\nexec(" + "zlib.decompress(" * 3_000 + "b''" + ")" * 3_000 + ")\n",
    "not": "x = " + "not " * 100_000 + "y\n",
}


@pytest.mark.parametrize("name", sorted(DEEP_SOURCES))
def test_deeply_nested_code_ends_in_a_verdict(tmp_path, name):
    """Runs in a child: a C-level stack overflow must not take the test runner down with it."""
    folder = write_record(tmp_path, script=DEEP_SOURCES[name])
    res, cpu, _ = _cli_subprocess("run", str(folder), "--format", "json")
    assert res.returncode != -11, "segfault"
    # a script nobody could analyse must not pass
    assert _outcome(res, "json") in ("FAIL", "NEEDS_REVIEW")
    size = len(DEEP_SOURCES[name])
    assert cpu < time_bound(size) + 3  # + interpreter start-up


def test_deeply_nested_log_and_json(tmp_path):
    folder = write_record(tmp_path)
    (folder / "submission.json").write_text("[" * 200_000 + "]" * 200_000)
    (folder / "train_seed42.log").write_text("(" * 1_000_000 + "\n" + "val_bpb:" * 100_000 + "\n")
    res = run_main(["run", str(folder), "--format", "json"], hang_after=60)
    assert assert_clean_outcome(res, "json") == "FAIL"
    doc = json.loads(res.stdout)
    msgs = [f["message"] for f in doc["findings"] if f["rule"] == "SUBMISSION_JSON"]
    assert any("not valid JSON" in m or "too deep" in m or "RecursionError" in m for m in msgs), msgs


# --------------------------------------------------------------------------------------------------
# links, special files, sizes

def _outside_secret(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(f"val_bpb: 0.5\n{SECRET}\n")
    return secret


def test_symlinks_out_of_the_folder_are_not_followed(tmp_path):
    secret = _outside_secret(tmp_path)
    folder = write_record(tmp_path)
    (folder / "train_seed42.log").unlink()
    (folder / "train_seed42.log").symlink_to(secret)
    (folder / "extra").symlink_to(secret.parent, target_is_directory=True)
    (folder / "loop").symlink_to(folder / "loop")
    (folder / "abs.py").symlink_to("/etc/passwd")
    res = run_main(["run", str(folder), "--format", "json"], hang_after=30)
    assert assert_clean_outcome(res, "json") == "FAIL"
    assert SECRET not in res.stdout and "root:x:" not in res.stdout
    doc = json.loads(res.stdout)
    links = {f["evidence"][0]["path"]: f["severity"] for f in doc["findings"]
             if f["rule"] == "FILES" and "symbolic link" in f["message"]}
    assert links == {"train_seed42.log": "fail", "extra": "fail", "loop": "warn", "abs.py": "fail"}
    assert "train_seed42.log" not in doc["submission"]["logs"]


def test_hard_link_to_an_outside_file_is_not_read(tmp_path):
    secret = _outside_secret(tmp_path)
    folder = write_record(tmp_path)
    os.link(secret, folder / "train_seed7.log")
    res = run_main(["run", str(folder), "--format", "json"])
    assert assert_clean_outcome(res, "json") == "NEEDS_REVIEW"
    assert SECRET not in res.stdout
    doc = json.loads(res.stdout)
    f = next(f for f in doc["findings"] if f["rule"] == "FILES" and "hard links" in f["message"])
    assert f["evidence"][0]["path"] == "train_seed7.log" and f["severity"] == "warn"


def test_fifo_and_directory_named_like_files_do_not_block(tmp_path):
    folder = write_record(tmp_path)
    os.mkfifo(folder / "train_seed7.log")  # opening it for reading would block forever
    (folder / "submission_dir.json").mkdir()
    res = run_main(["run", str(folder), "--format", "json"], hang_after=30)
    assert assert_clean_outcome(res, "json") == "NEEDS_REVIEW"
    doc = json.loads(res.stdout)
    assert any(f["message"].startswith("special file") and f["evidence"][0]["path"] == "train_seed7.log"
               for f in doc["findings"])


@pytest.mark.parametrize("name", ["train_seed7.log", "train_gpt.py", "README.md", "submission.json", "model.bin"])
def test_two_gigabyte_sparse_file_is_not_read(tmp_path, name):
    folder = write_record(tmp_path)
    with open(folder / name, "wb") as fh:
        fh.truncate(2 * 1024**3)
    c0 = time.process_time()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sub = load_submission(folder)
    assert time.process_time() - c0 < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing big was read
    if name == "model.bin":
        assert sub.load_issues == []  # not a file the auditor reads at all
    else:
        msgs = [f.message for f in sub.load_issues if f.evidence and f.evidence[0].path == name]
        assert msgs and msgs[0].startswith("2,147,483,648 bytes; larger than the"), msgs
    res = run_main(["run", str(folder)], hang_after=30)
    assert assert_clean_outcome(res) in ("FAIL", "NEEDS_REVIEW", "PASS")


def test_many_files_are_bounded(tmp_path):
    folder = write_record(tmp_path)
    junk = folder / "junk"
    junk.mkdir()
    for i in range(5_100):
        (junk / f"f{i:05d}.txt").touch()
    res = run_main(["run", str(folder), "--format", "json"], hang_after=60)
    assert assert_clean_outcome(res, "json") == "NEEDS_REVIEW"
    assert res.cpu < 20
    doc = json.loads(res.stdout)
    msgs = [f["message"] for f in doc["findings"] if f["rule"] == "FILES"]
    assert msgs == ["more than 5000 files; the rest were not read"]
    assert len(doc["submission"]["files"]) == 5000 and "train_gpt.py" in doc["submission"]["files"]


def test_deep_folders_and_long_names_are_bounded(tmp_path):
    folder = write_record(tmp_path)
    deep = folder
    for i in range(30):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "train.log").write_text("x\n")
    (folder / ("L" * 250 + ".log")).write_text("y\n")
    res = run_main(["run", str(folder), "--format", "json"], hang_after=60)
    assert assert_clean_outcome(res, "json") == "NEEDS_REVIEW"
    msgs = [f["message"] for f in json.loads(res.stdout)["findings"] if f["rule"] == "FILES"]
    assert "folder nested deeper than 8 levels; not read" in msgs


# --------------------------------------------------------------------------------------------------
# hostile names

HOSTILE_NAMES = ["$(touch PWNED)", "`touch PWNED`", "a;touch PWNED;b", "x | y", "-rf", "--format=json",
                 "line\nbreak", "tab\there", "quote'\"q", "\u202etxt.exe", "%0A::error::x"]


@pytest.mark.parametrize("folder_name", ["$(touch PWNED)", "-x;touch PWNED", "new\nline", "\u202eevil"])
def test_hostile_folder_and_file_names(tmp_path, folder_name):
    folder = write_record(tmp_path, name=folder_name)
    for i, n in enumerate(HOSTILE_NAMES):
        (folder / f"{n}_seed{i}.log").write_text(f"seed: {i}\n")
        (folder / f"{n}.py").write_text("x = 1\n")
    raw = os.fsencode(folder) + b"/bad\xff\xfename.log"
    with open(raw, "wb") as fh:
        fh.write(b"val_bpb: 1\n")
    res, _, _ = _cli_subprocess("run", str(folder), cwd=tmp_path)
    assert _outcome(res) == "NEEDS_REVIEW"  # unprintable file names are flagged for a human
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()
    lines = res.stdout.splitlines()
    assert sum(ln.startswith("**Verdict") for ln in lines) == 1
    assert not any(ln.startswith("::") for ln in lines)
    assert assert_tables_intact(res.stdout) >= 2 + 11 + 2 + 3  # rules table and runs table
    # in-process too: the name arrives as a str with surrogate escapes
    res2 = run_main(["run", str(folder), "--format", "json"])
    doc = json.loads(res2.stdout)
    bad = [p for p in doc["submission"]["files"] if p.startswith("bad")]
    assert bad == ["bad\ufffd\ufffdname.log"] and bad[0] in doc["submission"]["logs"]  # listed and read
    flagged = {f["evidence"][0]["path"] for f in doc["findings"]
               if "unprintable characters" in f["message"] and f["evidence"]}
    assert "bad\ufffd\ufffdname.log" in flagged and "line\ufffdbreak.py" in flagged


def test_missing_and_unusable_paths_are_one_line_errors(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    for path in [tmp_path / "nope", tmp_path / "file.txt", "\x00bad", "a" * 5000]:
        res = run_main(["run", str(path)])
        assert assert_clean_outcome(res) is None, path


# --------------------------------------------------------------------------------------------------
# amplification: small input, huge work or report

def test_submission_json_flood_does_not_flood_the_report(tmp_path):
    folder = write_record(tmp_path)
    dup_keys = ",".join(f'"k{i}":1,"k{i}":2' for i in range(20_000))
    doc = ("{" + dup_keys + ',"val_bpb":1.0814,"seeds":' + json.dumps(["x"] * 200_000) +
           ',"seed_results":' + json.dumps({str(i): {"val_bpb": "q"} for i in range(20_000)}) + "}")
    (folder / "submission.json").write_text(doc)
    res = run_main(["run", str(folder)], hang_after=60)
    assert assert_clean_outcome(res) in ("FAIL", "NEEDS_REVIEW")
    assert res.cpu < time_bound(len(doc))
    assert len(res.stdout) < 60_000  # a GitHub comment holds 65,536 characters
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("- **SUBMISSION_JSON**")]
    assert 5 <= len(lines) <= 60
    assert any("more than 1,000 entries; only the first 1,000 were read" in ln for ln in lines)
    assert any("more issues like the above (duplicate keys)" in ln for ln in lines)
    # padding the top level with 20,000 junk keys does not hide the real claim behind them
    doc_json = json.loads(run_main(["run", str(folder), "--format", "json"]).stdout)
    assert doc_json["submission"]["claims"]["val_bpb"] == 1.0814


def test_score_line_flood_stays_linear(tmp_path):
    """20,000 final score lines in one log (EVAL_TIME used to compare every phase with every other)."""
    flood = [f"quantized_sliding_window val_loss:{i} val_bpb:{i} eval_time:{i}ms" for i in range(20_000)]
    folder = write_record(tmp_path, log_kwargs={"extra_lines": flood})
    size = sum(p.stat().st_size for p in folder.iterdir())
    res = run_main(["run", str(folder), "--format", "json"], hang_after=120)
    assert assert_clean_outcome(res, "json") in ("FAIL", "NEEDS_REVIEW", "PASS")
    assert res.cpu < time_bound(size), (res.cpu, size)


def test_two_million_line_log_with_crlf_and_long_lines(tmp_path):
    folder = write_record(tmp_path)
    with open(folder / "train_seed42.log", "ab") as fh:
        fh.write(b"step:1/2 x\n" * 1_000_000 + b"\r\n" * 1_000_000)
        fh.write(b"val_bpb:" * 125_000 + b"\n" + b"9" * 1_000_000 + b"\n")  # two 10^6-character lines
    size = sum(p.stat().st_size for p in folder.iterdir())
    res = run_main(["run", str(folder), "--format", "json"], hang_after=4 * time_bound(size))
    assert assert_clean_outcome(res, "json") in ("PASS", "NEEDS_REVIEW", "FAIL")
    assert res.cpu < time_bound(size), (res.cpu, size)
    runs = json.loads(res.stdout)["runs"]
    assert any(r["path"] == "train_seed42.log" for r in runs)  # the real run before the junk is still read


def test_one_megabyte_python_script_within_the_bound(tmp_path):
    script = "import os\n" + "x = 1\n" * 170_000
    folder = write_record(tmp_path, script=script)
    size = sum(p.stat().st_size for p in folder.iterdir())
    res = run_main(["run", str(folder), "--format", "json"], hang_after=60)
    assert assert_clean_outcome(res, "json") in ("PASS", "NEEDS_REVIEW", "FAIL")
    assert res.cpu < time_bound(size), (res.cpu, size)


@pytest.mark.parametrize("swap", ["new-file", "symlink"])
def test_file_swapped_after_the_scan_is_not_read(tmp_path, monkeypatch, swap):
    """Time-of-check/time-of-use: a file replaced between listing and reading is refused."""
    import auditor.load.loader as loader

    secret = _outside_secret(tmp_path)
    folder = write_record(tmp_path)
    real_scan = loader.scan

    def scan_then_swap(root, real_names=None):
        out = real_scan(root, real_names)
        target = root / "train_seed42.log"
        target.unlink()
        if swap == "symlink":
            target.symlink_to(secret)
        else:
            target.write_text(secret.read_text())
        return out

    monkeypatch.setattr(loader, "scan", scan_then_swap)
    sub = loader.load_submission(folder)
    assert "train_seed42.log" not in sub.logs
    msgs = [f.message for f in sub.load_issues if f.evidence and f.evidence[0].path == "train_seed42.log"]
    if swap == "symlink":  # O_NOFOLLOW refuses the link itself
        assert msgs and msgs[0].startswith("file could not be read"), msgs
    else:
        assert msgs == ["file was replaced while the folder was being read; not read"]


def test_unprintable_folder_name_is_flagged(tmp_path):
    folder = write_record(tmp_path, name="2026-05-01_x\n::error::forged\u202e")
    res = run_main(["run", str(folder), "--format", "json"])
    assert assert_clean_outcome(res, "json") == "NEEDS_REVIEW"
    doc = json.loads(res.stdout)
    assert doc["submission"]["name"] == "2026-05-01_x\ufffd::error::forged\ufffd"
    assert any(f["rule"] == "FILES" and f["message"].startswith("folder name has unprintable characters")
               for f in doc["findings"])
