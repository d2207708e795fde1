"""`auditor conform`: exit codes, JSON/text output, FILE.py:NAME and catalog targets."""

from __future__ import annotations

import json
import textwrap

import pytest

from auditor.cli import main

FAST = ["--vocab", "24", "--length", "32", "--positions", "2", "--quiet"]

SUBMITTER_FILE = textwrap.dedent('''
    import math
    import numpy as np

    V = 24

    def hashed_cache(tokens):
        """What a #779-style eval returns: log p of the gold token only."""
        ctx, full = {}, {}
        out = []
        for t in range(1, len(tokens)):
            c = ctx.get(int(tokens[t - 1]) % 4, 0)
            f = full.get((int(tokens[t - 1]) % 4, int(tokens[t]) % 4), 0)
            p = 0.5 / V + 0.5 * min(f, c) / max(c, 1) if c else 1.0 / V
            out.append(math.log(p))
            ctx[int(tokens[t - 1]) % 4] = c + 1
            full[(int(tokens[t - 1]) % 4, int(tokens[t]) % 4)] = f + 1
        return np.array(out)

    def uniform(tokens):
        return np.full(len(tokens) - 1, -math.log(V))

    class Unigram:
        def __init__(self, vocab_size):
            self.vocab_size = vocab_size
            self.c = np.ones(vocab_size)

        def next_logprobs(self):
            return np.log(self.c / self.c.sum())

        def observe(self, token):
            self.c[token] += 1

    def broken(tokens):
        raise RuntimeError("boom\\nsecond line")
''')


@pytest.fixture
def subfile(tmp_path):
    p = tmp_path / "sub.py"
    p.write_text(SUBMITTER_FILE)
    return p


def test_list_names_mixers_and_controls(capsys):
    assert main(["conform", "--list"]) == 0
    out = capsys.readouterr().out
    assert "ngram-backoff" in out and "violation-two-pass-min" in out and "FAIL (C4)" in out


def test_list_json(capsys):
    assert main(["conform", "--list", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["violation-hashed-target-key"]["violates"] == ["C2"]


def test_catalog_pass_exit_zero(capsys):
    assert main(["conform", "catalog:ngram-backoff", *FAST]) == 0
    out = capsys.readouterr().out
    assert "verdict: PASS\n" in out
    assert out.rstrip().endswith("reproduce: auditor conform catalog:ngram-backoff --vocab 24 --length 32 --positions 2 --seed 0")


def test_name_option_and_control_exit_one(capsys):
    assert main(["conform", "--name", "violation-hashed-target-key", *FAST, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "fail"
    assert data["conditions"]["C2"]["status"] == "fail"
    assert data["target"] == "catalog:violation-hashed-target-key"


def test_submitter_file_gold_scorer_flagged(subfile, capsys):
    assert main(["conform", f"{subfile}:hashed_cache", *FAST, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["target"] == "sub.py:hashed_cache"
    assert data["shape"] == "gold"
    assert data["conditions"]["C2"]["max_sum"] > 1.5


@pytest.mark.parametrize("name", ["uniform", "Unigram"])
def test_submitter_file_valid_targets_pass(subfile, capsys, name):
    assert main(["conform", f"{subfile}:{name}", *FAST]) == 0


def test_json_output_is_byte_identical(subfile, capsys):
    main(["conform", f"{subfile}:Unigram", *FAST, "--format", "json"])
    a = capsys.readouterr().out
    main(["conform", f"{subfile}:Unigram", *FAST, "--format", "json"])
    assert capsys.readouterr().out == a


@pytest.mark.parametrize("target,msg", [
    ("{d}/missing.py:x", "no such file"),
    ("{f}:nope", "no attribute"),
    ("{f}:broken", "RuntimeError"),
    ("catalog:nope", "unknown catalog entry"),
    ("justaname", "FILE.py:NAME"),
])
def test_tool_errors_exit_two_with_one_line(subfile, capsys, target, msg):
    spec = target.format(d=subfile.parent, f=subfile)
    assert main(["conform", spec, *FAST]) == 2
    err = capsys.readouterr().err
    assert msg in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_import_error_in_target_file_is_a_tool_error(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("import not_a_real_module_xyz\n")
    assert main(["conform", f"{bad}:f", *FAST]) == 2
    assert "ModuleNotFoundError" in capsys.readouterr().err


def test_missing_target_is_a_tool_error(capsys):
    assert main(["conform"]) == 2
    assert "--list" in capsys.readouterr().err
