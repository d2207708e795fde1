"""Byte PPM-D: the sequential oracle against hand-computed values, and the vectorised version against it."""

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference_impl import ppm_gram, ppm_kernel
from reference_impl.ppm import (
    bits_per_byte,
    byte_ppm_distributions,
    byte_ppm_logprobs,
    byte_ppm_logprobs_fast,
    byte_ppm_logprobs_reference,
    default_backend,
)
from reference_impl.text_sources import generated_documents

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "dev_corpus"


def _generated_text(n_bytes: int, seed: int = 3) -> bytes:
    return " ".join(generated_documents(400, seed=seed)).encode("utf-8")[:n_bytes]


def test_oracle_hand_computed_with_exclusion():
    # a: order -1 (1/256). b: order 0 {a:1} escapes 1/2, order -1 over 255 -> 1/510.
    # a: order 0 {a:1,b:1}: (2-1)/4. b: order 1 context "a" {b:1}: 1/2.
    got = byte_ppm_logprobs_reference(b"abab", order=1, exclusion=True)
    want = np.log([1 / 256, 1 / 510, 1 / 4, 1 / 2])
    assert np.allclose(got, want, rtol=0, atol=1e-15)


def test_oracle_hand_computed_without_exclusion():
    got = byte_ppm_logprobs_reference(b"abab", order=1, exclusion=False)
    want = np.log([1 / 256, 1 / 512, 1 / 4, 1 / 2])
    assert np.allclose(got, want, rtol=0, atol=1e-15)


def test_oracle_hand_computed_all_excluded_context_is_skipped():
    # Position 3 ('c' after "aa"): order 2 "aa" holds {a:1}, escape 1/2. With exclusion, order 1
    # "a" {a:2} and order 0 {a:3} have every symbol excluded -> skipped; order -1 over 255.
    got = byte_ppm_logprobs_reference(b"aaac", order=2, exclusion=True)
    assert got[3] == pytest.approx(math.log(0.5 / 255), abs=1e-12)
    # Without exclusion they are used: escapes 1/(2*2) and 1/(2*3), then uniform over 256.
    got = byte_ppm_logprobs_reference(b"aaac", order=2, exclusion=False)
    assert got[3] == pytest.approx(math.log(0.5 * 0.25 / 6 / 256), abs=1e-12)


COMPILED = ["gram", "trie"] if ppm_kernel.HAVE_NUMBA else []
BACKENDS = ["sort", "trie-python", "gram-python"] + COMPILED


def test_public_function_is_the_fast_path_and_matches_oracle():
    text = _generated_text(5000)
    got = byte_ppm_logprobs(text)
    assert got.dtype == np.float64 and got.shape == (5000,)
    ref = byte_ppm_logprobs_reference(text)
    assert np.max(np.abs(got - ref)) < 1e-9
    assert default_backend() == ("gram" if ppm_kernel.HAVE_NUMBA else "sort")
    assert default_backend(7) == ("trie" if ppm_kernel.HAVE_NUMBA else "sort")
    if ppm_kernel.HAVE_NUMBA:
        assert np.array_equal(got, ref)  # the kernels repeat the oracle's float operations exactly


@pytest.mark.parametrize("exclusion", [True, False])
@pytest.mark.parametrize("order", [0, 1, 2, 3, 5, 7, 8])
@pytest.mark.parametrize("backend", ["sort", "trie", "gram"])
def test_fast_matches_oracle_on_generated_text(order, exclusion, backend):
    if backend != "sort" and not ppm_kernel.HAVE_NUMBA:
        pytest.skip("numba not installed")
    if backend == "gram" and order > 6:
        pytest.skip("gram kernel: orders <= 6")
    text = _generated_text(6000, seed=order)
    fast = byte_ppm_logprobs_fast(text, order=order, exclusion=exclusion, backend=backend, max_elems=61)
    ref = byte_ppm_logprobs_reference(text, order=order, exclusion=exclusion)
    if backend == "sort":
        assert np.max(np.abs(fast - ref)) < 1e-9
    else:
        assert np.array_equal(fast, ref)


@pytest.mark.parametrize("backend", ["trie-python", "gram-python"])
@pytest.mark.parametrize("exclusion", [True, False])
def test_uncompiled_kernel_is_bit_identical(exclusion, backend):
    # The kernels' Python source is what numba compiles; run as Python it must give the same bits, so the
    # algorithms are tested even where numba is absent.
    text = _generated_text(1500, seed=5)
    got = byte_ppm_logprobs_fast(text, order=4, exclusion=exclusion, backend=backend)
    assert np.array_equal(got, byte_ppm_logprobs_reference(text, order=4, exclusion=exclusion))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("exclusion", [True, False])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_fast_matches_oracle_when_contexts_see_all_256_bytes(order, exclusion, backend):
    # Contexts "\x01" and "\x00\x01" are followed by every byte value, so distinct-symbol counts reach 255
    # (the widest value the packed per-start word holds) and exclusion sets get that large too.
    rng = np.random.default_rng(order)
    triples = b"".join(bytes([0, 1, s]) for s in rng.permutation(256))
    text = triples * 2 + bytes(rng.integers(0, 256, 700, dtype=np.uint8))
    fast = byte_ppm_logprobs_fast(text, order=order, exclusion=exclusion, backend=backend)
    ref = byte_ppm_logprobs_reference(text, order=order, exclusion=exclusion)
    assert np.max(np.abs(fast - ref)) < 1e-9


@pytest.mark.parametrize("backend", ["sort", "trie", "gram"])
def test_fast_default_path_matches_oracle_on_longer_text(backend):
    if backend != "sort" and not ppm_kernel.HAVE_NUMBA:
        pytest.skip("numba not installed")
    # Long enough that order-5 contexts repeat often (large counts, long exclusion lists, many escapes).
    text = _generated_text(60_000, seed=11)
    fast = byte_ppm_logprobs_fast(text, order=5, exclusion=True, backend=backend)
    ref = byte_ppm_logprobs_reference(text, order=5, exclusion=True)
    assert np.max(np.abs(fast - ref)) < 1e-9
    assert bits_per_byte(fast) == pytest.approx(bits_per_byte(ref), abs=1e-12)


def test_trie_grows_its_state_and_reports_it():
    # An initial capacity of 8 entries forces many growths mid-pass; the result must not change.
    text = _generated_text(400, seed=2)
    stats = {}
    got = ppm_kernel.trie_logprobs(text, 5, True, compiled=False, capacity=8, stats=stats)
    assert np.array_equal(got, byte_ppm_logprobs_reference(text, order=5))
    # Entries = distinct (context, symbol) pairs over orders 0..5 (the (k+1)-grams), plus the root.
    want = 1 + sum(len({text[i - k:i + 1] for i in range(k, len(text))}) for k in range(6))
    assert stats["entries"] == want == 1404
    assert stats["state_bytes"] == stats["capacity"] * ppm_kernel.ENTRY_BYTES
    # The gram kernel holds the same entries (plus its hash table), growing from 8 as well.
    gstats = {}
    got = ppm_gram.gram_logprobs(text, 5, True, compiled=False, capacity=8, stats=gstats)
    assert np.array_equal(got, byte_ppm_logprobs_reference(text, order=5))
    assert gstats["entries"] == 1404
    assert gstats["bytes_in_use"] == 1404 * 24 + 4096 * 4  # records, and a table grown to 4096 slots


@pytest.mark.parametrize("backend", ["trie-python", "gram-python"])
def test_state_past_the_budget_is_a_memory_error(backend):
    # Random bytes: almost every gram of length >= 3 is new (~5 entries per byte), so the state outgrows its
    # initial 65,536 entries after ~13,000 bytes, and growing it passes a 1 MiB budget.
    data = bytes(np.random.default_rng(0).integers(0, 256, 16_000, dtype=np.uint8))
    with pytest.raises(MemoryError, match="over the budget"):
        byte_ppm_logprobs_fast(data, order=5, backend=backend, max_state_bytes=1 << 20)
    assert ppm_kernel.memory_budget() > 1 << 30


@settings(max_examples=60, deadline=None)
@given(
    data=st.one_of(st.binary(max_size=300), st.lists(st.integers(0, 3), max_size=300).map(bytes)),
    order=st.integers(0, 6),
    exclusion=st.booleans(),
    backend=st.sampled_from(BACKENDS),
)
def test_fast_matches_oracle_property(data, order, exclusion, backend):
    fast = byte_ppm_logprobs_fast(data, order=order, exclusion=exclusion, backend=backend, max_elems=3)
    ref = byte_ppm_logprobs_reference(data, order=order, exclusion=exclusion)
    assert fast.shape == ref.shape
    assert np.max(np.abs(fast - ref), initial=0.0) < 1e-9


def test_fast_matches_oracle_on_real_text():
    files = sorted(CORPUS.glob("**/README.md")) if CORPUS.is_dir() else []
    if not files:
        pytest.skip("dev corpus not available")
    text = b"".join(f.read_bytes() for f in files)[:40_000]
    for exclusion in (True, False):
        ref = byte_ppm_logprobs_reference(text, order=5, exclusion=exclusion)
        for backend in ["sort"] + COMPILED:
            fast = byte_ppm_logprobs_fast(text, order=5, exclusion=exclusion, backend=backend)
            assert np.max(np.abs(fast - ref)) < 1e-9


def test_exclusion_distribution_is_normalised_and_matches_logprobs():
    text = _generated_text(1500)
    dist = byte_ppm_distributions(text, order=3, exclusion=True)
    assert np.max(np.abs(dist.sum(axis=1) - 1.0)) < 1e-12
    realised = np.log(dist[np.arange(len(text)), np.frombuffer(text, dtype=np.uint8)])
    assert np.max(np.abs(realised - byte_ppm_logprobs_reference(text, order=3))) < 1e-12


def test_no_exclusion_is_subnormalised_and_reported():
    text = _generated_text(1500)
    dist = byte_ppm_distributions(text, order=3, exclusion=False)
    sums = dist.sum(axis=1)
    # The first byte (no context) and the second (one context) are still whole; later rows waste mass.
    assert sums[0] == pytest.approx(1.0, abs=1e-12)
    assert sums[1] == pytest.approx(1.0 - 0.5 / 256, abs=1e-12)  # 'a' re-offered at order -1
    assert sums[2:].max() < 1.0 - 1e-6
    assert 0.8 < sums[100:].mean() < 0.9  # on this text ~15% of the mass is wasted
    realised = np.log(dist[np.arange(len(text)), np.frombuffer(text, dtype=np.uint8)])
    assert np.max(np.abs(realised - byte_ppm_logprobs_reference(text, order=3, exclusion=False))) < 1e-12


def test_empty_and_bad_input():
    assert byte_ppm_logprobs(b"").shape == (0,)
    assert byte_ppm_logprobs(b"x")[0] == pytest.approx(-math.log(256))
    with pytest.raises(TypeError):
        byte_ppm_logprobs("text")
    with pytest.raises(ValueError):
        byte_ppm_logprobs(b"abc", order=-1)
    with pytest.raises(ValueError):
        byte_ppm_logprobs_fast(b"abc", order=40, backend="sort")
    with pytest.raises(ValueError):
        byte_ppm_logprobs_fast(b"abc", order=7, backend="gram-python")
    with pytest.raises(ValueError):
        byte_ppm_logprobs_fast(b"abc", backend="gpu")
    # The trie has no order limit.
    deep = byte_ppm_logprobs_fast(b"abcabcabc", order=40, backend="trie-python")
    assert np.array_equal(deep, byte_ppm_logprobs_reference(b"abcabcabc", order=40))


def test_bits_per_byte():
    assert bits_per_byte(np.log(np.full(8, 0.5))) == pytest.approx(1.0)
    assert math.isnan(bits_per_byte(np.zeros(0)))
