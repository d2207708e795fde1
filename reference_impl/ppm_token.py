"""Token-normalised PPM-D: a byte PPM turned into a proper distribution over the token alphabet.

Why: byte-PPM "mixtures" were excluded because their implied token distribution does not sum to 1. The
valid construction scores every vocabulary token's byte string under the PPM, given the byte history,
and renormalises over the vocabulary. Here that is exact and fast enough to measure: the vocabulary's
byte strings form a trie, each trie edge is one PPM byte probability, and all edges are scored at once
(torch, any device) for a batch of positions.

Conventions (documented choices):
* Byte strings follow the BPB byte accounting (format_spec 2.1/2.2): a piece's leading U+2581 becomes a
  0x20 byte only when the previous token is not a boundary (control/unknown/unused, or the stream
  start); byte-fallback pieces are their single byte; the rest is the piece's UTF-8.
* Counts are frozen at the token boundary: a candidate's bytes are scored with the contexts extending
  into the candidate but with the counts of the observed history (the PPM is updated only by the bytes
  of tokens actually observed, after they are scored).
* Tokens whose byte string is empty at a position (control tokens always; a bare "U+2581" piece after a
  boundary) cannot be scored by a byte model. They share a prefix-only mass
  lam = (e + 1/2) / (t + 1), where t tokens were observed and e of them were empty at their position,
  split among them by (count + 1/2). Everything else gets (1 - lam) times the renormalised PPM score,
  so each row sums to 1 over the whole vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

MAX_ORDER = 6  # context bytes are packed into 48 bits of an int64 key
_SPACE = "\u2581"


# --------------------------------------------------------------------------------------------------
# Piece table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PieceTable:
    """Per-token byte strings and flags, enough to build the predictor without sentencepiece."""

    pieces: tuple[bytes, ...]  # base bytes: leading U+2581 removed; byte-fallback -> its byte
    leading_space: tuple[bool, ...]
    boundary: tuple[bool, ...]  # control / unknown / unused: no bytes, resets the leading-space rule
    is_byte: tuple[bool, ...]

    def __post_init__(self) -> None:
        n = len(self.pieces)
        if not (len(self.leading_space) == len(self.boundary) == len(self.is_byte) == n):
            raise ValueError("piece table columns have different lengths")
        if n == 0:
            raise ValueError("piece table is empty")

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def token_bytes(self, token: int, prev_boundary: bool) -> bytes:
        """The bytes token `token` contributes after a token whose boundary flag is `prev_boundary`."""
        if self.boundary[token]:
            return b""
        if self.leading_space[token] and not prev_boundary:
            return b" " + self.pieces[token]
        return self.pieces[token]

    @classmethod
    def from_pieces(cls, pieces: Sequence[str], control: Sequence[int] = ()) -> "PieceTable":
        """Build from sentencepiece-style piece strings ("<0xNN>" = byte fallback, ids in `control`)."""
        ctrl = set(control)
        base, lead, bound, isb = [], [], [], []
        for i, p in enumerate(pieces):
            if i in ctrl:
                base.append(b"")
                lead.append(False)
                bound.append(True)
                isb.append(False)
                continue
            if len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
                base.append(bytes([int(p[3:5], 16)]))
                lead.append(False)
                bound.append(False)
                isb.append(True)
                continue
            space = p.startswith(_SPACE)
            base.append((p[1:] if space else p).encode("utf-8"))
            lead.append(space)
            bound.append(False)
            isb.append(False)
        return cls(tuple(base), tuple(lead), tuple(bound), tuple(isb))

    @classmethod
    def from_sentencepiece(cls, sp) -> "PieceTable":
        """From a sentencepiece processor (or a model path), following format_spec 2.1."""
        if isinstance(sp, (str, bytes)) or hasattr(sp, "__fspath__"):
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=str(sp))
        base, lead, bound, isb = [], [], [], []
        for i in range(sp.vocab_size()):
            if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
                base.append(b"")
                lead.append(False)
                bound.append(True)
                isb.append(False)
            elif sp.is_byte(i):
                p = sp.id_to_piece(i)
                base.append(bytes([int(p[3:5], 16)]))
                lead.append(False)
                bound.append(False)
                isb.append(True)
            else:
                p = sp.id_to_piece(i)
                space = p.startswith(_SPACE)
                base.append((p[1:] if space else p).encode("utf-8"))
                lead.append(space)
                bound.append(False)
                isb.append(False)
        return cls(tuple(base), tuple(lead), tuple(bound), tuple(isb))

    def stream_bytes(self, tokens: Sequence[int]) -> bytes:
        """Concatenated bytes of a token stream (stream start counts as a boundary)."""
        out = bytearray()
        prev_b = True
        for t in tokens:
            out += self.token_bytes(int(t), prev_b)
            prev_b = self.boundary[int(t)]
        return bytes(out)


# --------------------------------------------------------------------------------------------------
# PPM count state (exact, incremental)
# --------------------------------------------------------------------------------------------------

_TAG_PAIR, _TAG_N, _TAG_U, _TAG_M = 0, 1, 2, 3


def ctx_key(ctx: bytes) -> int:
    """Key of a context: order in bits 48.., bytes packed big-endian (last byte lowest) below."""
    return (len(ctx) << 48) | int.from_bytes(ctx, "big")


class PPMCounts:
    """Byte PPM counts over an observed history, kept two ways.

    `tables` is the readable form (context bytes -> symbol counts) used by the naive scorer. The flat
    dicts hold what the vectorised scorer looks up: pair counts, per-context n and u, and
    M(c) = sum over the symbols of order-k context c of their counts in its order-(k-1) suffix (the
    count that exclusion removes one order down). Every change is also appended to an event log so a
    snapshot plus the log answers "value as of event h" for any h.
    """

    def __init__(self, order: int):
        if not 0 <= order <= MAX_ORDER:
            raise ValueError(f"token PPM order must be in 0..{MAX_ORDER}, got {order}")
        self.order = order
        self.history = bytearray()
        self.tables: list[dict[bytes, dict[int, int]]] = [{} for _ in range(order + 1)]
        self.flat: dict[int, int] = {}
        self.ext: dict[int, list[int]] = {}
        self.ev_keys: list[int] = []  # events since ev_offset (older ones are trimmed)
        self.ev_inc: list[int] = []
        self.ev_offset = 0

    @property
    def events(self) -> int:
        """Absolute number of events so far."""
        return self.ev_offset + len(self.ev_keys)

    def trim(self, event: int) -> None:
        """Forget events before absolute index `event` (no position before it will be scored again)."""
        cut = event - self.ev_offset
        if cut > 0:
            del self.ev_keys[:cut]
            del self.ev_inc[:cut]
            self.ev_offset = event

    def _bump(self, key: int, inc: int) -> None:
        self.flat[key] = self.flat.get(key, 0) + inc
        self.ev_keys.append(key)
        self.ev_inc.append(inc)

    def add_byte(self, x: int) -> None:
        h = self.history
        i = len(h)
        ckeys = []
        for k in range(min(self.order, i) + 1):
            ctx = bytes(h[i - k:i])
            counts = self.tables[k].setdefault(ctx, {})
            old = counts.get(x, 0)
            counts[x] = old + 1
            ck = ctx_key(ctx)
            ckeys.append(ck)
            pk = (ck << 8) | x
            self._bump((pk << 2) | _TAG_PAIR, 1)
            self._bump((ck << 2) | _TAG_N, 1)
            if old == 0:
                self._bump((ck << 2) | _TAG_U, 1)
            # Order-(k+1) contexts whose suffix is ctx and which already hold x: their M grows by one.
            for c2 in self.ext.get(pk, ()):
                self._bump((c2 << 2) | _TAG_M, 1)
            if k >= 1 and old == 0:
                # x joins this context's set: M gains x's (already updated) count one order down.
                pprev = (ckeys[k - 1] << 8) | x
                self._bump((ck << 2) | _TAG_M, self.tables[k - 1][bytes(h[i - k + 1:i])][x])
                self.ext.setdefault(pprev, []).append(ck)
        h.append(x)

    def add_bytes(self, data: bytes) -> None:
        for x in data:
            self.add_byte(x)


# --------------------------------------------------------------------------------------------------
# Naive scorer (the oracle): one PPM call per (token, byte)
# --------------------------------------------------------------------------------------------------


def frozen_byte_logp(tables, ext: bytes, i: int, avail: int, order: int, exclusion: bool) -> float:
    """log p(ext[i] | ext[:i]) under PPM-D with frozen `tables`; `avail` = context bytes available."""
    x = ext[i]
    logp = 0.0
    excluded: set[int] = set()
    for k in range(min(order, avail), -1, -1):
        counts = tables[k].get(bytes(ext[i - k:i]))
        if not counts:
            continue
        active = {s: c for s, c in counts.items() if s not in excluded} if exclusion else counts
        if not active:
            continue
        n = sum(active.values())
        if x in active:
            return logp + math.log((2 * active[x] - 1) / (2 * n))
        logp += math.log(len(active) / (2 * n))
        if exclusion:
            excluded.update(active)
    return logp - math.log(256 - len(excluded))


def naive_string_logps(counts: PPMCounts, strings: Sequence[bytes], exclusion: bool) -> np.ndarray:
    """log P(string | history) for each string, one byte probability at a time."""
    k = counts.order
    tail = bytes(counts.history[-k:]) if k else b""
    hlen = len(counts.history)
    out = np.zeros(len(strings), dtype=np.float64)
    for s_i, s in enumerate(strings):
        ext = tail + s
        lp = 0.0
        for j in range(len(s)):
            lp += frozen_byte_logp(counts.tables, ext, len(tail) + j, hlen + j, k, exclusion)
        out[s_i] = lp
    return out


# --------------------------------------------------------------------------------------------------
# Trie of the vocabulary's byte strings
# --------------------------------------------------------------------------------------------------


class VocabTrie:
    """All non-empty byte strings of both leading-space variants, nodes numbered by depth."""

    def __init__(self, table: PieceTable, order: int):
        strings = set()
        for v in range(table.vocab_size):
            for pb in (False, True):
                s = table.token_bytes(v, pb)
                if s:
                    strings.add(s)
        prefixes = {b""}
        for s in strings:
            for d in range(1, len(s) + 1):
                prefixes.add(s[:d])
        nodes = sorted(prefixes, key=lambda p: (len(p), p))
        index = {p: i for i, p in enumerate(nodes)}
        self.num_nodes = len(nodes)
        self.depth = np.array([len(p) for p in nodes], dtype=np.int64)
        self.parent = np.array([index[p[:-1]] if p else -1 for p in nodes], dtype=np.int64)
        self.byte = np.array([p[-1] if p else 0 for p in nodes], dtype=np.int64)
        internal = sorted({int(q) for q in self.parent[1:]})
        self.internal = np.array(internal, dtype=np.int64)  # nodes with children, ascending
        row = np.full(self.num_nodes, -1, dtype=np.int64)
        row[self.internal] = np.arange(len(internal))
        self.edge_row = row[self.parent[1:]]  # edge e = node e+1; its parent's internal row
        # Last `order` bytes of each internal node's path, right-aligned, and where each of the
        # `order` context slots comes from in [history tail (order bytes) | path tail (order bytes)].
        K = order
        self.path_tail = np.zeros((len(internal), max(K, 1)), dtype=np.int64)
        src = np.zeros((len(internal), max(K, 1)), dtype=np.int64)
        for r, node in enumerate(internal):
            p = nodes[node]
            d = min(len(p), K)
            if d:
                self.path_tail[r, K - d:] = list(p[-d:])
            for q in range(K):
                src[r, q] = q + d if q < K - d else K + q
        self.slot_src = src
        self.internal_depth = self.depth[self.internal]
        self.max_depth = int(self.depth.max())
        self.level_start = np.searchsorted(self.depth, np.arange(self.max_depth + 2))
        self.index = index

    def leaves(self, table: PieceTable, prev_boundary: bool) -> np.ndarray:
        """Node of each token's byte string in this variant; -1 where the string is empty."""
        out = np.full(table.vocab_size, -1, dtype=np.int64)
        for v in range(table.vocab_size):
            s = table.token_bytes(v, prev_boundary)
            if s:
                out[v] = self.index[s]
        return out


# --------------------------------------------------------------------------------------------------
# Vectorised lookups: snapshot + event log
# --------------------------------------------------------------------------------------------------


class _Table:
    """One family of flat-dict entries (contexts: n, u, M; or pairs: c) as of any event index.

    Values come from a sorted snapshot plus the events logged since it; queries are deduplicated
    (torch.unique) so each distinct key costs one cache-friendly binary search.
    """

    def __init__(self, flat: dict[int, int], tags: tuple[int, ...], base_event: int, device: torch.device,
                 on_device: bool = False):
        self.device = device
        self.tags = tags
        self.on_device = on_device
        keys = np.fromiter(flat.keys(), dtype=np.int64, count=len(flat))
        vals = np.fromiter(flat.values(), dtype=np.int64, count=len(flat))
        if on_device:
            self.keys, self.vals = self._build_torch(torch.from_numpy(keys).to(device), torch.from_numpy(vals).to(device))
        else:
            keys, vals, cols = self._select(keys, vals)
            uk, inv = np.unique(keys, return_inverse=True)
            mat = np.zeros((len(uk), len(tags)), dtype=np.int64)
            mat[inv, cols] = vals
            self.keys = torch.from_numpy(uk).to(device)
            self.vals = torch.from_numpy(mat).to(device)
        self.base_event = base_event
        self._ev_n = -1
        self.n_ev = 0
        self._static_cache: dict[int, tuple] = {}

    def _select(self, tagged: np.ndarray, vals: np.ndarray):
        tag = tagged & 3
        keep = np.isin(tag, self.tags)
        cols = np.searchsorted(np.array(self.tags), tag[keep])
        return tagged[keep] >> 2, vals[keep], cols

    # Device-side twins of the numpy steps (same results; tests compare them on the CPU). On a GPU the
    # sorts and scatters of a snapshot rebuild and of each sync then run where the lookups run; only the
    # dict's keys and values (or the new events) cross from the host.

    def _select_torch(self, tagged: torch.Tensor):
        tags = torch.tensor(self.tags, dtype=torch.int64, device=tagged.device)  # ascending
        tag = tagged & 3
        keep = torch.isin(tag, tags)
        return keep, torch.searchsorted(tags, tag[keep])

    def _build_torch(self, tagged: torch.Tensor, vals: torch.Tensor):
        keep, cols = self._select_torch(tagged)
        uk, inv = torch.unique(tagged[keep] >> 2, return_inverse=True)
        mat = torch.zeros((len(uk), len(self.tags)), dtype=torch.int64, device=tagged.device)
        mat[inv, cols] = vals[keep]
        return uk, mat

    def sync(self, ev_keys: np.ndarray, ev_inc: np.ndarray) -> None:
        """Index the events logged since the snapshot (ev_* start at the snapshot's event index)."""
        e = len(ev_keys)
        if e == self._ev_n:
            return
        self._ev_n = e
        if self.on_device:
            self._sync_torch(torch.from_numpy(ev_keys).to(self.device), torch.from_numpy(ev_inc).to(self.device))
            return
        keys, inc, cols = self._select(ev_keys, ev_inc)
        when = np.flatnonzero(np.isin(ev_keys & 3, self.tags))
        self.n_ev = len(keys)
        if not len(keys):
            return
        uk, inv = np.unique(keys, return_inverse=True)
        comp = inv * (e + 1) + when
        o = np.argsort(comp)
        incm = np.zeros((len(keys), len(self.tags)), dtype=np.int64)
        incm[np.arange(len(keys)), cols] = inc
        cum = np.concatenate([np.zeros((1, len(self.tags)), dtype=np.int64), np.cumsum(incm[o], axis=0)])
        dev = self.device
        self.ev_uk = torch.from_numpy(uk).to(dev)
        self.ev_comp = torch.from_numpy(comp[o]).to(dev)
        self.ev_cum = torch.from_numpy(cum).to(dev)
        self.ev_span = e + 1

    def _sync_torch(self, ev_keys: torch.Tensor, ev_inc: torch.Tensor) -> None:
        e = len(ev_keys)
        keep, cols = self._select_torch(ev_keys)
        keys, inc = ev_keys[keep] >> 2, ev_inc[keep]
        when = torch.nonzero(keep).reshape(-1)
        self.n_ev = len(keys)
        if not len(keys):
            return
        uk, inv = torch.unique(keys, return_inverse=True)
        comp = inv * (e + 1) + when  # distinct values: `when` is
        comp, o = torch.sort(comp)
        incm = torch.zeros((len(keys), len(self.tags)), dtype=torch.int64, device=keys.device)
        incm[torch.arange(len(keys), device=keys.device), cols] = inc
        zero = torch.zeros((1, len(self.tags)), dtype=torch.int64, device=keys.device)
        self.ev_uk = uk
        self.ev_comp = comp
        self.ev_cum = torch.cat([zero, torch.cumsum(incm[o], dim=0)])
        self.ev_span = e + 1

    def get_static(self, uniq: torch.Tensor, horizon: torch.Tensor) -> torch.Tensor:
        """Values [B, U, len(tags)] of sorted unique keys `uniq` at each of B horizons.

        The snapshot part is computed once per (snapshot, key set); per call only keys that occur in
        the event log get per-horizon corrections.
        """
        cache = self._static_cache.get(id(uniq))
        if cache is None or cache[0] is not uniq:
            if len(self.keys):
                idx = torch.searchsorted(self.keys, uniq).clamp_max(len(self.keys) - 1)
                base = self.vals[idx] * (self.keys[idx] == uniq)[:, None]
            else:
                base = torch.zeros((len(uniq), len(self.tags)), dtype=torch.int64, device=self.device)
            cache = (uniq, base)
            self._static_cache[id(uniq)] = cache
        base = cache[1]
        out = base[None].expand(len(horizon), *base.shape).clone()
        if self._ev_n > 0 and self.n_ev > 0 and len(uniq):
            span = self.ev_span
            qi = torch.searchsorted(self.ev_uk, uniq).clamp_max(len(self.ev_uk) - 1)
            hits = torch.nonzero(self.ev_uk[qi] == uniq).reshape(-1)
            if len(hits):
                qspan = qi[hits] * span
                lo = torch.searchsorted(self.ev_comp, qspan)  # [H]
                h = (horizon - self.base_event).clamp(0, span - 1)
                hi = torch.searchsorted(self.ev_comp, (qspan[None, :] + h[:, None]).contiguous())  # [B, H]
                out[:, hits] += self.ev_cum[hi] - self.ev_cum[lo][None]
        return out

    def get(self, keys: torch.Tensor, horizon: torch.Tensor) -> torch.Tensor:
        """Values [..., len(tags)] of untagged `keys` after the first `horizon` events (absolute)."""
        flat = keys.reshape(-1)
        uq, inv = torch.unique(flat, return_inverse=True)
        if len(self.keys):
            idx = torch.searchsorted(self.keys, uq).clamp_max(len(self.keys) - 1)
            base = self.vals[idx] * (self.keys[idx] == uq)[:, None]
        else:
            base = torch.zeros((len(uq), len(self.tags)), dtype=torch.int64, device=self.device)
        out = base[inv]
        if self._ev_n > 0 and self.n_ev > 0:
            span = self.ev_span
            qi = torch.searchsorted(self.ev_uk, uq).clamp_max(len(self.ev_uk) - 1)
            hit = (self.ev_uk[qi] == uq)[inv]
            qspan = (qi * span)[inv]
            h = (horizon.reshape(-1) - self.base_event).clamp(0, span - 1)
            lo = torch.searchsorted(self.ev_comp, qspan)
            hi = torch.searchsorted(self.ev_comp, qspan + h)
            out = out + (self.ev_cum[hi] - self.ev_cum[lo]) * hit[:, None]
        return out.reshape(*keys.shape, len(self.tags))


class _Lookup:
    """Context records (n, u, M) and pair counts as of any event index at or after `base_event`."""

    def __init__(self, flat: dict[int, int], base_event: int, device: torch.device, on_device: bool = False):
        self.base_event = base_event
        self.ctx = _Table(flat, (_TAG_N, _TAG_U, _TAG_M), base_event, device, on_device)
        self.pair = _Table(flat, (_TAG_PAIR,), base_event, device, on_device)

    def sync(self, counts: PPMCounts) -> None:
        rel = self.base_event - counts.ev_offset
        ek = np.array(counts.ev_keys[rel:], dtype=np.int64)
        ei = np.array(counts.ev_inc[rel:], dtype=np.int64)
        self.ctx.sync(ek, ei)
        self.pair.sync(ek, ei)


# --------------------------------------------------------------------------------------------------
# The predictor
# --------------------------------------------------------------------------------------------------


class TokenPPM:
    """Streaming token predictor: PPM-D over bytes, renormalised over the vocabulary (C2-valid)."""

    def __init__(
        self, table: PieceTable, order: int = 5, exclusion: bool = True, device: str | torch.device = "cpu",
        batch: int = 8, snapshot_events: int = 200_000, threads: int | None = 1, on_device: bool | None = None,
    ):
        """on_device: run snapshot rebuilds, event syncs and the row assembly as torch ops on `device`
        (default: on any non-CPU device); False keeps them in numpy on the host, the original CPU path.
        Both give the same rows (the assembly's log-sum-exp to ~1e-15)."""
        self.table = table
        self.order = order
        self.exclusion = exclusion
        self.device = torch.device(device)
        self.on_device = self.device.type != "cpu" if on_device is None else bool(on_device)
        self.batch = batch
        self.snapshot_events = snapshot_events
        self.threads = threads  # CPU torch threads while scoring (1: no spin-wait contention on busy hosts)
        self.vocab_size = table.vocab_size
        self.trie = VocabTrie(table, order)
        self._leaves = {pb: self.trie.leaves(table, pb) for pb in (False, True)}
        self._t = {}
        tr = self.trie
        for name, arr in [("path_tail", tr.path_tail), ("slot_src", tr.slot_src), ("idepth", tr.internal_depth),
                          ("edge_row", tr.edge_row), ("edge_byte", tr.byte[1:]), ("parent", tr.parent)]:
            self._t[name] = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)
        self._static_keys()
        self.reset()

    def _static_keys(self) -> None:
        """Index plans for the lookups, built once per vocabulary.

        A context of order k <= a node's depth lies inside the trie path, so its key is the same at
        every position: those are deduplicated here and looked up once per snapshot. Only orders above
        the depth reach into the history ("dynamic" entries, shallow nodes only). Values are gathered
        into a compact [static unique | dynamic] buffer and put in [node, order] place by one index.
        """
        tr, K, dev = self.trie, self.order, self.device
        depth = tr.internal_depth
        nI = len(depth)
        static = np.arange(K + 1)[None, :] <= depth[:, None]  # [nI, K+1]
        keys = np.zeros((nI, K + 1), dtype=np.int64)
        packed = np.zeros(nI, dtype=np.int64)
        for k in range(1, K + 1):
            packed = packed | (tr.path_tail[:, K - k] << (8 * (k - 1)))
            keys[:, k] = packed | (k << 48)
        flat_static = static.reshape(-1)
        uc, inv_c = np.unique(keys.reshape(-1)[flat_static], return_inverse=True)
        dyn_flat = np.flatnonzero(~flat_static)  # (row, order) entries reaching into the history
        shallow = np.flatnonzero(depth < K)
        srow = np.full(nI, -1, dtype=np.int64)
        srow[shallow] = np.arange(len(shallow))
        dyn_src = srow[dyn_flat // (K + 1)] * (K + 1) + dyn_flat % (K + 1)
        perm_c = np.empty(nI * (K + 1), dtype=np.int64)
        perm_c[flat_static] = inv_c.reshape(-1)
        perm_c[dyn_flat] = len(uc) + np.arange(len(dyn_flat))
        dyn_rank = np.full(nI * (K + 1), -1, dtype=np.int64)
        dyn_rank[dyn_flat] = np.arange(len(dyn_flat))
        # Pairs: edge e, order k uses its parent's context (row er[e], order k) and the edge's byte.
        er = tr.edge_row
        x = tr.byte[1:]
        E = len(er)
        pflat = (er[:, None] * (K + 1) + np.arange(K + 1)[None, :]).reshape(-1)  # parent entry per (e, k)
        pstatic = flat_static[pflat]
        pbyte = np.repeat(x, K + 1)
        up, inv_p = np.unique((keys.reshape(-1)[pflat][pstatic] << 8) | pbyte[pstatic], return_inverse=True)
        pdyn = np.flatnonzero(~pstatic)
        perm_p = np.empty(E * (K + 1), dtype=np.int64)
        perm_p[pstatic] = inv_p.reshape(-1)
        perm_p[pdyn] = len(up) + np.arange(len(pdyn))

        def tt(a):
            return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

        self._plan = {
            "ctx_u": tt(uc), "perm_c": tt(perm_c), "shallow": tt(shallow), "dyn_src": tt(dyn_src),
            "pair_u": tt(up), "perm_p": tt(perm_p), "pd_src": tt(dyn_rank[pflat[pdyn]]), "pd_byte": tt(pbyte[pdyn]),
        }

    # -- state --------------------------------------------------------------------------------------

    def reset(self) -> None:
        self.counts = PPMCounts(self.order)
        self.prev_boundary = True
        self.n_tokens = 0
        self.n_empty = 0
        self.token_counts = np.zeros(self.vocab_size, dtype=np.int64)
        self._lookup: _Lookup | None = None

    def observe(self, token: int) -> None:
        token = int(token)
        if not 0 <= token < self.vocab_size:
            raise ValueError(f"token {token} outside vocabulary of {self.vocab_size}")
        b = self.table.token_bytes(token, self.prev_boundary)
        if not b:
            self.n_empty += 1
        self.token_counts[token] += 1
        self.n_tokens += 1
        self.counts.add_bytes(b)
        self.prev_boundary = self.table.boundary[token]

    def next_logprobs(self) -> np.ndarray:
        return self._score([self._position()])[0]

    def string_logprobs(self) -> np.ndarray:
        """log P(trie node's byte path | history) for every trie node at the next position."""
        return self._score([self._position()], raw=True)[0]

    def leaves(self, prev_boundary: bool | None = None) -> np.ndarray:
        """Trie node of each token's byte string at the next position (-1: empty string)."""
        return self._leaves[self.prev_boundary if prev_boundary is None else prev_boundary]

    def stream_logprobs(self, tokens: np.ndarray, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Rows for tokens[t] given tokens[:t], from a fresh state; equals the streaming protocol."""
        self.reset()
        return self.extend_logprobs(tokens, progress)

    def extend_logprobs(self, tokens: np.ndarray, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Rows for the next len(tokens) positions given everything observed so far; observes them.

        Positions are scored in batches of `self.batch`: the batch's tokens are observed first (the
        counts only ever grow), and each row is then evaluated as of its own event index.
        """
        tokens = np.asarray(tokens, dtype=np.int64)
        out = np.empty((len(tokens), self.vocab_size), dtype=np.float64)
        for t0 in range(0, len(tokens), self.batch):
            pos = []
            for t in range(t0, min(t0 + self.batch, len(tokens))):
                pos.append(self._position())
                self.observe(int(tokens[t]))
            out[t0:t0 + len(pos)] = self._score(pos)
            if progress is not None:
                progress(t0 + len(pos), len(tokens))
        return out

    def _position(self) -> dict:
        """Everything a row depends on, captured before the token is revealed."""
        K = self.order
        h = self.counts.history
        tail = np.zeros(max(K, 1), dtype=np.int64)
        tl = min(K, len(h))
        if tl:
            tail[K - tl:] = list(h[-tl:])
        return {
            "tail": tail, "hist_len": len(h), "event": self.counts.events,
            "prev_boundary": self.prev_boundary, "n_tokens": self.n_tokens, "n_empty": self.n_empty,
            "token_counts": self.token_counts.copy(),
        }

    # -- scoring ------------------------------------------------------------------------------------

    def _string_logps(self, positions: list[dict]) -> torch.Tensor:
        """log P(node path | history) for every trie node, per position: [B, num_nodes]."""
        dev = self.device
        K = self.order
        lk = self._lookup
        t = self._t
        B = len(positions)
        tails = torch.tensor(np.stack([p["tail"] for p in positions]), dtype=torch.int64, device=dev)
        hlen = torch.tensor([p["hist_len"] for p in positions], dtype=torch.int64, device=dev)
        horizon = torch.tensor([p["event"] for p in positions], dtype=torch.int64, device=dev)
        nI = t["path_tail"].shape[0]
        W = tails.shape[1]
        plan = self._plan
        # Dynamic context keys: last k bytes of (history tail + path) for shallow rows.
        sh = plan["shallow"]
        nS = len(sh)
        full = torch.cat([tails[:, None, :].expand(B, nS, W), t["path_tail"][sh][None].expand(B, nS, W)], dim=2)
        ctxb = torch.gather(full, 2, t["slot_src"][sh][None].expand(B, nS, W))  # [B, nS, K]
        dyn = [torch.zeros((B, nS), dtype=torch.int64, device=dev)]
        packed = torch.zeros((B, nS), dtype=torch.int64, device=dev)
        for k in range(1, K + 1):
            packed = packed | (ctxb[:, :, K - k] << (8 * (k - 1)))
            dyn.append(packed | (k << 48))
        dyn_keys = torch.stack(dyn, dim=2).reshape(B, -1)[:, plan["dyn_src"]]  # [B, nD]
        hz = horizon[:, None]
        rec = torch.cat([lk.ctx.get_static(plan["ctx_u"], horizon),
                         lk.ctx.get(dyn_keys, hz.expand_as(dyn_keys))], dim=1)[:, plan["perm_c"]]
        rec = rec.reshape(B, nI, K + 1, 3)
        pkeys = (dyn_keys[:, plan["pd_src"]] << 8) | plan["pd_byte"][None]
        c = torch.cat([lk.pair.get_static(plan["pair_u"], horizon)[..., 0],
                       lk.pair.get(pkeys, hz.expand_as(pkeys))[..., 0]], dim=1)[:, plan["perm_p"]]
        er = t["edge_row"]
        c = c.reshape(B, len(er), K + 1)
        if int(hlen.min()) < K:
            # Early positions: orders beyond the available bytes do not exist (their keys were built
            # from zero padding and must not match real contexts).
            avail = hlen[:, None] + t["idepth"][None]
            valid = torch.arange(K + 1, device=dev)[None, None, :] <= avail.clamp(max=K)[:, :, None]
            rec = rec * valid[..., None]
            c = c * valid[:, er, :]
        n, u = rec[..., 0], rec[..., 1]
        if self.exclusion:
            M = rec[..., 2]
            zero = torch.zeros_like(n[:, :, :1])
            m_up = torch.cat([M[:, :, 1:], zero], dim=2)  # M of the order-(k+1) context
            u_up = torch.cat([u[:, :, 1:], zero], dim=2)
            n_eff = n - m_up
            u_eff = u - u_up
        else:
            n_eff, u_eff = n, u
        live = (n_eff > 0) & (u_eff > 0)
        esc = torch.where(live, torch.log(u_eff.double().clamp(min=1) / (2.0 * n_eff.double().clamp(min=1))),
                          torch.zeros_like(n, dtype=torch.float64))
        # above[k] = sum of escapes at orders > k
        rev = torch.flip(esc, dims=[2])
        above = torch.flip(torch.cumsum(rev, dim=2), dims=[2]) - esc
        total_esc = above[:, :, 0] + esc[:, :, 0]
        if self.exclusion:
            uniform = -torch.log(256.0 - u[:, :, 0].double())
        else:
            uniform = torch.full_like(total_esc, -math.log(256.0))
        # Edges: child byte counts at each order of the parent's contexts.
        ords = torch.arange(1, K + 2, device=dev)
        f = ((c > 0) * ords).amax(dim=2) - 1  # found order, -1 if none
        fc = f.clamp(min=0)
        c_f = torch.gather(c, 2, fc[:, :, None])[:, :, 0].double()
        flat_idx = er[None, :] * (K + 1) + fc  # index into the parent's [nI * (K+1)] row
        n_f = torch.gather(n_eff.reshape(B, -1), 1, flat_idx).double()
        above_f = torch.gather(above.reshape(B, -1), 1, flat_idx)
        hit_lp = above_f + torch.log((2 * c_f - 1).clamp(min=1) / (2 * n_f).clamp(min=1))
        miss_lp = total_esc[:, er] + uniform[:, er]
        edge_lp = torch.where(f >= 0, hit_lp, miss_lp)  # [B, E]
        # Path log-probabilities, one depth level at a time (nodes are numbered by depth).
        node_lp = torch.zeros((B, self.trie.num_nodes), dtype=torch.float64, device=dev)
        par = t["parent"]
        ls = self.trie.level_start
        for d in range(1, self.trie.max_depth + 1):
            a, b = int(ls[d]), int(ls[d + 1])
            node_lp[:, a:b] = node_lp[:, par[a:b]] + edge_lp[:, a - 1:b - 1]
        return node_lp

    def _score(self, positions: list[dict], raw: bool = False) -> np.ndarray:
        with _torch_threads(self.threads if self.device.type == "cpu" else None):
            node_lp = self._node_logps(positions)
            if raw:
                return node_lp.cpu().numpy()
            if self.on_device:
                return self._assemble_torch(node_lp, positions)
        return self._assemble(node_lp, positions)

    def _assemble_torch(self, node_lp: torch.Tensor, positions: list[dict]) -> np.ndarray:
        """`assemble_row` for a batch, as torch ops on the scoring device; one copy back per batch."""
        dev = node_lp.device
        if not hasattr(self, "_leaves_t"):
            self._leaves_t = {pb: torch.from_numpy(v).to(dev) for pb, v in self._leaves.items()}
        leaves = torch.stack([self._leaves_t[p["prev_boundary"]] for p in positions])  # [B, V]
        counts = torch.from_numpy(np.stack([p["token_counts"] for p in positions])).to(dev)
        n_tok = torch.tensor([p["n_tokens"] for p in positions], dtype=torch.float64, device=dev)
        n_emp = torch.tensor([p["n_empty"] for p in positions], dtype=torch.float64, device=dev)
        return assemble_rows_torch(node_lp, leaves, counts, n_tok, n_emp).cpu().numpy()

    def _node_logps(self, positions: list[dict]) -> torch.Tensor:
        first_event = min(p["event"] for p in positions)
        lk = self._lookup
        if lk is None or lk.base_event > first_event or self.counts.events - lk.base_event > self.snapshot_events:
            # A snapshot serves positions at or after its event index; the dicts may already be ahead
            # of the batch's first position (stream_logprobs observes a batch before scoring it).
            self._lookup = None
            self._lookup = _Lookup(_flat_at(self.counts, first_event), first_event, self.device, self.on_device)
            self.counts.trim(first_event)
        self._lookup.sync(self.counts)
        return self._string_logps(positions)

    def _assemble(self, node_lp: torch.Tensor, positions: list[dict]) -> np.ndarray:
        node_lp = node_lp.cpu().numpy()
        out = np.empty((len(positions), self.vocab_size), dtype=np.float64)
        for r, p in enumerate(positions):
            out[r] = assemble_row(node_lp[r], self._leaves[p["prev_boundary"]], p)
        return out


class _torch_threads:
    """Temporarily set torch's CPU thread count (None: leave it)."""

    def __init__(self, n: int | None):
        self.n = n
        self.old = None

    def __enter__(self):
        if self.n is not None:
            self.old = torch.get_num_threads()
            if self.old != self.n:
                torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self.old is not None and self.old != self.n:
            torch.set_num_threads(self.old)
        return False


def _flat_at(counts: PPMCounts, event: int) -> dict[int, int]:
    """The flat count dict as it was after the first `event` events."""
    rel = event - counts.ev_offset
    if rel == len(counts.ev_keys):
        return counts.flat
    flat = dict(counts.flat)
    for key, inc in zip(counts.ev_keys[rel:], counts.ev_inc[rel:]):
        v = flat[key] - inc
        if v:
            flat[key] = v
        else:
            del flat[key]
    return flat


def assemble_row(string_lp: np.ndarray, leaves: np.ndarray, pos: dict) -> np.ndarray:
    """Combine string scores with the empty-string class into one normalised log-distribution.

    `string_lp[leaves[v]]` is token v's PPM string score; leaves[v] == -1 marks an empty string.
    """
    vocab = len(leaves)
    empty = leaves < 0
    out = np.empty(vocab, dtype=np.float64)
    scores = string_lp[leaves[~empty]]
    z = np.logaddexp.reduce(scores) if len(scores) else -np.inf
    if not empty.any():
        out[~empty] = scores - z
        return out
    lam = (pos["n_empty"] + 0.5) / (pos["n_tokens"] + 1.0)
    w = pos["token_counts"][empty] + 0.5
    out[empty] = math.log(lam) + np.log(w / w.sum())
    out[~empty] = math.log1p(-lam) + scores - z
    return out


def assemble_rows_torch(node_lp: torch.Tensor, leaves: torch.Tensor, token_counts: torch.Tensor,
                        n_tokens: torch.Tensor, n_empty: torch.Tensor) -> torch.Tensor:
    """Batched `assemble_row` in torch (any device): [B, nodes] string scores -> [B, V] log-distributions.

    leaves [B, V] (-1: empty string), token_counts [B, V], n_tokens / n_empty [B] (float64).
    """
    empty = leaves < 0
    scores = torch.gather(node_lp, 1, leaves.clamp(min=0))
    neg_inf = torch.full_like(scores, -math.inf)
    z = torch.logsumexp(torch.where(empty, neg_inf, scores), dim=1, keepdim=True)
    any_empty = empty.any(dim=1, keepdim=True)
    lam = ((n_empty + 0.5) / (n_tokens + 1.0))[:, None]
    w = torch.where(empty, token_counts.double() + 0.5, torch.zeros_like(scores))
    empty_lp = torch.log(lam) + torch.log(w / w.sum(dim=1, keepdim=True).clamp(min=1e-300))
    full_lp = torch.where(any_empty, torch.log1p(-lam), torch.zeros_like(lam)) + scores - z
    return torch.where(empty, empty_lp, full_lp)


def naive_token_logprobs(counts: PPMCounts, table: PieceTable, prev_boundary: bool, exclusion: bool,
                         n_tokens: int, n_empty: int, token_counts: np.ndarray) -> np.ndarray:
    """Reference distribution: every token's string scored byte by byte, no trie, no batching."""
    strings = [table.token_bytes(v, prev_boundary) for v in range(table.vocab_size)]
    lp = naive_string_logps(counts, strings, exclusion)
    leaves = np.array([v if s else -1 for v, s in enumerate(strings)], dtype=np.int64)
    pos = {"n_tokens": n_tokens, "n_empty": n_empty, "token_counts": token_counts}
    return assemble_row(lp, leaves, pos)


# --------------------------------------------------------------------------------------------------
# Factories (catalog)
# --------------------------------------------------------------------------------------------------


def byte_piece_table() -> PieceTable:
    """256 byte tokens and nothing else: the token PPM over it is exactly byte PPM-D."""
    return PieceTable(tuple(bytes([b]) for b in range(256)), (False,) * 256, (False,) * 256, (True,) * 256)


def synthetic_piece_table(vocab_size: int) -> PieceTable:
    """A deterministic sentencepiece-like table of any size, for certifying without a tokenizer.

    Ids 0-3 are control (pad, bos, eos, unk) when the vocabulary has room; then byte-fallback tokens
    (as many of the 256 as fit after leaving a quarter for words); then letters, "U+2581"-led
    letters, a bare "U+2581", and two- and three-letter pieces with and without the space marker.
    """
    if vocab_size < 2:
        raise ValueError("vocabulary must have at least 2 tokens")
    pieces: list[str] = []
    control = list(range(4)) if vocab_size >= 16 else [0]
    pieces += ["<ctrl>"] * len(control)
    n_bytes = min(256, max(0, (vocab_size - len(control)) * 3 // 4)) if vocab_size >= 300 else 0
    pieces += [f"<0x{b:02X}>" for b in range(n_bytes)]
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    words = [c for c in letters] + [_SPACE + c for c in letters] + [_SPACE, " ", ".", ",", "0", "1"]
    words += [_SPACE + a + b for a in letters for b in letters] + [a + b for a in letters for b in letters]
    words += [_SPACE + a + b + c for a in letters[:12] for b in letters[:12] for c in letters[:12]]
    need = vocab_size - len(pieces)
    if need > len(words):
        raise ValueError(f"synthetic piece table supports up to {len(pieces) + len(words)} tokens")
    pieces += words[:need]
    return PieceTable.from_pieces(pieces, control=control)


def make_byte_ppm(vocab_size: int = 256) -> TokenPPM:
    """Byte PPM-D (order 5, exclusion) as a streaming predictor over the 256 byte values."""
    if vocab_size != 256:
        raise ValueError("byte PPM has a fixed alphabet of 256")
    return TokenPPM(byte_piece_table(), order=5, exclusion=True)


def make_token_ppm(vocab_size: int) -> TokenPPM:
    """Token-normalised PPM-D (order 5, exclusion) over a synthetic piece table of `vocab_size`."""
    return TokenPPM(synthetic_piece_table(vocab_size), order=5, exclusion=True)
