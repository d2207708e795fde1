"""`auditor conform` on real records: wrappers in tests/conform_real compile the records' own eval functions
from ../shared/corpus at test time (skipped when it is absent) with the neural model replaced by a stand-in.

Each certificate must match the public ruling on its family, condition by condition: hashed chunk n-gram
cache (#779 family) fails C2 under the stress profile and is never clean at its own settings; the byte-PPM
mixture (#1872 family) fails C2 only; merged score-first TTT passes all four (its length-keyed cosine
schedule is information, not a C4 failure).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from reference_impl.harness import certify, format_text, load_spec

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpus"
NGRAM_CLUSTER = [
    "pr/PR826/records/track_10min_16mb/2026-03-27_ChunkNgram_0.2951",
    "pr/PR809/records/track_10min_16mb/2026-03-26_ChunkNgram_TTT_LeakyReLU09_GPTQ5",
    "pr/PR843/records/track_10min_16mb/2026-03-26_Order12_Chunk256K_AlphaMax070",
]
PPM_CLUSTER = [
    "pr/PR1991/records/track_10min_16mb/2026-04-30_SP8192_PPMMixer_O5_TunedGate",
    "pr/PR1933/records/track_10min_16mb/2026-04-29_PPM_SP8192_yahya_base",
]
TTT = "merged/records/track_10min_16mb/2026-04-08_SP8192_ParallelResid_ScoreFirstTTT"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus not present")]


def _certify(wrapper: str, folder: str, monkeypatch, vocab: int, **kw):
    monkeypatch.setenv("CONFORM_RECORD", str(CORPUS / folder))
    obj, _, label, extras = load_spec(str(HERE / "conform_real" / f"{wrapper}.py") + ":score", vocab)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.autocast(device_type="cuda") on a CPU-only machine
        return certify(obj, vocab=vocab, name=label, **extras, **kw)


def _statuses(report):
    return {k: c["status"] for k, c in report["conditions"].items()}


@pytest.mark.parametrize("folder", NGRAM_CLUSTER)
def test_hashed_chunk_ngram_fails_c2_under_stress(folder, monkeypatch):
    report = _certify("ngram_cache", folder, monkeypatch, 128, positions=2, profile="stress")
    assert _statuses(report) == {"C1": "pass", "C2": "fail", "C3": "pass", "C4": "pass"}, format_text(report)
    assert report["conditions"]["C2"]["primary"] is True
    assert report["conditions"]["C2"]["min_sum"] > 2  # collisions credit many candidates
    assert {k["name"]: k["value"] for k in report["settings"]["knobs"]}["NGRAM_EVAL_BUCKETS"] == "64"
    assert min(report["settings"]["positions"]) > 16  # probes after the first chunk update


def test_hashed_chunk_ngram_at_its_own_settings_is_never_clean(monkeypatch):
    report = _certify("ngram_cache", NGRAM_CLUSTER[0], monkeypatch, 16, positions=1, candidates=2)
    assert report["verdict"] == "incomplete"
    assert "chunk knob 1000000 >= stream length 96" in report["scale_warnings"][0]


@pytest.mark.parametrize("folder", PPM_CLUSTER)
def test_byte_ppm_mixture_fails_c2_only(folder, monkeypatch):
    report = _certify("ppm_mixer", folder, monkeypatch, 1024, positions=3)
    assert _statuses(report) == {"C1": "pass", "C2": "fail", "C3": "not_measured", "C4": "pass"}, \
        format_text(report)
    assert report["conditions"]["C2"]["primary"] is True
    assert report["verdict"] == "fail"


def test_merged_score_first_ttt_passes_all_four(monkeypatch):
    report = _certify("score_first_ttt", TTT, monkeypatch, 256, positions=3, profile="stress")
    assert report["verdict"] == "pass", format_text(report)
    assert report["scale_warnings"] == []
    c4 = report["conditions"]["C4"]
    assert any("length alone" in n for n in c4["notes"])  # cosine LR keyed to the number of chunks
