"""Full-ranking top-K lists for evaluation, on the driver (research-sized datasets only).

Every model is reduced to a *scorer*: ``users -> [len(users), n_items]`` scores. :func:`rank_users` removes
each user's excluded items (the protocol's earlier splits) and keeps the best K, in batches of users so memory
stays ``batch x items``. The same exclusion matrices and user lists are used for every model, so baselines and
socialrec's model are ranked over exactly the same candidates for exactly the same users.

The lists then go to Spark (:mod:`socialrec.evaluation.metrics`) as ``user, item, rank`` rows.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from socialrec.evaluation.baselines import interaction_matrix, top_k

logger = logging.getLogger(__name__)

Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class HeldOut:
    """One evaluated split: its users (with a non-empty truth), their truth and what is never ranked for them."""

    name: str
    users: np.ndarray  # sorted user indices
    truth: sp.csr_matrix  # [n_users, n_items] binary
    exclude: sp.csr_matrix  # [n_users, n_items] binary
    history: sp.csr_matrix  # [n_users, n_items]: what history-based models (ItemKNN, EASE) read for this split


@dataclass
class ProtocolData:
    """A protocol's pairs as sparse matrices: ``train`` and each held-out split."""

    n_users: int
    n_items: int
    train: sp.csr_matrix
    held_out: dict[str, HeldOut]


def protocol_data(pairs: pd.DataFrame, n_users: int, n_items: int, splits: Iterable[str]) -> ProtocolData:
    """From ``user_idx, item_idx, split`` rows. Validation excludes (and reads) the training items; test excludes
    (and reads) training and validation items, as a batch job at the test split point would know them."""
    def matrix(mask: np.ndarray) -> sp.csr_matrix:
        return interaction_matrix(pairs["user_idx"].to_numpy()[mask], pairs["item_idx"].to_numpy()[mask], n_users, n_items)

    split = pairs["split"].to_numpy()
    train = matrix(split == "train")
    earlier = {"validation": split == "train", "test": (split == "train") | (split == "validation")}
    held: dict[str, HeldOut] = {}
    for name in splits:
        truth = matrix(split == name)
        exclude = matrix(earlier[name])
        truth = truth - truth.multiply(exclude)  # a pair is in one split already; kept for safety
        truth.eliminate_zeros()
        users = np.flatnonzero(np.diff(truth.indptr) > 0).astype(np.int64)
        held[name] = HeldOut(name, users, truth.tocsr(), exclude, exclude)
    return ProtocolData(n_users, n_items, train, held)


def rank_users(scorer: Scorer, users: np.ndarray, exclude: sp.csr_matrix, k: int, batch: int = 256) -> np.ndarray:
    """``[len(users), k]`` item indices, best first, excluded items removed (``-1`` where fewer remain)."""
    out = np.full((len(users), k), -1, dtype=np.int64)
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        top = top_k(np.asarray(scorer(chunk)), exclude, chunk, k)
        out[start : start + len(chunk), : top.shape[1]] = top
    return out


def recs_frame(users: np.ndarray, top: np.ndarray) -> pd.DataFrame:
    """``user, item, rank`` rows (rank 1 = best), without the ``-1`` fillers."""
    k = top.shape[1]
    df = pd.DataFrame({
        "user": np.repeat(users, k).astype(np.int64),
        "item": top.ravel().astype(np.int64),
        "rank": np.tile(np.arange(1, k + 1), len(users)).astype(np.int32),
    })
    return df[df["item"] >= 0].reset_index(drop=True)


def ndcg_at(top: np.ndarray, users: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean NDCG@k of ranked lists (numpy; for early stopping: the reported figures come from Spark)."""
    if len(users) == 0:
        return 0.0
    cut = top[:, :k]
    rows = truth[users]
    hits = np.zeros(cut.shape, dtype=np.float64)
    valid = cut >= 0
    r_idx, c_idx = np.nonzero(valid)
    hits[r_idx, c_idx] = np.asarray(rows[r_idx, cut[r_idx, c_idx]]).ravel()
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discounts
    n_truth = np.minimum(np.diff(rows.indptr), k)
    idcg = np.cumsum(discounts)[np.maximum(n_truth, 1) - 1]
    return float(np.mean(dcg / idcg))


def recall_at(top: np.ndarray, users: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean Recall@k (hits / |truth|), numpy."""
    if len(users) == 0:
        return 0.0
    cut = top[:, :k]
    rows = truth[users]
    r_idx, c_idx = np.nonzero(cut >= 0)
    hits = np.zeros(cut.shape, dtype=np.float64)
    hits[r_idx, c_idx] = np.asarray(rows[r_idx, cut[r_idx, c_idx]]).ravel()
    return float(np.mean(hits.sum(1) / np.maximum(np.diff(rows.indptr), 1)))


def monitor_fn(monitor: str) -> Callable[[np.ndarray, np.ndarray, sp.csr_matrix], float]:
    """``ndcg@10`` -> a function of (top, users, truth)."""
    name, _, k = monitor.partition("@")
    fn = {"ndcg": ndcg_at, "recall": recall_at}[name]
    return lambda top, users, truth: fn(top, users, truth, int(k))
