"""PPM mixtures: the valid token-level mix, the invalid byte-spread control, honest gain, chain rule."""

import math

import numpy as np
import pytest

from reference_impl.harness import certify
from reference_impl.mixing import make_toy_model
from reference_impl.ppm_mix import (
    ByteSpreadControl,
    Gate,
    TokenMixture,
    byte_spread_claimed_nats,
    byte_spread_implied,
    chain_rule_check,
    honest_gain_report,
    make_byte_spread_control,
    make_ppm_mixture,
    mix_rows,
    target_byte_counts,
)
from reference_impl.ppm_token import PieceTable, TokenPPM
from reference_impl.text_sources import generated_documents
from reference_impl.tokenizer import encode_documents, load, train_sentencepiece


@pytest.fixture(scope="module")
def sp_setup(tmp_path_factory):
    docs = generated_documents(300, seed=5)
    path = tmp_path_factory.mktemp("sp") / "tiny.model"
    train_sentencepiece(docs, 380, str(path))
    sp = load(str(path))
    table = PieceTable.from_sentencepiece(sp)
    toks = np.array([t for ids in encode_documents(sp, docs[250:256]) for t in ids][:120], dtype=np.int64)
    return table, toks


@pytest.fixture(scope="module")
def toy_rows(sp_setup):
    table, toks = sp_setup
    return make_toy_model(table.vocab_size).stream_logprobs(toks)


@pytest.fixture(scope="module")
def ppm_rows(sp_setup):
    table, toks = sp_setup
    return TokenPPM(table, order=5).stream_logprobs(toks)


def test_chain_rule_byte_route_reproduces_token_code_length(sp_setup, toy_rows):
    table, toks = sp_setup
    r = chain_rule_check(toy_rows, toks, table)
    assert r["abs_diff"] < 1e-9 * max(1.0, r["token_nats"])
    assert r["token_nats"] == pytest.approx(-toy_rows[np.arange(1, len(toks)), toks[1:]].sum(), rel=1e-12)
    assert r["bytes"] == int(target_byte_counts(toks, table).sum())
    # Dropping the end-of-token factors is the byte-level loophole: it always under-counts.
    assert r["bytes_without_end_nats"] < r["token_nats"] - 1.0


def test_chain_rule_holds_for_ppm_rows_too(sp_setup, ppm_rows):
    table, toks = sp_setup
    r = chain_rule_check(ppm_rows, toks, table)
    assert r["abs_diff"] < 1e-9 * r["token_nats"]


def test_valid_mixture_rows_are_distributions(ppm_rows, toy_rows):
    for gate in (Gate("fixed", 0.3), Gate("entropy"), Gate("confidence"), Gate("both")):
        rows = mix_rows(toy_rows, ppm_rows, gate)
        assert np.max(np.abs(np.exp(rows).sum(axis=1) - 1.0)) < 1e-12


def test_fixed_gate_weight_and_entropy_gate_direction(toy_rows, ppm_rows):
    assert np.all(Gate("fixed", 0.3)(toy_rows, ppm_rows) == 0.3)
    sharp = np.log(np.array([[0.97, 0.01, 0.01, 0.01]]))
    flat = np.log(np.full((1, 4), 0.25))
    g = Gate("entropy", 0.5, a=-1.0)
    h_sharp = -(0.97 * math.log(0.97) + 0.03 * math.log(0.01))
    assert g(sharp, flat)[0] == pytest.approx(1 / (1 + math.exp(h_sharp)), rel=1e-12)
    assert g(flat, flat)[0] == pytest.approx(1 / (1 + math.exp(math.log(4))), rel=1e-12)  # = 0.2
    c = Gate("confidence", 0.5, b=1.0)  # w = sigmoid(-log max p_ppm): a sure PPM takes weight
    assert c(flat, sharp)[0] == pytest.approx(1 / (1 + 0.97), rel=1e-12)
    with pytest.raises(ValueError):
        Gate("nope")(toy_rows, ppm_rows)


def test_mixture_streaming_equals_batch(sp_setup):
    table, toks = sp_setup
    def make():
        return TokenMixture(make_toy_model(table.vocab_size), TokenPPM(table, order=3), Gate("both"))
    batch = make().stream_logprobs(toks[:30])
    m = make()
    for t in range(30):
        assert np.max(np.abs(m.next_logprobs() - batch[t])) < 1e-12
        m.observe(int(toks[t]))


def test_byte_spread_control_does_not_sum_to_one(sp_setup):
    table, toks = sp_setup
    ctl = ByteSpreadControl(make_toy_model(table.vocab_size), TokenPPM(table, order=5), lam=0.5)
    sums = []
    for t in range(25):
        sums.append(np.exp(ctl.next_logprobs()).sum())
        ctl.observe(int(toks[t]))
    sums = np.array(sums)
    assert np.all(np.abs(sums - 1.0) > 0.1)
    # Even without the four empty-string control tokens (q = 1 each) the mass is not 1.
    nn = make_toy_model(table.vocab_size)
    ppm = TokenPPM(table, order=5)
    for t in toks[:10]:
        nn.observe(int(t))
        ppm.observe(int(t))
    q = byte_spread_implied(nn.next_logprobs(), ppm, 0.5)
    nonempty = ppm.leaves() >= 0
    assert np.all(q[~nonempty] == 1.0)
    assert abs(q[nonempty].sum() - 1.0) > 0.1


def test_byte_spread_claimed_nats_hand_computed():
    # One 2-byte token with p_nn = 0.25 (per byte 0.5) and PPM byte probs 0.1, 0.3; lam = 0.5.
    got = byte_spread_claimed_nats(np.log([0.25]), np.array([2]), np.log([0.1, 0.3]), 0.5)
    want = -(math.log(0.5 * 0.5 + 0.5 * 0.1) + math.log(0.5 * 0.5 + 0.5 * 0.3))
    assert got == pytest.approx(want, rel=1e-12)
    # A zero-byte target is charged its full neural cost.
    got = byte_spread_claimed_nats(np.log([0.25, 0.5]), np.array([2, 0]), np.log([0.1, 0.3]), 0.5)
    assert got == pytest.approx(want + math.log(2), rel=1e-12)
    with pytest.raises(ValueError):
        byte_spread_claimed_nats(np.log([0.25]), np.array([3]), np.log([0.1, 0.3]), 0.5)


def test_honest_gain_report(sp_setup, toy_rows, ppm_rows):
    table, toks = sp_setup
    rep = honest_gain_report(toks, toy_rows, table, order=5, lam=0.5, ppm_rows=ppm_rows)
    nb = target_byte_counts(toks, table)
    assert rep["bytes"] == int(nb.sum()) and rep["targets"] == len(toks) - 1
    gold = toy_rows[np.arange(1, len(toks)), toks[1:]]
    assert rep["neural_bpb"] == pytest.approx(-gold.sum() / (math.log(2) * nb.sum()), rel=1e-12)
    assert rep["honest_gain_bpb"] == pytest.approx(rep["neural_bpb"] - rep["valid_mixture_bpb"], rel=1e-12)
    assert rep["claimed_gain_bpb"] > rep["honest_gain_bpb"]


def test_honest_gain_is_zero_when_the_neural_model_is_the_ppm(sp_setup, ppm_rows):
    # Mixing a distribution with itself changes nothing: the valid gain is exactly zero, while the
    # byte-spread construction still "finds" a gain.
    table, toks = sp_setup
    rep = honest_gain_report(toks, ppm_rows, table, order=5, lam=0.5, ppm_rows=ppm_rows)
    assert rep["valid_mixture_bpb"] == pytest.approx(rep["ppm_token_bpb"], abs=1e-12)
    assert rep["honest_gain_bpb"] == pytest.approx(0.0, abs=1e-12)
    assert rep["claimed_gain_bpb"] > 0.2


def test_honest_gain_report_rejects_bad_shapes(sp_setup, toy_rows):
    table, toks = sp_setup
    with pytest.raises(ValueError):
        honest_gain_report(toks[:1], toy_rows[:1], table)
    with pytest.raises(ValueError):
        honest_gain_report(toks, toy_rows[:, :10], table)


def test_harness_passes_valid_mixture_and_fails_control_on_c2_only():
    ok = certify(make_ppm_mixture, vocab=40, length=32, positions=3, seed=2)
    assert ok["verdict"] == "pass", ok["conditions"]
    bad = certify(make_byte_spread_control, vocab=40, length=32, positions=3, seed=2)
    assert bad["verdict"] == "fail"
    assert [k for k, c in bad["conditions"].items() if c["status"] != "pass"] == ["C2"]
