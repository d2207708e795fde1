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

    def traced_uniform(tokens, vocab_size, trace=None):
        if trace is not None:
            trace.scored(range(1, len(tokens)))
        return np.full(len(tokens) - 1, -math.log(vocab_size))


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


CHUNKED_FILE = """import math
import numpy as np

V = 24

""" + textwrap.dedent('''
    CONFORM_KNOBS = {"CHUNK": {"default": 1000, "role": "chunk", "stress": 4},
                     "BUCKETS": {"default": 1 << 20, "role": "table"}}

    def chunked_cache(tokens, trace=None):
        """Hashed (context, target) cache updated every CHUNK tokens into BUCKETS buckets."""
        import os
        chunk, buckets = int(os.environ["CHUNK"]), int(os.environ["BUCKETS"])
        ctx, full = np.zeros(buckets), np.zeros(buckets)
        out = []
        for s in range(1, len(tokens), chunk):
            idx = range(s, min(s + chunk, len(tokens)))
            for t in idx:
                c = ctx[int(tokens[t - 1]) % buckets]
                f = full[(int(tokens[t - 1]) * 31 + int(tokens[t])) % buckets]
                out.append(math.log(0.5 / V + 0.5 * min(f, c) / c if c else 1.0 / V))
            if trace is not None:
                trace.scored(idx)
                trace.consumed(idx)
            for t in idx:
                ctx[int(tokens[t - 1]) % buckets] += 1
                full[(int(tokens[t - 1]) * 31 + int(tokens[t])) % buckets] += 1
        return np.array(out)
''')


@pytest.fixture
def chunkfile(tmp_path):
    p = tmp_path / "chunked.py"
    p.write_text(CHUNKED_FILE)
    return p


@pytest.fixture
def subfile(tmp_path):
    p = tmp_path / "sub.py"
    p.write_text(SUBMITTER_FILE)
    return p


def test_list_names_mixers_and_controls(capsys):
    assert main(["conform", "--list"]) == 0
    out = capsys.readouterr().out
    assert "ngram-backoff" in out and "violation-two-pass-min" in out and "FAIL (C4)" in out
    assert "ppm-byte" in out and "vocab 256" in out
    assert "need --vocab" in out


def test_help_states_what_each_condition_test_sees(capsys):
    with pytest.raises(SystemExit):
        main(["conform", "--help"])
    out = capsys.readouterr().out
    for key in ("C1", "C2", "C3", "C4"):
        assert f"  {key} " in out
    assert out.count("; cannot see ") == 4
    assert "length alone" in out and "scaffold" in out and "--profile stress" in out


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


@pytest.mark.parametrize("name", ["traced_uniform", "Unigram"])
def test_submitter_file_valid_targets_pass(subfile, capsys, name):
    assert main(["conform", f"{subfile}:{name}", *FAST]) == 0


def test_gold_scorer_without_trace_is_incomplete_exit_three(subfile, capsys):
    assert main(["conform", f"{subfile}:uniform", *FAST]) == 3
    out = capsys.readouterr().out
    assert "C3 score before update  N/M" in out and "verdict: INCOMPLETE (C3 not measured)" in out


def test_own_settings_that_never_update_are_not_a_clean_certificate(chunkfile, capsys):
    assert main(["conform", f"{chunkfile}:chunked_cache", *FAST]) == 3
    out = capsys.readouterr().out
    assert "chunk knob 1000 >= stream length 32" in out
    assert "knobs: BUCKETS=1048576 (default), CHUNK=1000 (default)" in out


def test_stress_profile_prints_its_settings_and_finds_the_collisions(chunkfile, capsys):
    args = ["conform", f"{chunkfile}:chunked_cache", *FAST, "--profile", "stress", "--set", "BUCKETS=8"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "knobs: BUCKETS=8 (set), CHUNK=4 (stress)" in out
    assert "C2 normalization        FAIL" in out and "C3 score before update  PASS" in out
    assert "C4 single pass          PASS" in out
    assert out.rstrip().endswith("--positions 2 --seed 0 --profile stress --set BUCKETS=8")
    settings = json.loads(_json(args, capsys))["settings"]
    assert all(t > 4 for t in settings["positions"])  # probes only after the first update


def _json(args, capsys):
    main([*args, "--format", "json"])
    return capsys.readouterr().out


def test_stress_needs_declared_knobs(subfile, capsys):
    assert main(["conform", f"{subfile}:uniform", *FAST, "--profile", "stress"]) == 2
    assert "CONFORM_KNOBS" in capsys.readouterr().err
    assert main(["conform", f"{subfile}:uniform", *FAST, "--set", "oops"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


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
