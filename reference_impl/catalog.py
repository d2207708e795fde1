"""Named predictors that `auditor conform --list` shows and `auditor conform catalog:NAME` certifies.

Why a registry: reviewers certify the project's own mixers and show the negative controls failing by name,
without writing a file. Factories are "module:attribute" strings imported only when an entry is used, so
listing stays cheap and a new entry is one line in ENTRIES:

    "ppm-byte": Entry("reference_impl.ppm:make_ppm", "byte PPM-D over 256 symbols", "pass", vocab=256),

A factory takes the vocabulary size and returns a predictor (stream and/or batch) or a gold-only scorer.
`violates` lists the conditions a negative control must be flagged with (tests hold the harness to it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Entry:
    factory: str  # "package.module:callable", called as callable(vocab_size)
    description: str
    expected: str  # verdict the harness must give: "pass" or "fail"
    violates: tuple[str, ...] = ()  # conditions a negative control must fail
    vocab: int | None = None  # fixed alphabet (e.g. 256 for byte models); None: use --vocab

    def load(self) -> Callable[[int], Any]:
        module, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module), attr)


ENTRIES: dict[str, Entry] = {
    "ngram-backoff": Entry("reference_impl.ngram:make_ngram", "5-order hashed token n-gram, Witten-Bell/Dirichlet backoff to a causal unigram (stream+batch)", "pass"),
    "ngram-backoff-scorer": Entry("reference_impl.catalog:_ngram_scorer", "the same n-gram through its vectorised gold-only scorer (shape b)", "pass"),
    "tilt-copy": Entry("reference_impl.tilt:make_tilted_ngram", "one-token exponential tilt toward the copy-model hint, closed-form Z", "pass"),
    "mix-linear-entropy": Entry("reference_impl.mixing:make_linear_entropy", "linear mix of n-gram and toy model, entropy-gated weights", "pass"),
    "mix-linear-confidence": Entry("reference_impl.mixing:make_linear_confidence", "linear mix of n-gram and toy model, confidence-gated weights", "pass"),
    "mix-loglinear": Entry("reference_impl.mixing:make_loglinear", "log-linear (geometric, renormalised) mix of n-gram and toy model", "pass"),
    "mix-fixed-share": Entry("reference_impl.mixing:make_fixed_share", "Bayesian mixture with fixed-share weights updated from scored tokens", "pass"),
    "gpt-tiny": Entry("reference_impl.neural:make_tiny_gpt", "the reference GPT (2 layers, d=32, float64) through V3 sliding windows", "pass"),
    "toy-model": Entry("reference_impl.mixing:make_toy_model", "deterministic low-rank bigram 'neural' stand-in (prefix -> logits)", "pass"),
    "ppm-byte": Entry("reference_impl.ppm_token:make_byte_ppm", "byte PPM-D order 5 with exclusion, as a predictor over the 256 byte values", "pass", vocab=256),
    "ppm-token": Entry("reference_impl.ppm_token:make_token_ppm", "token-normalised PPM-D order 5: every token's byte string scored on a trie, renormalised", "pass"),
    "mix-ppm-token": Entry("reference_impl.ppm_mix:make_ppm_mixture", "toy model + token-normalised PPM, token-level linear mix, entropy/confidence gate", "pass"),
    "violation-ppm-byte-spread": Entry("reference_impl.ppm_mix:make_byte_spread_control", "NEGATIVE CONTROL: p^(1/n) byte-spread mix of toy model and byte PPM (#1872 family)", "fail", ("C2",)),
    "violation-hashed-target-key": Entry("reference_impl.violations:hashed_target_key_scorer", "NEGATIVE CONTROL: #779-style cache, target in the hash key, gold-only", "fail", ("C2",)),
    "violation-target-gate": Entry("reference_impl.violations:make_target_gate", "NEGATIVE CONTROL: mixture weight chosen from p(x_t) of the realised token", "fail", ("C1",)),
    "violation-update-before-score": Entry("reference_impl.violations:make_update_before_score", "NEGATIVE CONTROL: vectorised cache counts x_t before scoring it", "fail", ("C3",)),
    "violation-update-before-score-scorer": Entry("reference_impl.violations:update_before_score_scorer", "NEGATIVE CONTROL: gold-only cache updated before scoring", "fail", ("C3",)),
    "violation-two-pass-min": Entry("reference_impl.violations:two_pass_min_scorer", "NEGATIVE CONTROL: best of a score-first pass and a full-cache rescoring pass", "fail", ("C4",)),
}


def _ngram_scorer(vocab_size: int):
    """The n-gram's gold-only scorer, reporting its score-then-count order to the harness's trace."""
    from reference_impl.ngram import NGramBackoff

    model = NGramBackoff(vocab_size, order=5)

    def score(tokens, trace=None):
        if trace is not None:
            trace.consumed(0)  # the first token is context, never scored
            for t in range(1, len(tokens)):  # each count includes only strictly earlier tokens
                trace.scored(t)
                trace.consumed(t)
        return model.score(tokens)

    return score


def get(name: str) -> Entry:
    """The entry called `name`; KeyError lists the known names."""
    try:
        return ENTRIES[name]
    except KeyError:
        raise KeyError(f"unknown catalog entry {name!r}; known: {', '.join(sorted(ENTRIES))}") from None


def factory_for(name: str, vocab: int | None) -> tuple[Callable[[], Any] | Callable[[int], Any], int]:
    """(zero-argument factory of fresh targets, vocabulary) for a catalog entry."""
    entry = get(name)
    if entry.vocab is not None and vocab is not None and vocab != entry.vocab:
        raise ValueError(f"{name} has a fixed alphabet of {entry.vocab}, not {vocab}")
    v = entry.vocab if entry.vocab is not None else vocab
    if v is None:
        raise ValueError(f"{name}: pass --vocab")
    fn = entry.load()
    return (lambda: fn(v)), v
