"""The shared condition tests (`reference_impl.conditions`), scale knobs and the batched C2 path."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from reference_impl import conditions as cd
from reference_impl import conform_knobs as kn
from reference_impl.harness import HarnessError, certify
from reference_impl.record_glue import bigram_logprobs, load_definitions


def _trace(*events):
    tr = cd.Trace()
    for kind, pos in events:
        getattr(tr, kind)(pos)
    return cd.analyse_trace(tr.events, 1, 6, probes=[4])


def test_trace_score_first_chunks_pass_and_report_that_the_mechanism_fired():
    ev = _trace(("consumed", 0), ("scored", range(1, 3)), ("consumed", range(1, 3)), ("scored", range(3, 6)))
    assert (ev["counted_before"], ev["lookahead"], ev["rescored"], ev["unscored"]) == ([], [], [], [])
    assert ev["fired"] and ev["probes_after_update"] == 1
    assert cd.score_first_from_trace(ev, 5)["status"] == "pass"


@pytest.mark.parametrize("events,key,expected", [
    ((("consumed", range(6)), ("scored", range(1, 6))), "counted_before", [1, 2, 3, 4, 5]),
    ((("scored", 1), ("consumed", 4), ("scored", range(2, 6))), "lookahead", [2, 3]),
    ((("scored", range(1, 6)), ("consumed", range(6)), ("scored", [2, 5])), "rescored", [2, 5]),
    ((("scored", [1, 2, 5]),), "unscored", [3, 4]),
])
def test_trace_evidence(events, key, expected):
    ev = _trace(*events)
    assert ev[key] == expected
    assert cd.score_first_from_trace(ev, 5)["status"] == ("fail" if key in ("counted_before", "lookahead") else "pass")


def test_attribution_names_one_primary_and_why_the_others_follow():
    def conds(*failed):
        return {k: {"status": "fail" if k in failed else "pass", "notes": []} for k in cd.TITLES}

    c = cd.attribute(conds("C1", "C2", "C4"), {"rescored": True})
    assert c["C4"]["primary"] and c["C1"]["follows_from"] == "C4" and c["C2"]["follows_from"] == "C4"
    c = cd.attribute(conds("C1", "C4"), {"future": True})
    assert c["C1"]["primary"] and c["C4"]["follows_from"] == "C1"
    c = cd.attribute(conds("C2"), {"gold": True})
    assert c["C2"]["primary"] and "#1872" in c["C2"]["notes"][0]
    assert cd.verdict(conds(), []) == "pass" and cd.verdict(conds(), ["not exercised"]) == "incomplete"


def test_knobs_stress_set_and_environment_are_restored(monkeypatch):
    monkeypatch.delenv("CHUNK_X", raising=False)
    knobs = {"CHUNK_X": {"default": 1000, "role": "chunk"}, "TABLE_X": {"default": 4096, "role": "table"}}
    scale = kn.resolve(knobs, "stress", {"TABLE_X": "8"})
    assert scale.describe() == [{"name": "CHUNK_X", "value": "32", "source": "stress", "role": "chunk"},
                                {"name": "TABLE_X", "value": "8", "source": "set", "role": "table"}]
    assert kn.stress_length(scale, 96) == 6 * 32 + 1
    with kn.environment(scale):
        assert os.environ["CHUNK_X"] == "32"
    assert "CHUNK_X" not in os.environ
    bound = kn.bind(lambda tokens, table_x=1: table_x, scale)
    assert bound(None) == 8
    with pytest.raises(kn.KnobError):
        kn.parse_sets(["no-equals"])


def _bigram_scorer(vocab_size: int):
    """A numpy-scale gold scorer (fixed bigram) with the batched form the harness uses for C2."""
    table = bigram_logprobs(vocab_size, rank=4)
    calls = {"score": 0, "batch": 0}

    def score(tokens, trace=None):
        calls["score"] += 1
        tokens = np.asarray(tokens)
        if trace is not None:
            trace.scored(range(1, len(tokens)))
        return table[tokens[:-1], tokens[1:]]

    def batch(streams):
        calls["batch"] += 1
        return table[streams[:, :-1], streams[:, 1:]]

    score.batch = batch
    return score, calls


def test_score_batch_carries_the_full_vocabulary_substitution():
    score, calls = _bigram_scorer(4096)
    report = certify(score, vocab=4096, length=64, positions=3, seed=0)
    assert report["verdict"] == "pass" and report["shape"] == "gold+trace+batch"
    assert calls["batch"] == 3 * 4  # 4096 candidates per position in batches of 1024
    assert calls["score"] < 120  # C1/C4 probes only: no per-candidate calls


def test_score_batch_that_disagrees_with_score_is_a_tool_error():
    score, _ = _bigram_scorer(64)
    score.batch = lambda streams: np.full((len(streams), streams.shape[1] - 1), -math.log(64))
    with pytest.raises(HarnessError, match="score_batch disagrees with score"):
        certify(score, vocab=64, length=20, positions=1)


def test_scorer_receives_the_vocabulary_size():
    seen = set()

    def score(tokens, vocab_size):
        seen.add(vocab_size)
        return np.full(len(tokens) - 1, -math.log(vocab_size))

    assert certify(score, vocab=40, length=12, positions=1)["conditions"]["C2"]["status"] == "pass"
    assert seen == {40}


def test_load_definitions_takes_only_what_it_is_asked_for_even_from_newer_python():
    source = ('import torch\nX = 3\ndef wanted(a):\n    return a + X\n'
              'def newer():\n    return f"{", ".join(["a"])}"\n')  # 3.12 f-string: not parseable by 3.11
    ns = load_definitions(source, ["X", "wanted"], {})
    assert ns["wanted"](1) == 4 and "newer" not in ns and "torch" not in ns
    with pytest.raises(KeyError, match="missing_fn"):
        load_definitions(source, ["missing_fn"], {})
