"""Mixing a neural token model with PPM: the valid token-level mixture, the invalid byte-spread control,
the honest-gain report a reviewer can quote, and the byte-route chain-rule check.

Why all four live together: a PPM "gain" claim is only meaningful next to the same stream scored by a
construction that is a normalised distribution over tokens. `honest_gain_report` puts the claimed
(byte-spread) number and the valid (token-level) number side by side on one stream.

* Valid: p(v) = w * p_nn(v) + (1 - w) * p_ppm(v), both full distributions over the vocabulary, with a
  gate w computed only from the two rows (prefix-only: neural entropy, PPM confidence).
* NEGATIVE CONTROL (invalid, C2): the #1872-family byte-spread mixture. The token's neural probability
  is spread as p^(1/n) over its n bytes and mixed per byte with a byte PPM. Summed over the vocabulary,
  the implied token probabilities do not add to 1 (`byte_spread_implied` makes that measurable).
* Chain rule: a token distribution can be scored byte by byte along its trie, but only with an explicit
  end-of-token factor; without it the byte route under-counts the code length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from reference_impl.ppm import byte_ppm_logprobs
from reference_impl.ppm_token import PieceTable, TokenPPM, VocabTrie, synthetic_piece_table
from reference_impl.bpb import bits_per_byte

LN2 = math.log(2.0)


def _entropy(logp: np.ndarray) -> np.ndarray:
    p = np.exp(logp)
    return -np.sum(np.where(p > 0, p * logp, 0.0), axis=-1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# --------------------------------------------------------------------------------------------------
# Valid token-level mixture
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """Neural weight w = sigmoid(bias + a * H_nn + b * log max p_ppm), or a fixed w.

    Both features are functions of the two emitted rows, so the gate sees only the prefix. With the
    defaults, a confident neural row (low entropy) and an unsure PPM (low max probability) push
    weight to the neural model.
    """

    kind: str = "entropy"  # "fixed", "entropy" (neural entropy), "confidence" (PPM max prob), "both"
    weight: float = 0.7  # fixed weight, and the weight at zero features for the others
    a: float = -0.5
    b: float = 0.5

    def __call__(self, nn_rows: np.ndarray, ppm_rows: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(nn_rows)
        if not 0.0 < self.weight < 1.0:
            raise ValueError("gate weight must be strictly between 0 and 1")
        bias = math.log(self.weight / (1.0 - self.weight))
        if self.kind == "fixed":
            return np.full(rows.shape[0], self.weight)
        z = np.full(rows.shape[0], bias)
        if self.kind in ("entropy", "both"):
            z = z + self.a * _entropy(rows)
        if self.kind in ("confidence", "both"):
            z = z - self.b * np.max(np.atleast_2d(ppm_rows), axis=-1)
        if self.kind not in ("entropy", "confidence", "both"):
            raise ValueError(f"unknown gate kind {self.kind!r}")
        return np.clip(_sigmoid(z), 1e-6, 1 - 1e-6)


def mix_rows(nn_rows: np.ndarray, ppm_rows: np.ndarray, gate: Gate) -> np.ndarray:
    """Token-level linear mixture of two log-distribution matrices [T, V] (each row sums to 1)."""
    w = gate(nn_rows, ppm_rows)[:, None]
    return np.logaddexp(np.log(w) + np.atleast_2d(nn_rows), np.log1p(-w) + np.atleast_2d(ppm_rows))


class TokenMixture:
    """Streaming predictor: neural predictor and token PPM mixed per token with a prefix-only gate."""

    def __init__(self, neural, ppm: TokenPPM, gate: Gate = Gate()):
        if neural.vocab_size != ppm.vocab_size:
            raise ValueError(f"vocab mismatch: neural {neural.vocab_size}, PPM {ppm.vocab_size}")
        self.neural, self.ppm, self.gate = neural, ppm, gate
        self.vocab_size = ppm.vocab_size

    def next_logprobs(self) -> np.ndarray:
        return mix_rows(self.neural.next_logprobs(), self.ppm.next_logprobs(), self.gate)[0]

    def observe(self, token: int) -> None:
        self.neural.observe(token)
        self.ppm.observe(token)

    def stream_logprobs(self, tokens: np.ndarray) -> np.ndarray:
        """From a fresh state, like the streaming protocol (needs a neural `stream_logprobs`)."""
        return mix_rows(self.neural.stream_logprobs(tokens), self.ppm.stream_logprobs(tokens), self.gate)


# --------------------------------------------------------------------------------------------------
# NEGATIVE CONTROL: the invalid byte-spread mixture (#1872 family)
# --------------------------------------------------------------------------------------------------


def byte_spread_claimed_nats(token_gold_logp: np.ndarray, n_bytes: np.ndarray, ppm_byte_logp: np.ndarray,
                             lam: float) -> float:
    """NEGATIVE CONTROL. Total nats the byte-spread mixture claims for a stream (INVALID under C2).

    For a target token with neural log p and n bytes, each of its bytes gets
    log(lam * p^(1/n) + (1 - lam) * p_ppm(byte)); `ppm_byte_logp` holds the byte PPM's log p of every
    target byte, concatenated in order. Zero-byte targets keep their full neural cost (the records'
    code would divide by zero; charging them in full only makes this control look worse, never better).
    """
    if not 0.0 < lam < 1.0:
        raise ValueError("lam must be strictly between 0 and 1")
    n_bytes = np.asarray(n_bytes, dtype=np.int64)
    if int(n_bytes.sum()) != len(ppm_byte_logp):
        raise ValueError("ppm_byte_logp must hold one entry per target byte")
    per_byte_nn = np.repeat(np.where(n_bytes > 0, token_gold_logp / np.maximum(n_bytes, 1), 0.0), n_bytes)
    mixed = np.logaddexp(math.log(lam) + per_byte_nn, math.log1p(-lam) + ppm_byte_logp)
    zero = n_bytes == 0
    return float(-mixed.sum() - token_gold_logp[zero].sum())


def byte_spread_implied(nn_row: np.ndarray, ppm: TokenPPM, lam: float) -> np.ndarray:
    """NEGATIVE CONTROL. Implied byte-spread probability of every token at the PPM's next position.

    q(v) = prod over the n bytes b_j of v of [lam * p_nn(v)^(1/n) + (1 - lam) * p_ppm(b_j | ...)], using
    the PPM's frozen-count byte conditionals along v's trie path; zero-byte tokens get q = 1 (the empty
    product), as the construction implies. The point of the function: sum(q) != 1.
    """
    node_lp = ppm.string_logprobs()
    leaves = ppm.leaves()
    parent = ppm.trie.parent
    edge_lp = np.zeros_like(node_lp)
    edge_lp[1:] = node_lp[1:] - node_lp[parent[1:]]
    q = np.ones(len(nn_row), dtype=np.float64)
    for v, leaf in enumerate(leaves):
        path = []
        node = int(leaf)
        while node > 0:
            path.append(edge_lp[node])
            node = int(parent[node])
        if path:
            n = len(path)
            q[v] = float(np.prod(lam * math.exp(nn_row[v] / n) + (1 - lam) * np.exp(np.array(path))))
    return q


class ByteSpreadControl:
    """NEGATIVE CONTROL predictor: emits the byte-spread implied token scores (not a distribution).

    Causal and deterministic, so only C2 fails: that is what the harness must report.
    """

    def __init__(self, neural, ppm: TokenPPM, lam: float = 0.5):
        self.neural, self.ppm, self.lam = neural, ppm, lam
        self.vocab_size = ppm.vocab_size

    def next_logprobs(self) -> np.ndarray:
        q = byte_spread_implied(self.neural.next_logprobs(), self.ppm, self.lam)
        with np.errstate(divide="ignore"):
            return np.log(q)

    def observe(self, token: int) -> None:
        self.neural.observe(token)
        self.ppm.observe(token)


# --------------------------------------------------------------------------------------------------
# Honest gain report
# --------------------------------------------------------------------------------------------------


def target_byte_counts(tokens: Sequence[int], table: PieceTable) -> np.ndarray:
    """Bytes credited to targets t = 1..T-1 (format_spec 2.2; the first token is never a target)."""
    out = np.zeros(max(len(tokens) - 1, 0), dtype=np.int64)
    for t in range(1, len(tokens)):
        out[t - 1] = len(table.token_bytes(int(tokens[t]), table.boundary[int(tokens[t - 1])]))
    return out


def honest_gain_report(tokens: Sequence[int], nn_rows: np.ndarray, table: PieceTable, order: int = 5,
                       lam: float = 0.5, gate: Gate | None = None, ppm_rows: np.ndarray | None = None) -> dict:
    """Claimed (invalid byte-spread) vs valid (token-level mixture) bits per byte on one stream.

    `nn_rows` [T, V] are the neural model's log-distributions (row t given tokens[:t]). Targets are
    t = 1..T-1 and bytes follow format_spec 2.2. The byte PPM for the invalid construction runs over the
    stream's bytes (the first token's bytes are context only) exactly as the records did; the valid mixture
    uses the token-normalised PPM with the same order and a fixed weight `lam` unless `gate` is given.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    if len(tokens) < 2:
        raise ValueError("need at least 2 tokens (the first is never a target)")
    if nn_rows.shape != (len(tokens), table.vocab_size):
        raise ValueError(f"nn_rows must be [{len(tokens)}, {table.vocab_size}], got {list(nn_rows.shape)}")
    gate = gate or Gate(kind="fixed", weight=lam)
    if ppm_rows is None:
        ppm_rows = TokenPPM(table, order=order, exclusion=True).stream_logprobs(tokens)
    nb = target_byte_counts(tokens, table)
    total_bytes = int(nb.sum())
    if total_bytes == 0:
        raise ValueError("targets carry no bytes; bits per byte is undefined")
    idx = np.arange(1, len(tokens))
    tgt = tokens[1:]
    nn_gold = nn_rows[idx, tgt]
    ppm_gold = ppm_rows[idx, tgt]
    mix_gold = mix_rows(nn_rows[1:], ppm_rows[1:], gate)[np.arange(len(tgt)), tgt]
    stream = table.stream_bytes(tokens)
    first = len(stream) - total_bytes
    byte_lp = byte_ppm_logprobs(stream, order=order, exclusion=True)[first:]
    claimed = byte_spread_claimed_nats(nn_gold, nb, byte_lp, lam)

    def bpb(nats: float) -> float:
        return bits_per_byte(nats, total_bytes)

    neural = bpb(float(-nn_gold.sum()))
    valid = bpb(float(-mix_gold.sum()))
    invalid = bpb(claimed)
    return {
        "targets": int(len(tgt)),
        "bytes": total_bytes,
        "order": order,
        "lam": lam,
        "gate": gate.kind,
        "neural_bpb": neural,
        "ppm_token_bpb": bpb(float(-ppm_gold.sum())),
        "byte_ppm_bpb": bpb(float(-byte_lp.sum())),
        "valid_mixture_bpb": valid,
        "invalid_byte_spread_bpb": invalid,
        "honest_gain_bpb": neural - valid,
        "claimed_gain_bpb": neural - invalid,
    }


# --------------------------------------------------------------------------------------------------
# Chain-rule check
# --------------------------------------------------------------------------------------------------


def byte_route(rows: np.ndarray, tokens: Sequence[int], table: PieceTable) -> dict:
    """Score targets t = 1..T-1 byte by byte along the vocabulary trie.

    For target x with bytes b_1..b_n under the leading-space rule, with S(s) the row's total probability
    of tokens whose bytes start with s: byte j costs -log S(b_1..b_j)/S(b_1..b_j-1), and ending the token
    there costs -log p(x)/S(b_1..b_n). The product telescopes to p(x): the byte route reproduces the
    token code length only when the end-of-token factors are counted.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    trie = VocabTrie(table, order=0)
    leaves = {pb: trie.leaves(table, pb) for pb in (False, True)}
    parent = trie.parent
    ls = trie.level_start
    byte_lp: list[float] = []
    end_lp = np.zeros(max(len(tokens) - 1, 0))
    token_lp = np.zeros(max(len(tokens) - 1, 0))
    for t in range(1, len(tokens)):
        row = np.asarray(rows[t], dtype=np.float64)
        lv = leaves[table.boundary[int(tokens[t - 1])]]
        mass = np.zeros(trie.num_nodes)
        nonempty = lv >= 0
        np.add.at(mass, lv[nonempty], np.exp(row[nonempty]))
        mass[0] += np.exp(row[~nonempty]).sum()  # empty strings end at the root
        for d in range(trie.max_depth, 0, -1):  # subtree sums, deepest level first
            a, b = int(ls[d]), int(ls[d + 1])
            np.add.at(mass, parent[a:b], mass[a:b])
        x = int(tokens[t])
        node = int(lv[x]) if lv[x] >= 0 else 0
        path = []
        while node > 0:
            path.append(node)
            node = int(parent[node])
        for child in reversed(path):
            byte_lp.append(math.log(mass[child]) - math.log(mass[parent[child]]))
        end_node = path[0] if path else 0
        end_lp[t - 1] = row[x] - math.log(mass[end_node])
        token_lp[t - 1] = row[x]
    return {"byte_logp": np.array(byte_lp), "end_logp": end_lp, "token_logp": token_lp}


def chain_rule_check(rows: np.ndarray, tokens: Sequence[int], table: PieceTable) -> dict:
    """Token-route vs byte-route code length (nats) for one predictor's rows on one stream."""
    r = byte_route(rows, tokens, table)
    token_nats = float(-r["token_logp"].sum())
    byte_nats = float(-r["byte_logp"].sum() - r["end_logp"].sum())
    bytes_only = float(-r["byte_logp"].sum())
    return {
        "token_nats": token_nats,
        "byte_route_nats": byte_nats,
        "bytes_without_end_nats": bytes_only,
        "abs_diff": abs(token_nats - byte_nats),
        "bytes": int(len(r["byte_logp"])),
    }


# --------------------------------------------------------------------------------------------------
# Factories (catalog)
# --------------------------------------------------------------------------------------------------


def make_ppm_mixture(vocab_size: int) -> TokenMixture:
    """Toy 'neural' model + token PPM over a synthetic piece table, entropy-gated."""
    from reference_impl.mixing import make_toy_model

    return TokenMixture(make_toy_model(vocab_size), TokenPPM(synthetic_piece_table(vocab_size), order=5),
                        Gate(kind="both"))


def make_byte_spread_control(vocab_size: int) -> ByteSpreadControl:
    """NEGATIVE CONTROL: toy model + byte PPM mixed by p^(1/n) byte spreading (fails C2)."""
    from reference_impl.mixing import make_toy_model

    return ByteSpreadControl(make_toy_model(vocab_size), TokenPPM(synthetic_piece_table(vocab_size), order=5))
