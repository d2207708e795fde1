"""Canonical byte accounting: LUT bytes equal the documents' UTF-8 bytes on normalisation-free text,
and the known LUT bugs are detected."""

import math

import numpy as np
import pytest

from reference_impl import tokenizer as tok
from reference_impl.bpb import (SPACE_PIECE, bits_per_byte, build_sentencepiece_luts, exact_document_bytes,
                                stream_lut_bytes, target_bytes)
from reference_impl.lut_audit import audit_luts, audit_tokenizer, buggy_luts
from reference_impl.text_sources import generated_documents


@pytest.fixture(scope="module")
def sp(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "t.model"
    report = tok.train_sentencepiece(generated_documents(600, seed=11), 400, str(path))
    assert report.has_space_piece and report.docs_dropped == 0
    return tok.load(str(path))


def test_tokenizer_uses_challenge_settings(sp):
    assert (sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id()) == (0, 1, 2, 3)
    assert sp.is_byte(4) and sp.id_to_piece(4) == "<0x00>" and sp.id_to_piece(259) == "<0xFF>"
    assert sp.encode("x 1234", out_type=str)[-4:] == ["1", "2", "3", "4"]  # split digits
    assert not sp.encode("The", out_type=str)[0].startswith(SPACE_PIECE)  # no dummy prefix


def test_lut_bytes_equal_original_utf8_bytes(sp):
    docs = generated_documents(50, seed=99) + ["Caf\u00e9 \u6f22\u5b57 costs 12 \u00a3.", "x"]
    luts = build_sentencepiece_luts(sp, sp.vocab_size())
    stream = np.concatenate([np.array(d, dtype=np.int64) for d in tok.encode_documents(sp, docs)])
    assert stream_lut_bytes(stream, luts) == exact_document_bytes(docs)
    # the unseen CJK characters went through byte fallback, each byte credited exactly once
    ids = sp.encode("\u6f22", out_type=int)
    assert len(ids) == 3 and all(sp.is_byte(i) for i in ids)
    assert target_bytes([ids[0], ids[1]], [ids[1], ids[2]], *luts).tolist() == [1, 1]


def test_leading_space_counted_once_and_never_after_boundary(sp):
    base, space, boundary = build_sentencepiece_luts(sp, sp.vocab_size() + 4)
    assert base.size == sp.vocab_size() + 4 and boundary[-4:].all() and (base[-4:] == 0).all()
    piece = next(i for i in range(sp.vocab_size()) if sp.id_to_piece(i).startswith(SPACE_PIECE)
                 and len(sp.id_to_piece(i)) > 2)
    body = len(sp.id_to_piece(piece)[1:].encode("utf-8"))
    assert base[piece] == body and space[piece]
    normal = sp.piece_to_id("a") if sp.piece_to_id("a") != sp.unk_id() else 300
    got = target_bytes([normal, sp.bos_id(), sp.unk_id()], [piece, piece, piece], base, space, boundary)
    assert got.tolist() == [body + 1, body, body]
    for special in (sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id()):
        assert base[special] == 0 and boundary[special]


def test_bits_per_byte_formula():
    assert bits_per_byte(1000 * math.log(2), 500) == pytest.approx(2.0)


def test_canonical_luts_audit_clean(sp):
    assert audit_luts(sp, *build_sentencepiece_luts(sp, sp.vocab_size())) == []


def test_space_counted_twice_is_detected(sp):
    base, space, bound = buggy_luts(sp, sp.vocab_size(), "space_counted_twice")
    findings = audit_luts(sp, base, space, bound)
    assert [f.kind for f in findings] == ["space_counted_twice"]
    assert findings[0].count == int(space[: sp.vocab_size()].sum())
    # the bug inflates bytes on real text, so BPB would be understated
    docs = generated_documents(20, seed=5)
    stream = np.concatenate([np.array(d) for d in tok.encode_documents(sp, docs)])
    assert stream_lut_bytes(stream, (base, space, bound)) > exact_document_bytes(docs)


def test_byte_fallback_counted_as_three_is_detected(sp):
    findings = audit_luts(sp, *buggy_luts(sp, sp.vocab_size(), "byte_fallback_3"))
    assert [(f.kind, f.count) for f in findings] == [("byte_fallback_miscounted", 256)]
    assert "[3]" in findings[0].detail


def test_boundary_flag_mismatch_and_short_lut_are_reported(sp):
    base, space, bound = build_sentencepiece_luts(sp, sp.vocab_size())
    bound = bound.copy()
    bound[sp.bos_id()] = False
    findings = audit_luts(sp, base, space, bound)
    assert [f.kind for f in findings] == ["other_mismatch"] and "is_boundary" in findings[0].detail
    assert audit_luts(sp, base[:10])[0].kind == "shape"


class _NoSpaceTokenizer:
    def piece_to_id(self, piece):
        return 3

    def unk_id(self):
        return 3


def test_tokenizer_without_space_piece_is_flagged(sp):
    assert audit_tokenizer(sp) == []
    assert [f.kind for f in audit_tokenizer(_NoSpaceTokenizer())] == ["no_space_piece"]
