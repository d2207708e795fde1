"""SentencePiece BPE training with the challenge's settings (format_spec §1.3).

`max_sentence_length` matters: SentencePiece silently skips training sentences longer than it (in bytes),
so a corpus of long documents can train a tokenizer on a fraction of its text without any error. We set
it above the longest document and report how many documents would have been dropped at the default.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import sentencepiece as spm

SP_DEFAULT_MAX_SENTENCE_LENGTH = 4192
SP_MAX_SENTENCE_LENGTH_CAP = 1 << 20

CHALLENGE_TRAINER_SETTINGS = dict(
    model_type="bpe",
    character_coverage=0.999,
    byte_fallback=True,
    split_digits=True,
    normalization_rule_name="nmt_nfkc",
    add_dummy_prefix=False,
    pad_id=0,
    bos_id=1,
    eos_id=2,
    unk_id=3,
    hard_vocab_limit=False,
)


@dataclass(frozen=True)
class TokenizerTrainReport:
    vocab_size: int
    training_docs: int
    max_sentence_length: int
    docs_over_default_limit: int
    docs_dropped: int
    has_space_piece: bool


def _clean_for_training(doc: str) -> str:
    # The challenge trains on stripped text with NULs replaced; encoding later uses the raw text.
    return doc.replace("\x00", " ").strip()


def train_sentencepiece(docs: list[str], vocab_size: int, model_path: str,
                        num_threads: int = 2) -> TokenizerTrainReport:
    """Train a BPE model on `docs` (training documents only) and write it to `model_path`."""
    texts = [t for t in (_clean_for_training(d) for d in docs) if t]
    if not texts:
        raise ValueError("no non-empty training documents for the tokenizer")
    longest = max(len(t.encode("utf-8")) for t in texts)
    max_len = min(max(SP_DEFAULT_MAX_SENTENCE_LENGTH, longest + 1), SP_MAX_SENTENCE_LENGTH_CAP)
    over_default = sum(len(t.encode("utf-8")) > SP_DEFAULT_MAX_SENTENCE_LENGTH for t in texts)
    dropped = sum(len(t.encode("utf-8")) > max_len for t in texts)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=buf,
        vocab_size=vocab_size,
        max_sentence_length=max_len,
        num_threads=num_threads,
        minloglevel=2,
        **CHALLENGE_TRAINER_SETTINGS,
    )
    with open(model_path, "wb") as f:
        f.write(buf.getvalue())
    sp = load(model_path)
    return TokenizerTrainReport(
        vocab_size=sp.vocab_size(),
        training_docs=len(texts),
        max_sentence_length=max_len,
        docs_over_default_limit=over_default,
        docs_dropped=dropped,
        has_space_piece=sp.piece_to_id("\u2581") != sp.unk_id(),
    )


def load(model_path: str) -> spm.SentencePieceProcessor:
    sp = spm.SentencePieceProcessor()
    if not sp.load(str(model_path)):
        raise ValueError(f"cannot load SentencePiece model {model_path}")
    return sp


def encode_documents(sp: spm.SentencePieceProcessor, docs: list[str]) -> list[list[int]]:
    """Each document becomes [BOS] + ids; the text is not stripped at encode time, as in the challenge."""
    bos = sp.bos_id()
    return [[bos] + ids for ids in sp.encode(docs, out_type=int)]
