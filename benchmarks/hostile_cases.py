"""The hostile inputs of issue 21, one folder each, through `auditor run F --format json` in a child
process: exit code, last stderr line, wall seconds, CPU seconds and peak RSS (os.wait4's rusage of
that child, forked by tests/hostile_kit.ForkServer, plus the server's own import-time peak). A child
past --timeout is killed and reported as such.

    PYTHONPATH=. python benchmarks/hostile_cases.py [--timeout 120] [--only NAME,...]

Folders are built from the tests' synthetic record (tests/adversarial_kit.valid_spec) with one piece
swapped; nothing is copied from real records.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from adversarial_kit import valid_meta, valid_spec, write_spec  # noqa: E402


def _hp(expr: str) -> bytes:
    return (f"import os\n\nclass Hyperparameters:\n    x = os.environ.get('X', {expr})\n\n"
            f"print(Hyperparameters.x)\n").encode()


def _meta_with(raw_bpb: str) -> bytes:
    return json.dumps(valid_meta()).replace('"val_bpb": 1.0814', f'"val_bpb": {raw_bpb}').encode()


def cases() -> dict[str, list[tuple[str, bytes]]]:
    mb = "A" * 1_000_000
    out: dict[str, list[tuple[str, bytes]]] = {
        "json-309-digit-val_bpb": [("submission.json", _meta_with("9" * 309))],
        "json-4000-digit-val_bpb": [("submission.json", _meta_with("9" * 4000))],
        "json-1e400": [("submission.json", _meta_with("1e400"))],
        "log-train_time-320-digits-m": [("train_seed42.log",
                                   b"500/20000 train_loss: 3.3 train_time: " + b"9" * 320 + b".0m tok/s: 7\n")],
        "log-inf-metrics": [("train_seed42.log", b"quantized val_loss:" + b"9" * 400 + b".0 val_bpb:" + b"9" * 400
                             + b".5 eval_time:" + b"9" * 400 + b"ms\ntotal_eval_time: " + b"9" * 400 + b".0s\n")],
        "log-huge-ints": [("train_seed42.log", b"val_tokens: " + b"9" * 5000 + b"\nseed:" + b"9" * 400 + b"\n")],
        "stub-decode-bogus": [("train_gpt.py", b"exec(b'print(1)'.decode('bogus'))\n")],
        "stub-decode-zlib_codec": [("train_gpt.py", b"exec(b'x'.decode('zlib_codec'))\n")],
        "stub-encode-rot13": [("train_gpt.py", b"exec('print(1)'.encode('rot13'))\n")],
        "stub-decode-idna": [("train_gpt.py", b"exec(b'print(1)'.decode('idna'))\n")],
        "stub-unhashable-key": [("train_gpt.py", b"import lzma\nexec(lzma.decompress(b'', filters=[{[1]: 2}]))\n")],
        "stub-lzma-delta-raw": [("train_gpt.py", b"import lzma\nexec(lzma.decompress(b'xx', format=lzma.FORMAT_RAW,"
                                                 b" filters=[{'id': lzma.FILTER_DELTA}]))\n")],
        "c-one-2MB-line": [("helper.c", b"int f(){ int x = 1; " + b"x = x + 1; " * 190_000 + b"}\n")],
        "env-default-1.5G-repeat": [("train_gpt.py", _hp("'a' * 1500000000"))],
        "stub-concat-512MB": [("train_gpt.py", (f"A='{mb}'\nB=A+A+A+A+A+A+A+A\nC=B+B+B+B+B+B+B+B\n"
                                                f"D=C+C+C+C+C+C+C+C\nexec(D)\n").encode())],
        "parse-10MB-binop": [("train_gpt.py", b"exec(" + b"1+" * 5_000_000 + b"1)\n")],
        "parse-10MB-tuple": [("train_gpt.py", b"x=(" + b"1," * 5_000_000 + b")\nexec(x)\n")],
        "py-1MB-identifier": [("train_gpt.py", b"loss" * 200_000 + b"_sum = 1\n")],
        "py-_train-string": [("train_gpt.py", b"x = '" + b"_train" * 160_000 + b"'\n")],
        # the worst that stays inside the bounds (cost of a folder that uses every budget fully)
        "logs-6x11MB-short-lines": [(f"train_seed{i}.log", b"step:1/2 x\n" * (1 << 20)) for i in range(6)],
        "py-1MB-dense-functions": [("train_gpt.py", _dense_python(990_000))],
        "py-399k-tokens-exec": [("train_gpt.py", b"x = [" + b"1," * 199_000 + b"]\nexec(x)\n")],
        "py-5x900KB-files": [(f"helper{i}.py", _dense_python(900_000)) for i in range(5)],
        "300-bomb-stubs": [(f"s{i}.py", _bomb_stub()) for i in range(300)],
        "every-budget-at-once": ([(f"train_seed{i}.log", b"ab\n" * 3_700_000) for i in range(4)]
                                 + [("train_gpt.py", _dense_python(990_000)),
                                    ("stub.py", b"x = [" + b"1," * 199_000 + b"]\nexec(x)\n"),
                                    ("stub2.py", b"x = [" + b"1," * 199_000 + b"]\nexec(x)\n")]),
    }
    return out


def _bomb_stub() -> bytes:
    from adversarial_kit import bomb_stub

    return bomb_stub(9 * 1024 * 1024)


def _dense_python(size: int) -> bytes:
    """Synthetic code shaped like a training script: functions with loops, calls, env reads."""
    parts, i = [b"import os\nimport torch\n"], 0
    while sum(map(len, parts)) < size:
        parts.append((f"def f{i}(x, tokens, val_tokens):\n"
                      f"    a = int(os.environ.get('A{i}', '{i}'))\n"
                      f"    for j in range(len(tokens)):\n"
                      f"        if a > 3 and tokens[j] > 0:\n"
                      f"            x = x + torch.log_softmax(x, dim=-1) * tokens[j - 1]\n"
                      f"        y = f{max(i - 1, 0)}(x, tokens, val_tokens) if j % 7 else x\n"
                      f"    return x.sum() + y.mean()\n\n").encode())
        i += 1
    return b"".join(parts)[:size].rsplit(b"\ndef ", 1)[0] + b"\n"


def run_case(server, folder: Path, argv_path: str | None, timeout: float) -> dict:
    """One audit in a child forked by the fork server (tests/hostile_kit.py): its own CPU time and peak
    RSS (the server's import-time peak added), killed past `timeout` seconds of wall clock."""
    r = server.run(["run", argv_path if argv_path is not None else str(folder), "--format", "json"], hang_s=timeout)
    code = "killed" if r.killed else r.code
    verdict = None
    if r.code in (0, 1, 3) and not r.killed:
        try:
            verdict = json.loads(r.stdout)["verdict"]
        except ValueError:
            verdict = "INVALID JSON"
    return {"code": code, "verdict": verdict, "wall": r.wall, "cpu": r.cpu, "rss_mb": r.rss_mb,
            "stderr": (r.stderr.strip().splitlines() or [""])[-1][:160]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--only", default="")
    ap.add_argument("--root", default=str(ROOT), help="auditor source tree to run (default: this checkout); "
                    "e.g. `git archive 5e631f2 auditor rules reports | tar -x -C /tmp/base` for the baseline")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    print(f"{'case':28} {'exit':>6} {'verdict':>13} {'wall s':>7} {'cpu s':>7} {'RSS MB':>7}  stderr")
    from hostile_kit import ForkServer

    server = ForkServer(Path(args.root))
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        items = list(cases().items()) + [("run-empty-path", None)]
        for name, pieces in items:
            if only and name not in only:
                continue
            if pieces is None:
                r = run_case(server, Path(tmp), "", args.timeout)
            else:
                folder = write_spec(Path(tmp) / name / "records" / "track_10min_16mb" / "2026-01-01_X",
                                    valid_spec() + pieces)
                r = run_case(server, folder, None, args.timeout)
            print(f"{name:28} {r['code']!s:>6} {r['verdict']!s:>13} {r['wall']:7.2f} {r['cpu']:7.2f} "
                  f"{r['rss_mb']:7.0f}  {r['stderr']}", flush=True)
    server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
