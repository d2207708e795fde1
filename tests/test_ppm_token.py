"""Token-normalised PPM: piece tables, exactness against the naive per-token loop, C1-C4."""

import math

import numpy as np
import pytest
import torch

from reference_impl.bpb import build_sentencepiece_luts, stream_lut_bytes
from reference_impl.harness import certify
from reference_impl.ppm import byte_ppm_logprobs
from reference_impl.ppm_token import (
    PieceTable,
    TokenPPM,
    VocabTrie,
    byte_piece_table,
    make_token_ppm,
    naive_token_logprobs,
    synthetic_piece_table,
)
from reference_impl.predictor import run_stream
from reference_impl.text_sources import generated_documents
from reference_impl.tokenizer import encode_documents, load, train_sentencepiece


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory):
    docs = generated_documents(300, seed=11)
    path = tmp_path_factory.mktemp("sp") / "tiny.model"
    train_sentencepiece(docs, 420, str(path))
    return load(str(path)), docs


@pytest.fixture(scope="module")
def table(sp_model):
    return PieceTable.from_sentencepiece(sp_model[0])


@pytest.fixture(scope="module")
def stream(sp_model):
    sp, docs = sp_model
    toks = [t for ids in encode_documents(sp, docs[200:206]) for t in ids]
    return np.array(toks[:130], dtype=np.int64)


def test_piece_table_flags_follow_format_spec(sp_model, table):
    sp, _ = sp_model
    assert table.vocab_size == sp.vocab_size()
    for i in (0, 1, 2, 3):  # pad, bos, eos, unk
        assert table.boundary[i] and table.pieces[i] == b""
    assert sum(table.is_byte) == 256
    nl = sp.piece_to_id("<0x0A>")
    assert table.is_byte[nl] and table.pieces[nl] == b"\n"
    space = sp.piece_to_id("\u2581")
    assert table.leading_space[space] and table.pieces[space] == b""
    assert table.token_bytes(space, prev_boundary=False) == b" "
    assert table.token_bytes(space, prev_boundary=True) == b""


def test_stream_bytes_are_the_text_and_the_bpb_byte_count(sp_model, table):
    sp, docs = sp_model
    ids = encode_documents(sp, docs[:3])
    flat = np.array([t for d in ids for t in d], dtype=np.int64)
    # BOS before each document is a boundary, so no space byte is invented at document starts.
    assert table.stream_bytes(flat) == "".join(docs[:3]).encode("utf-8")
    luts = build_sentencepiece_luts(sp, sp.vocab_size())
    first = len(table.token_bytes(int(flat[0]), True))
    assert stream_lut_bytes(flat, luts) == len(table.stream_bytes(flat)) - first


def test_piece_table_from_pieces_and_validation():
    t = PieceTable.from_pieces(["<pad>", "<0x41>", "\u2581ab", "c\u00e9"], control=[0])
    assert t.pieces == (b"", b"A", b"ab", "c\u00e9".encode())
    assert t.token_bytes(2, False) == b" ab" and t.token_bytes(2, True) == b"ab"
    with pytest.raises(ValueError):
        PieceTable((b"a",), (False, False), (False,), (False,))


def test_trie_shares_prefixes(table):
    trie = VocabTrie(table, order=5)
    strings = {table.token_bytes(v, pb) for v in range(table.vocab_size) for pb in (False, True)} - {b""}
    assert trie.num_nodes - 1 < sum(len(s) for s in strings)
    for s in list(strings)[:50]:
        node = trie.index[s]
        assert trie.depth[node] == len(s)
        assert trie.byte[node] == s[-1]


@pytest.mark.parametrize("exclusion", [True, False])
@pytest.mark.parametrize("order", [2, 5])
def test_trie_matches_naive_per_token_loop(table, stream, order, exclusion):
    fast = TokenPPM(table, order=order, exclusion=exclusion, batch=7)
    rows = fast.stream_logprobs(stream)
    ref = TokenPPM(table, order=order, exclusion=exclusion)
    for t, tok in enumerate(stream):
        if t in (0, 1, 17, 64, 129):
            naive = naive_token_logprobs(ref.counts, table, ref.prev_boundary, exclusion, ref.n_tokens,
                                         ref.n_empty, ref.token_counts)
            assert np.max(np.abs(naive - rows[t])) < 1e-9
        ref.observe(int(tok))


def test_rows_sum_to_one_and_batch_equals_streaming(table, stream):
    pred = TokenPPM(table, order=5, batch=5, snapshot_events=700)  # forces snapshot rebuilds mid-stream
    rows = pred.stream_logprobs(stream)
    assert np.max(np.abs(np.exp(rows).sum(axis=1) - 1.0)) < 1e-12
    streamed = run_stream(TokenPPM(table, order=5, snapshot_events=300), stream)
    assert np.array_equal(streamed, rows) or np.max(np.abs(streamed - rows)) < 1e-12


def test_prefix_invariance(table, stream):
    a = TokenPPM(table, order=5).stream_logprobs(stream)
    other = stream.copy()
    other[60:] = other[60:][::-1]
    b = TokenPPM(table, order=5).stream_logprobs(other)
    assert np.array_equal(a[:61], b[:61])
    assert not np.array_equal(a[61:], b[61:])


def test_control_tokens_get_prefix_only_mass(table, stream):
    pred = TokenPPM(table, order=5)
    row = pred.next_logprobs()
    # Nothing observed: the empty-string class (pad/bos/eos/unk and, at stream start, the bare
    # space piece) holds lam = 0.5 / 1, split evenly by (0 + 1/2) weights.
    empty = [v for v in range(table.vocab_size) if table.token_bytes(v, True) == b""]
    assert np.exp(row[empty]).sum() == pytest.approx(0.5, abs=1e-12)
    for tok in stream[:40]:
        pred.observe(int(tok))
    n_bos = int(np.sum(stream[:40] == 1))
    row = pred.next_logprobs()
    empty = [v for v in range(table.vocab_size) if pred.leaves()[v] < 0]
    lam = (pred.n_empty + 0.5) / (40 + 1.0)
    weights = pred.token_counts[empty] + 0.5
    assert np.exp(row[1]) == pytest.approx(lam * (n_bos + 0.5) / weights.sum(), rel=1e-12)


def test_byte_table_reproduces_byte_ppm():
    data = " ".join(generated_documents(5, seed=2)).encode()[:400]
    toks = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    rows = TokenPPM(byte_piece_table(), order=5).stream_logprobs(toks)
    assert np.max(np.abs(rows[np.arange(len(toks)), toks] - byte_ppm_logprobs(data, order=5))) < 1e-12


def test_bad_tokens_and_orders(table):
    pred = TokenPPM(table, order=2)
    with pytest.raises(ValueError):
        pred.observe(table.vocab_size)
    with pytest.raises(ValueError):
        TokenPPM(table, order=9)
    with pytest.raises(ValueError):
        synthetic_piece_table(1)


def test_threads_setting_is_restored(table):
    before = torch.get_num_threads()
    TokenPPM(table, order=2, threads=1).next_logprobs()
    assert torch.get_num_threads() == before


def test_token_ppm_certifies_through_harness():
    report = certify(make_token_ppm, vocab=48, length=40, positions=3, seed=1)
    assert report["verdict"] == "pass", report["conditions"]
    assert math.isclose(len(report["settings"]["positions"]), 3)


# -- the device path (torch ops for snapshots, syncs and assembly), run on the CPU -------------------


@pytest.mark.parametrize("exclusion", [True, False])
def test_device_path_equals_host_path_on_cpu(table, stream, exclusion):
    # snapshot_events=500 forces several snapshot rebuilds; batch 6 puts syncs mid-stream.
    host = TokenPPM(table, order=5, exclusion=exclusion, batch=6, snapshot_events=500)
    dev = TokenPPM(table, order=5, exclusion=exclusion, batch=6, snapshot_events=500, on_device=True)
    assert not host.on_device and dev.on_device
    a = host.stream_logprobs(stream)
    b = dev.stream_logprobs(stream)
    assert np.max(np.abs(a - b)) < 1e-12
    # The string scores (before the log-sum-exp of the assembly) are the same bits.
    assert np.array_equal(host.string_logprobs(), dev.string_logprobs())


def test_device_snapshot_and_sync_tables_equal_host_tables(table, stream):
    pred = TokenPPM(table, order=5)
    for t in stream[:60]:
        pred.observe(int(t))
    from reference_impl.ppm_token import _Lookup, _flat_at

    base = pred.counts.events - 150
    flat = _flat_at(pred.counts, base)
    host = _Lookup(flat, base, torch.device("cpu"), on_device=False)
    dev = _Lookup(flat, base, torch.device("cpu"), on_device=True)
    host.sync(pred.counts)
    dev.sync(pred.counts)
    for a, b in ((host.ctx, dev.ctx), (host.pair, dev.pair)):
        assert torch.equal(a.keys, b.keys) and torch.equal(a.vals, b.vals)
        assert a.n_ev == b.n_ev > 0
        assert torch.equal(a.ev_uk, b.ev_uk) and torch.equal(a.ev_comp, b.ev_comp)
        assert torch.equal(a.ev_cum, b.ev_cum)


def test_assemble_rows_torch_matches_assemble_row():
    from reference_impl.ppm_token import assemble_row, assemble_rows_torch

    rng = np.random.default_rng(4)
    node_lp = rng.normal(-8, 3, size=(3, 40))
    leaves = rng.integers(0, 40, size=(3, 25))
    leaves[1, [0, 5]] = -1  # row 1 has empty-string tokens; rows 0 and 2 do not
    counts = rng.integers(0, 9, size=(3, 25))
    ntok, nemp = np.array([10.0, 33.0, 7.0]), np.array([0.0, 4.0, 0.0])
    got = assemble_rows_torch(torch.from_numpy(node_lp), torch.from_numpy(leaves), torch.from_numpy(counts),
                              torch.from_numpy(ntok), torch.from_numpy(nemp)).numpy()
    for r in range(3):
        want = assemble_row(node_lp[r], leaves[r], {"n_tokens": ntok[r], "n_empty": nemp[r], "token_counts": counts[r]})
        assert np.max(np.abs(got[r] - want)) < 1e-12
    assert np.allclose(np.exp(got).sum(axis=1), 1.0, atol=1e-12)
