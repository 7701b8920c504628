"""Baseline recommenders run under the same protocol as socialrec's model (DESIGN §7).

Each baseline is fitted on the training pairs of a split and scores users against **every** item; the shared
:func:`top_k` removes each user's excluded (training) items before cutting at K. Scores are dense
``[users, items]`` blocks computed in batches of users, so memory is bounded by ``batch x items``.

* :class:`MostPopular`: training frequency.
* :class:`ItemKNN`: item-item cosine on the binary user-item matrix with shrinkage, top-``neighbours`` per item
  (Deshpande & Karypis 2004; RecBole's ItemKNN).
* :class:`EASE`: the closed-form shallow autoencoder ``B = I - P diagMat(1/diag(P))``, ``P = (X'X + lambda I)^-1``
  (Steck, WWW 2019). Dense in the number of items, so it refuses catalogues above ``max_items``.
* :class:`LightGCN`: light graph convolution over the user-item graph, BPR loss (He et al., SIGIR 2020), in torch.
* ALS (Spark MLlib, implicit feedback) lives in :func:`fit_als`: Spark fits it; its factors score like the others.

These single-machine baselines hold the training matrix in memory (sparse): they are evaluation references for
research-sized datasets, not part of the production path.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.logs import progress_task

logger = logging.getLogger(__name__)


def interaction_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary CSR user-item matrix of the (deduplicated) training pairs."""
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
    m.data[:] = 1.0  # duplicates summed by the constructor: back to binary
    return m


def top_k(scores: np.ndarray, exclude: sp.csr_matrix, users: np.ndarray, k: int) -> np.ndarray:
    """``[len(users), k]`` item indices by descending score, the users' excluded items removed (ties: lower index).

    Exact, in torch (an order of magnitude faster than numpy's ``argpartition`` on 256 x 100k blocks, which made
    evaluation at 1M users x 100k items take half an hour per model): ``torch.topk`` finds each row's K-th best
    score; where more items share it than the K slots take (``topk`` breaks such ties arbitrarily), the row is
    picked again with every item above the K-th score first and the tied ones by lowest index. Scores keep their
    float dtype (float64 ties stay distinct); a NaN score ranks like an excluded item.
    """
    import torch

    s_np = np.array(scores, copy=True)  # a private, writable copy (MostPopular's scores are a broadcast view)
    if not np.issubdtype(s_np.dtype, np.floating):
        s_np = s_np.astype(np.float64)
    r, c = exclude[users].nonzero()
    s_np[r, c] = -np.inf
    k = min(k, s_np.shape[1])
    if k == 0 or len(s_np) == 0:
        return np.zeros((len(s_np), k), dtype=np.int64)
    s = torch.from_numpy(s_np)
    vals, items = torch.topk(s, k, dim=1, sorted=False)
    if torch.isnan(vals).any():  # topk ranks NaN above everything: only then is the whole block scanned for it
        s.masked_fill_(torch.isnan(s), -math.inf)
        vals, items = torch.topk(s, k, dim=1, sorted=False)
    kth = vals.min(dim=1, keepdim=True).values
    ambiguous = np.flatnonzero(np.count_nonzero(s_np >= kth.numpy(), axis=1) > k)  # numpy counts bools 8x faster
    if len(ambiguous):
        # the pick's key: +inf above the K-th score (they all fit), minus the index when tied with it (lowest
        # first), -inf below; float32 holds item indices exactly up to 2**24
        exact = torch.float64 if s.shape[1] > 2**24 else torch.float32
        rows = slice(None) if len(ambiguous) == len(s) else torch.from_numpy(ambiguous)
        sub, sub_kth = s[rows], kth[rows]
        key = (-torch.arange(s.shape[1], dtype=exact)).expand(sub.shape).clone()
        key.masked_fill_(sub < sub_kth, -math.inf)
        key.masked_fill_(sub > sub_kth, math.inf)
        picked = torch.topk(key, k, dim=1, sorted=False).indices
        items[rows] = picked
    items = torch.sort(items, dim=1).values  # by index, so that the stable sort below leaves ties by index
    vals, order = torch.sort(torch.gather(s, 1, items), dim=1, descending=True, stable=True)
    top = torch.gather(items, 1, order)
    # never return an excluded item, even if fewer than k remain: mark with -1
    return torch.where(torch.isfinite(vals), top, torch.full_like(top, -1)).numpy()


class MostPopular:
    name = "most_popular"

    def fit(self, x: sp.csr_matrix) -> MostPopular:
        self.popularity = np.asarray(x.sum(axis=0)).ravel()
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(users), len(self.popularity)))


@dataclass
class ItemKNN:
    neighbours: int = 100
    shrink: float = 10.0
    name: str = "item_knn"

    def fit(self, x: sp.csr_matrix) -> ItemKNN:
        xc = x.tocsc().astype(np.float64)
        co = (xc.T @ xc).tocsr()  # item x item co-occurrence counts (sparse)
        norms = np.sqrt(np.asarray(xc.sum(axis=0)).ravel())
        co.setdiag(0)
        co.eliminate_zeros()
        coo = co.tocoo()
        sim = coo.data / (norms[coo.row] * norms[coo.col] + self.shrink)
        sim_m = sp.csr_matrix((sim, (coo.row, coo.col)), shape=co.shape)
        self.sim = _keep_top_per_row(sim_m, self.neighbours)
        self.x = x
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        # score(u, j) = sum_{i in I_u} sim(i, j): the similarity rows hold each item's neighbours
        return (self.x[users] @ self.sim).toarray()


def _keep_top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for i in range(m.shape[0]):
        start, end = m.indptr[i], m.indptr[i + 1]
        if end == start:
            continue
        data, idx = m.data[start:end], m.indices[start:end]
        if end - start > k:
            keep = np.argpartition(-data, k - 1)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(np.full(len(idx), i))
        cols.append(idx)
        vals.append(data)
    if not rows:
        return sp.csr_matrix(m.shape)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape)


@dataclass
class EASE:
    l2: float = 500.0
    max_items: int = 30_000
    name: str = "ease"

    def fit(self, x: sp.csr_matrix) -> EASE:
        n = x.shape[1]
        if n > self.max_items:
            raise ValueError(
                f"EASE needs a dense {n} x {n} matrix ({n * n * 8 / 2**30:.1f} GiB): above max_items={self.max_items}; "
                "filter the catalogue or raise the limit"
            )
        g = (x.T @ x).toarray().astype(np.float64)
        g[np.diag_indices(n)] += self.l2
        p = np.linalg.inv(g)
        b = -p / np.diag(p)[None, :]
        b[np.diag_indices(n)] = 0.0
        self.b = b
        self.x = x
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.x[users] @ self.b)


@dataclass
class LightGCN:
    """LightGCN with BPR; ``fit`` takes an optional ``validate(model) -> score`` for early stopping."""

    dim: int = 64
    layers: int = 3
    lr: float = 1e-3
    reg: float = 1e-4
    batch_size: int = 2048
    epochs: int = 300
    patience: int = 10
    eval_every: int = 5
    seed: int = 2020
    threads: int = 2
    name: str = "lightgcn"

    def fit(self, x: sp.csr_matrix, validate: Any = None) -> LightGCN:
        import torch

        torch.manual_seed(self.seed)
        torch.set_num_threads(self.threads)
        rng = np.random.default_rng(self.seed)
        n_users, n_items = x.shape
        self.n_users = n_users
        coo = x.tocoo()
        adj = _normalised_adjacency(coo.row, coo.col, n_users, n_items)
        emb = torch.nn.Embedding(n_users + n_items, self.dim)
        torch.nn.init.normal_(emb.weight, std=0.1)
        opt = torch.optim.Adam(emb.parameters(), lr=self.lr)
        pos_u, pos_i = coo.row.astype(np.int64), coo.col.astype(np.int64)
        user_items = x.tocsr()
        best, best_state, bad = -math.inf, None, 0
        with progress_task("lightgcn: epochs (early stopping on validation)", self.epochs) as bar:
            for epoch in range(self.epochs):
                perm = rng.permutation(len(pos_u))
                for start in range(0, len(perm), self.batch_size):
                    idx = perm[start : start + self.batch_size]
                    u, i = pos_u[idx], pos_i[idx]
                    j = _sample_negatives(user_items, u, n_items, rng)
                    final = _propagate(adj, emb.weight, self.layers)
                    eu, ei, ej = final[torch.from_numpy(u)], final[n_users + torch.from_numpy(i)], final[n_users + torch.from_numpy(j)]
                    bpr = torch.nn.functional.softplus(-((eu * ei).sum(1) - (eu * ej).sum(1))).mean()
                    e0 = emb.weight
                    l2 = (e0[torch.from_numpy(u)].pow(2).sum() + e0[n_users + torch.from_numpy(i)].pow(2).sum()
                          + e0[n_users + torch.from_numpy(j)].pow(2).sum()) / (2 * len(u))
                    loss = bpr + self.reg * l2
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                bar.advance()
                if validate is not None and (epoch + 1) % self.eval_every == 0:
                    self._freeze(adj, emb.weight)
                    score = float(validate(self))
                    logger.info("lightgcn epoch %d: validation %.4f", epoch + 1, score)
                    if score > best:
                        best, best_state, bad = score, emb.weight.detach().clone(), 0
                    else:
                        bad += 1
                        if bad >= self.patience:
                            break
        self._freeze(adj, best_state if best_state is not None else emb.weight)
        self.best_validation = best
        return self

    def _freeze(self, adj: Any, weight: Any) -> None:
        import torch

        with torch.no_grad():
            final = _propagate(adj, weight, self.layers)
        self.user_emb = final[: self.n_users].numpy()
        self.item_emb = final[self.n_users :].numpy()

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_emb[users] @ self.item_emb.T


def _normalised_adjacency(rows: np.ndarray, cols: np.ndarray, n_users: int, n_items: int) -> Any:
    """``D^-1/2 A D^-1/2`` of the bipartite graph, as a torch sparse tensor."""
    import torch

    n = n_users + n_items
    r = np.concatenate([rows, cols + n_users])
    c = np.concatenate([cols + n_users, rows])
    deg = np.bincount(r, minlength=n).astype(np.float64)
    d = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1)), 0.0)
    vals = d[r] * d[c]
    indices = torch.from_numpy(np.vstack([r, c]))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(vals.astype(np.float32)), (n, n), check_invariants=True).coalesce()


def _propagate(adj: Any, weight: Any, layers: int) -> Any:
    import torch

    out, e = [weight], weight
    for _ in range(layers):
        e = torch.sparse.mm(adj, e)
        out.append(e)
    return torch.stack(out).mean(0)


def _sample_negatives(user_items: sp.csr_matrix, users: np.ndarray, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """One uniformly drawn item per user that the user has not interacted with (resampled on a hit)."""
    neg = rng.integers(0, n_items, len(users))
    for _ in range(20):
        hits = np.asarray(user_items[users, neg]).ravel() > 0
        if not hits.any():
            break
        neg[hits] = rng.integers(0, n_items, int(hits.sum()))
    return neg


@dataclass
class FactorScorer:
    """Scores from fitted factors (ALS): ``user_factors @ item_factors.T``."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    name: str = "als"

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[users] @ self.item_factors.T


def fit_als(train: Any, n_users: int, n_items: int, rank: int = 64, reg: float = 0.01, alpha: float = 40.0,
            iterations: int = 15, seed: int = 42, checkpoint_dir: str | None = None,
            checkpoint_interval: int = 5) -> FactorScorer:
    """Spark MLlib ALS with implicit feedback on a ``user, item`` DataFrame; returns its factors as a scorer.

    The factors are ``(n_users + n_items) x rank`` numbers: small next to the interactions they summarise.

    Each ALS iteration adds to the factors' lineage, and serialising a task of a long one overflows the driver's
    stack (``Task serialization failed: java.lang.StackOverflowError``, seen at 15 iterations on 300k users).
    MLlib cuts the lineage every ``checkpoint_interval`` iterations only when the SparkContext has a checkpoint
    directory, so ``checkpoint_dir`` is set as that directory when none is (the session's checkpoint files are
    removed once unreferenced: ``spark.cleaner.referenceTracking.cleanCheckpoints``).
    """
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    sc = train.sparkSession.sparkContext
    if checkpoint_dir and sc.getCheckpointDir() is None:
        sc.setCheckpointDir(checkpoint_dir)
    if sc.getCheckpointDir() is None:
        logger.warning("ALS without a checkpoint directory: %d iterations may overflow the stack", iterations)
    data = train.groupBy("user", "item").agg(F.count(F.lit(1)).cast("float").alias("rating"))
    model = ALS(rank=rank, regParam=reg, alpha=alpha, maxIter=iterations, implicitPrefs=True, seed=seed,
                userCol="user", itemCol="item", ratingCol="rating", coldStartStrategy="drop",
                checkpointInterval=checkpoint_interval).fit(data)
    users = np.zeros((n_users, rank), dtype=np.float32)
    items = np.zeros((n_items, rank), dtype=np.float32)
    for r in model.userFactors.toLocalIterator():
        users[r["id"]] = r["features"]
    for r in model.itemFactors.toLocalIterator():
        items[r["id"]] = r["features"]
    return FactorScorer(users, items)
