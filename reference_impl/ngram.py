"""Token n-gram backoff predictor that is normalized by construction and strictly score-first.

Why this shape: the invalid "#779 family" records hashed (context, target) into one table and looked up only
the gold token, so hash collisions inflated every candidate and Σ_v p(v) drifted to hundreds. Here every
order keeps a *bucketed-context × full-vocabulary* count table. Hashing may merge contexts into one bucket,
but a bucket row is still a count vector over the whole alphabet, so the backoff recursion

    p_0(v) = 1 / V
    p_k(v) = (c_k(b, v) + λ_k p_{k-1}(v)) / (n_k(b) + λ_k),   λ_k = α + β · u_k(b)

(n = Σ_v c, u = number of distinct v seen in the bucket: Dirichlet when β = 0, Witten–Bell when α → 0)
sums to one for every bucket and every count state. Order 1 is the causal unigram (one bucket); orders
2..K use the previous k-1 tokens. Counts are updated only after the position is scored.

Three implementations compute the same numbers:
  * `NGramBackoff.next_logprobs/observe` — the plain streaming protocol (numpy tables);
  * `NGramBackoff.stream_logprobs` — chunked path: a chunk is scored against the table state before the
    chunk plus strictly-earlier counts inside the chunk (exclusive cumulative sums), then the chunk is
    added to the tables;
  * `NGramBackoff.gold_logprobs` — gold-token-only path for whole streams: prefix counts come from a
    stable sort by key and within-group ranks, so position t only ever sees positions < t.
The two vectorised paths exist in torch (any `device`) and in numpy (the default on CPU, where numpy's
16-bit radix argsort and low per-op overhead win); all agree to 1e-9 with `sequential_gold_logprobs`,
the plain Python loop the benchmark compares against.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

_MASK31 = 0x7FFFFFFF  # rolling hash stays below 2^31, so h * _MUL and h * _FIB fit in int64 (no wrapping)
_MASK32 = 0xFFFFFFFF
_MUL = 1_000_003
_FIB = 2_654_435_769  # Fibonacci hashing multiplier (< 2^32)


def default_buckets(vocab_size: int) -> int:
    """Power-of-two bucket count keeping one table near 4 M cells (16-32 MB) whatever the vocabulary."""
    target = max(16, (1 << 22) // max(1, vocab_size))
    return min(4096, 1 << (target.bit_length() - 1))


def _check_config(vocab_size: int, order: int, buckets: int, alpha: float, beta: float) -> None:
    if vocab_size < 2:
        raise ValueError("vocab_size must be >= 2")
    if order < 1:
        raise ValueError("order must be >= 1")
    if buckets < 1 or buckets & (buckets - 1):
        raise ValueError("buckets must be a power of two")
    if not alpha > 0 or beta < 0:
        raise ValueError("need alpha > 0 and beta >= 0 so every backoff weight is positive")


def context_bucket(history: list[int], k: int, buckets: int) -> int:
    """Bucket of the order-k context (the k-1 tokens before the next position); missing tokens pad as -1."""
    if k == 1:
        return 0
    h = 0
    n = len(history)
    for j in range(1, k):
        tok = history[n - j] if n - j >= 0 else -1
        h = (h * _MUL + tok + 1) & _MASK31
    return ((h * _FIB) & _MASK32) * buckets >> 32


def context_buckets_torch(tokens: torch.Tensor, order: int, buckets: int) -> list[torch.Tensor]:
    """Vectorised `context_bucket` for orders 1..order at every position (same integers, bit for bit).

    The order-k hash extends the order-(k-1) hash by one more token, so all orders cost one pass each.
    """
    n = tokens.shape[0]
    out = [torch.zeros(n, dtype=torch.int64, device=tokens.device)]
    h = torch.zeros(n, dtype=torch.int64, device=tokens.device)
    for j in range(1, order):
        prev = torch.zeros(n, dtype=torch.int64, device=tokens.device)  # token + 1, 0 = pad
        if j < n:
            prev[j:] = tokens[: n - j] + 1
        h = (h * _MUL + prev) & _MASK31
        out.append(((h * _FIB) & _MASK32) * buckets >> 32)
    return out


class NGramBackoff:
    """Streaming + batch predictor (see module docstring). `device` only affects the torch paths."""

    def __init__(self, vocab_size: int, order: int = 5, buckets: int | None = None, alpha: float = 0.5,
                 beta: float = 1.0, device: str | torch.device = "cpu", chunk: int = 512):
        buckets = default_buckets(vocab_size) if buckets is None else int(buckets)
        _check_config(vocab_size, order, buckets, alpha, beta)
        self.vocab_size = int(vocab_size)
        self.order = int(order)
        self.buckets = buckets
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.device = torch.device(device)
        self.chunk = int(chunk)
        self.reset()

    def _nb(self, k: int) -> int:
        return 1 if k == 1 else self.buckets

    # --- plain streaming protocol -------------------------------------------------------------------
    def reset(self) -> None:
        self._history: list[int] = []
        self._counts = [np.zeros((self._nb(k), self.vocab_size), dtype=np.int64) for k in range(1, self.order + 1)]
        self._totals = [np.zeros(self._nb(k), dtype=np.int64) for k in range(1, self.order + 1)]
        self._types = [np.zeros(self._nb(k), dtype=np.int64) for k in range(1, self.order + 1)]

    def next_probs(self) -> np.ndarray:
        return self.probs_after(self._history)

    def probs_after(self, history: list[int]) -> np.ndarray:
        """Distribution after `history` under the *current* tables (used by the two-pass negative control)."""
        p = np.full(self.vocab_size, 1.0 / self.vocab_size)
        for k in range(1, self.order + 1):
            b = context_bucket(history, k, self.buckets)
            c = self._counts[k - 1][b].astype(np.float64)
            n = float(self._totals[k - 1][b])
            lam = self.alpha + self.beta * float(self._types[k - 1][b])
            p = (c + lam * p) / (n + lam)
        return p

    def next_logprobs(self) -> np.ndarray:
        return np.log(self.next_probs())

    def observe(self, token: int) -> None:
        token = int(token)
        if not 0 <= token < self.vocab_size:
            raise ValueError(f"token {token} outside vocabulary of {self.vocab_size}")
        for k in range(1, self.order + 1):
            b = context_bucket(self._history, k, self.buckets)
            if self._counts[k - 1][b, token] == 0:
                self._types[k - 1][b] += 1
            self._counts[k - 1][b, token] += 1
            self._totals[k - 1][b] += 1
        self._history.append(token)

    # --- vectorised paths (stateless: each call scores a fresh stream) -------------------------------
    def _as_tensor(self, tokens) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=self.device)
        if t.ndim != 1:
            raise ValueError("tokens must be one-dimensional")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.vocab_size):
            raise ValueError("token outside vocabulary")
        return t

    def stream_logprobs(self, tokens, backend: str = "auto") -> np.ndarray:
        """[len, V] log-probabilities; row t uses only tokens[:t] (chunked score-then-update).

        backend "numpy" (default on CPU, where torch's small-op overhead dominates) or "torch" (on
        `self.device`); both equal the streaming protocol.
        """
        if backend == "auto":
            backend = "numpy" if self.device.type == "cpu" else "torch"
        if backend == "numpy":
            x = self._as_tensor(tokens).cpu().numpy()
            return _stream_rows_numpy(x, self.vocab_size, self.order, self.buckets, self.alpha, self.beta,
                                      self.chunk)
        return self.stream_logprobs_torch(tokens).cpu().numpy()

    def stream_logprobs_torch(self, tokens) -> torch.Tensor:
        x = self._as_tensor(tokens)
        n, V, dev = x.shape[0], self.vocab_size, self.device
        # Renumber each order's buckets densely (equality is all the recursion uses), so the tables hold only
        # the contexts this stream touches instead of buckets x V cells.
        buckets = [torch.unique(b, return_inverse=True)[1] for b in context_buckets_torch(x, self.order, self.buckets)]
        tables = [torch.zeros((int(b.max()) + 1 if n else 1, V), dtype=torch.float64, device=dev) for b in buckets]
        out = torch.empty((n, V), dtype=torch.float64, device=dev)
        for s in range(0, n, self.chunk):
            e = min(n, s + self.chunk)
            xc = x[s:e]
            L = e - s
            onehot = torch.zeros((L, V), dtype=torch.float64, device=dev)
            onehot[torch.arange(L, device=dev), xc] = 1.0
            p = torch.full((L, V), 1.0 / V, dtype=torch.float64, device=dev)
            for k in range(1, self.order + 1):
                b = buckets[k - 1][s:e]
                cnt = tables[k - 1][b] + _earlier_in_chunk(b, onehot)
                tot = cnt.sum(dim=1, keepdim=True)
                lam = self.alpha + self.beta * (cnt > 0).sum(dim=1, keepdim=True).to(torch.float64)
                p = (cnt + lam * p) / (tot + lam)
            out[s:e] = torch.log(p)
            for k in range(1, self.order + 1):  # update only after the whole chunk is scored
                tables[k - 1].index_put_((buckets[k - 1][s:e], xc),
                                         torch.ones(L, dtype=torch.float64, device=dev), accumulate=True)
        return out

    def gold_logprobs(self, tokens, backend: str = "auto") -> np.ndarray:
        """log p_t(tokens[t]) for every t (t = 0 included), without materialising [len, V].

        backend "numpy" (the default on CPU: its 16-bit radix argsort is several times faster than
        torch.sort there) or "torch" (runs on `self.device`). Both equal `sequential_gold_logprobs`.
        """
        if backend == "auto":
            backend = "numpy" if self.device.type == "cpu" else "torch"
        if backend == "numpy" and self.buckets <= 1 << 16 and self.vocab_size <= 1 << 16 and len(tokens) < 1 << 31:
            x = self._as_tensor(tokens).cpu().numpy()
            return _gold_numpy(x, self.vocab_size, self.order, self.buckets, self.alpha, self.beta)
        return self.gold_logprobs_torch(tokens).cpu().numpy()

    def gold_logprobs_torch(self, tokens) -> torch.Tensor:
        x = self._as_tensor(tokens)
        n, V = x.shape[0], self.vocab_size
        p = torch.full((n,), 1.0 / V, dtype=torch.float64, device=self.device)
        pos = torch.arange(n, device=self.device)
        for k, b in enumerate(context_buckets_torch(x, self.order, self.buckets), start=1):
            perm_bx = _stable_argsort_pair(b, x, self.buckets, V)
            c = _prior_rank(b * V + x, perm_bx)
            first = (c == 0).to(torch.int64)
            if k == 1:
                tot = pos
                types = torch.cumsum(first, 0) - first
            else:
                perm_b = _stable_argsort(b, self.buckets)
                tot = _prior_rank(b, perm_b)
                f_sorted = first[perm_b]
                csum = torch.cumsum(f_sorted, 0) - f_sorted  # exclusive, in bucket-then-position order
                types = torch.empty_like(csum)
                types[perm_b] = csum - csum[_group_starts(b[perm_b])]
            lam = self.alpha + self.beta * types.to(torch.float64)
            p = (c.to(torch.float64) + lam * p) / (tot.to(torch.float64) + lam)
        return torch.log(p)

    def score(self, tokens) -> np.ndarray:
        """Gold-scorer shape: log p(tokens[t] | tokens[:t]) for t = 1..len-1."""
        return self.gold_logprobs(tokens)[1:]


def _group_starts_np(sorted_key: np.ndarray) -> np.ndarray:
    """Index of the first element of each run of equal keys, for every element (int32)."""
    n = sorted_key.shape[0]
    new_group = np.empty(n, dtype=bool)
    new_group[:1] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new_group[1:])
    return np.maximum.accumulate(np.where(new_group, np.arange(n, dtype=np.int32), np.int32(0)))


def _order_counts_np(x16: np.ndarray, b16: np.ndarray | None, by_token: np.ndarray):
    """Prior counts for one order at every position: c(b_t, x_t), n(b_t), u(b_t), all strictly before t.

    16-bit keys let numpy use its radix argsort; (bucket, token) order is a second stable pass over the
    token-sorted order, so positions stay ascending inside each group and a group's rank is its prior count.
    """
    n = x16.shape[0]
    idx = np.arange(n, dtype=np.int32)
    c = np.empty(n, dtype=np.int32)
    if b16 is None:  # unigram: a single bucket
        c[by_token] = idx - _group_starts_np(x16[by_token])
        first = (c == 0).astype(np.int32)
        return c, idx, np.cumsum(first, dtype=np.int32) - first
    b_by_token = b16[by_token]
    second = np.argsort(b_by_token, kind="stable")
    perm_bx = by_token[second]
    sorted_key = (b_by_token[second].astype(np.int32) << 16) | x16[perm_bx]
    c[perm_bx] = idx - _group_starts_np(sorted_key)
    perm_b = np.argsort(b16, kind="stable")
    starts = _group_starts_np(b16[perm_b])
    tot = np.empty(n, dtype=np.int32)
    tot[perm_b] = idx - starts
    f_sorted = (c[perm_b] == 0).astype(np.int32)
    csum = np.cumsum(f_sorted, dtype=np.int32) - f_sorted
    types = np.empty(n, dtype=np.int32)
    types[perm_b] = csum - csum[starts]
    return c, tot, types


def _buckets_numpy(x: np.ndarray, order: int, buckets: int) -> list[np.ndarray]:
    """`context_buckets_torch` in numpy (orders 2..order; order 1 is the single unigram bucket)."""
    n = x.shape[0]
    out = []
    h = np.zeros(n, dtype=np.int64)
    for k in range(2, order + 1):
        prev = np.zeros(n, dtype=np.int64)
        if k - 1 < n:
            prev[k - 1:] = x[: n - k + 1] + 1
        h = (h * _MUL + prev) & _MASK31
        out.append(((h * _FIB) & _MASK32) * buckets >> 32)
    return out


def _stream_rows_numpy(x: np.ndarray, V: int, order: int, buckets: int, alpha: float, beta: float,
                       chunk: int) -> np.ndarray:
    """CPU path of `NGramBackoff.stream_logprobs_torch` (same chunked score-then-update arithmetic)."""
    n = x.shape[0]
    bks = [np.zeros(n, dtype=np.int64)] + [np.unique(b, return_inverse=True)[1].reshape(-1)
                                             for b in _buckets_numpy(x, order, buckets)]
    tables = [np.zeros((int(b.max()) + 1 if n else 1, V), dtype=np.float64) for b in bks]
    out = np.empty((n, V), dtype=np.float64)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        xc = x[s:e]
        L = e - s
        onehot = np.zeros((L, V), dtype=np.float64)
        onehot[np.arange(L), xc] = 1.0
        p = np.full((L, V), 1.0 / V)
        for k in range(order):
            b = bks[k][s:e]
            perm = np.argsort(b, kind="stable")
            oh = onehot[perm]
            excl = np.cumsum(oh, axis=0) - oh
            intra = np.empty_like(onehot)
            intra[perm] = excl - excl[_group_starts_np(b[perm])]
            cnt = tables[k][b] + intra
            tot = cnt.sum(axis=1, keepdims=True)
            lam = alpha + beta * (cnt > 0).sum(axis=1, keepdims=True).astype(np.float64)
            p = (cnt + lam * p) / (tot + lam)
        out[s:e] = np.log(p)
        for k in range(order):  # update only after the whole chunk is scored
            np.add.at(tables[k], (bks[k][s:e], xc), 1.0)
    return out


def _gold_numpy(x: np.ndarray, V: int, order: int, buckets: int, alpha: float, beta: float,
                threads: int = 2) -> np.ndarray:
    """CPU fast path of `NGramBackoff.gold_logprobs_torch`: same arithmetic (bit-identical), numpy 16-bit
    radix sorts, and the orders' independent prefix counts on `threads` threads (numpy sorts release the GIL)."""
    n = x.shape[0]
    x16 = x.astype(np.uint16)
    by_token = np.argsort(x16, kind="stable")  # shared first pass of every (bucket, token) sort
    bucket_arrays: list[np.ndarray | None] = [None] + [b.astype(np.uint16) for b in _buckets_numpy(x, order, buckets)]
    if threads > 1 and n >= 1 << 16:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            counts = list(pool.map(lambda b: _order_counts_np(x16, b, by_token), bucket_arrays))
    else:
        counts = [_order_counts_np(x16, b, by_token) for b in bucket_arrays]
    p = np.full(n, 1.0 / V)
    for c, tot, types in counts:
        lam = alpha + beta * types  # int32 -> float64 exactly, same values as the sequential loop
        p = (c + lam * p) / (tot + lam)
    return np.log(p)


def _earlier_in_chunk(b: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """[L, V] counts of each token at strictly earlier chunk positions with the same bucket: exclusive
    cumulative one-hot sums in bucket-then-position order, minus the sum at the start of the bucket's run."""
    perm = torch.sort(b, stable=True).indices
    oh = onehot[perm]
    excl = torch.cumsum(oh, dim=0) - oh
    out = torch.empty_like(onehot)
    out[perm] = excl - excl[_group_starts(b[perm])]
    return out


def _stable_argsort(key: torch.Tensor, bound: int) -> torch.Tensor:
    """Stable argsort of non-negative keys < bound (torch.sort on the tensor's device)."""
    return torch.sort(key, stable=True).indices


def _stable_argsort_pair(major: torch.Tensor, minor: torch.Tensor, major_bound: int, minor_bound: int) -> torch.Tensor:
    """Order by (major, minor, position)."""
    return torch.sort(major * minor_bound + minor, stable=True).indices


def _group_starts(sorted_key: torch.Tensor) -> torch.Tensor:
    """Index of the first element of each run of equal keys, for every element."""
    idx = torch.arange(sorted_key.shape[0], device=sorted_key.device)
    new_group = torch.ones_like(sorted_key, dtype=torch.bool)
    new_group[1:] = sorted_key[1:] != sorted_key[:-1]
    return torch.cummax(torch.where(new_group, idx, torch.zeros_like(idx)), 0).values


def _prior_rank(key: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """For each position, how many earlier positions share its key (perm: stable argsort of key)."""
    idx = torch.arange(key.shape[0], device=key.device)
    rank = torch.empty_like(idx)
    rank[perm] = idx - _group_starts(key[perm])
    return rank


def sequential_gold_logprobs(tokens, vocab_size: int, order: int = 5, buckets: int | None = None,
                             alpha: float = 0.5, beta: float = 1.0) -> np.ndarray:
    """Plain Python loop (dict counts, one token at a time): the reference the fast paths must equal."""
    buckets = default_buckets(vocab_size) if buckets is None else int(buckets)
    _check_config(vocab_size, order, buckets, alpha, beta)
    counts: dict[tuple[int, int, int], int] = {}
    totals: dict[tuple[int, int], int] = {}
    types: dict[tuple[int, int], int] = {}
    history: list[int] = []
    out = []
    for tok in (int(t) for t in tokens):
        ctx = [context_bucket(history, k, buckets) for k in range(1, order + 1)]
        p = 1.0 / vocab_size
        for k in range(1, order + 1):
            b = ctx[k - 1]
            lam = alpha + beta * types.get((k, b), 0)
            p = (counts.get((k, b, tok), 0) + lam * p) / (totals.get((k, b), 0) + lam)
        out.append(math.log(p))
        for k in range(1, order + 1):  # score first, then update
            b = ctx[k - 1]
            c = counts.get((k, b, tok), 0)
            if c == 0:
                types[(k, b)] = types.get((k, b), 0) + 1
            counts[(k, b, tok)] = c + 1
            totals[(k, b)] = totals.get((k, b), 0) + 1
        history.append(tok)
    return np.asarray(out, dtype=np.float64)


def make_ngram(vocab_size: int, order: int = 5, **kwargs) -> NGramBackoff:
    """Catalog factory."""
    return NGramBackoff(vocab_size, order=order, **kwargs)
