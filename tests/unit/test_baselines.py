"""Baselines: exclusion-aware top-K, and each recommender on tiny hand-checkable or planted data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.evaluation.baselines import EASE, ItemKNN, LightGCN, MostPopular, fit_als, interaction_matrix, top_k

# Two planted communities: users 0-3 use items 0-3, users 4-7 use items 4-7 (each user misses one item).
USERS = np.array([u for u in range(8) for j in range(4) if j != u % 4])
ITEMS = np.array([(u // 4) * 4 + j for u in range(8) for j in range(4) if j != u % 4])
X = interaction_matrix(USERS, ITEMS, 8, 8)


def test_top_k_excludes_breaks_ties_by_index_and_never_pads_with_excluded_items() -> None:
    scores = np.array([[0.5, 0.9, 0.9, 0.1], [1.0, 1.0, 1.0, 1.0]])
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 1, 1, 0]]))
    assert top_k(scores, exclude, np.array([0, 1]), 2).tolist() == [[2, 0], [3, -1]]


def brute_force_top_k(scores: np.ndarray, exclude: sp.csr_matrix, users: np.ndarray, k: int) -> np.ndarray:
    """The definition, one full sort per row: descending score, then ascending index; excluded or NaN -> -1."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf, posinf=np.inf, neginf=-np.inf)
    s[exclude[users].toarray() > 0] = -np.inf
    k = min(k, s.shape[1])
    out = [np.lexsort((np.arange(len(row)), -row))[:k] for row in s]
    return np.array([np.where(np.isfinite(row[o]), o, -1) for row, o in zip(s, out, strict=True)]).reshape(len(s), k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_top_k_matches_a_full_sort_with_ties_at_the_cut_exclusions_and_nans(dtype: type) -> None:
    rng = np.random.default_rng(7)
    for _ in range(150):
        n_items, n_users, k = int(rng.integers(1, 60)), int(rng.integers(1, 12)), int(rng.integers(1, 70))
        scores = rng.integers(0, 4, (n_users, n_items)).astype(dtype)  # few distinct values: ties at the K-th score
        if dtype is not np.int64 and rng.random() < 0.3:
            scores[rng.random(scores.shape) < 0.1] = np.nan
        exclude = sp.csr_matrix((rng.random((n_users + 5, n_items)) < 0.3).astype(np.float32))
        users = rng.choice(n_users + 5, n_users, replace=False)
        np.testing.assert_array_equal(top_k(scores, exclude, users, k), brute_force_top_k(scores, exclude, users, k))


def test_top_k_keeps_float64_scores_apart_that_float32_would_tie() -> None:
    scores = np.array([[1.0, 1.0 + 1e-12, 0.5]])
    assert top_k(scores, sp.csr_matrix((2, 3)), np.array([1]), 2).tolist() == [[1, 0]]


def test_most_popular() -> None:
    x = interaction_matrix(np.array([0, 1, 1, 2]), np.array([2, 2, 0, 2]), 3, 3)
    model = MostPopular().fit(x)
    assert model.popularity.tolist() == [1, 0, 3]
    assert top_k(model.score(np.array([0])), x, np.array([0]), 2).tolist() == [[0, 1]]


def test_item_knn_hand_computed() -> None:
    # users: 0 -> {0, 1}, 1 -> {0, 1}, 2 -> {1, 2}
    x = interaction_matrix(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 1, 1, 2]), 3, 3)
    model = ItemKNN(neighbours=10, shrink=0.0).fit(x)
    sim = model.sim.toarray()
    assert sim[0, 1] == pytest.approx(2 / (math.sqrt(2) * math.sqrt(3)))
    assert sim[1, 2] == pytest.approx(1 / (math.sqrt(3) * 1))
    assert sim[0, 2] == 0 and sim[0, 0] == 0
    # user 2 ({1, 2}) scores item 0 by sim(1, 0) + sim(2, 0)
    assert model.score(np.array([2]))[0, 0] == pytest.approx(sim[1, 0] + sim[2, 0])
    assert ItemKNN(neighbours=1, shrink=0.0).fit(x).sim.getnnz(axis=1).max() == 1


def test_ease_matches_the_closed_form_and_refuses_huge_catalogues() -> None:
    model = EASE(l2=1.0).fit(X)
    g = (X.T @ X).toarray() + np.eye(8)
    p = np.linalg.inv(g)
    b = np.eye(8) - p / np.diag(p)
    assert np.allclose(model.b, b - np.diag(np.diag(b)))
    # each user's missing item is the top recommendation (same community)
    recs = top_k(model.score(np.arange(8)), X, np.arange(8), 1)[:, 0]
    assert recs.tolist() == [u // 4 * 4 + u % 4 for u in range(8)]
    with pytest.raises(ValueError, match="max_items"):
        EASE(max_items=4).fit(X)


def test_lightgcn_learns_the_planted_communities() -> None:
    model = LightGCN(dim=8, layers=2, lr=0.05, epochs=60, batch_size=8, seed=1, threads=1).fit(X)
    recs = top_k(model.score(np.arange(8)), X, np.arange(8), 1)[:, 0]
    assert [r // 4 for r in recs] == [u // 4 for u in range(8)]


def test_als_cuts_its_lineage_so_long_fits_do_not_overflow_the_stack(spark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Without a checkpoint directory 30 iterations overflow the driver's stack serialising a task and kill the JVM
    # (measured on this data); the 3M-event evaluate stage hit it at 15 iterations.
    train = spark.createDataFrame([(int(u), int(i)) for u, i in zip(USERS, ITEMS, strict=True)], "user int, item int")
    model = fit_als(train, 8, 8, rank=4, reg=0.01, alpha=10.0, iterations=30, seed=3,
                    checkpoint_dir=str(tmp_path / "checkpoints"))
    assert spark.sparkContext.getCheckpointDir() is not None
    recs = top_k(model.score(np.arange(8)), X, np.arange(8), 1)[:, 0]
    assert [r // 4 for r in recs] == [u // 4 for u in range(8)]


def test_als_in_spark_learns_the_planted_communities(spark) -> None:  # type: ignore[no-untyped-def]
    train = spark.createDataFrame([(int(u), int(i)) for u, i in zip(USERS, ITEMS, strict=True)], "user int, item int")
    model = fit_als(train, 8, 8, rank=4, reg=0.01, alpha=10.0, iterations=10, seed=3)
    assert model.user_factors.shape == (8, 4) and model.item_factors.shape == (8, 4)
    recs = top_k(model.score(np.arange(8)), X, np.arange(8), 1)[:, 0]
    assert [r // 4 for r in recs] == [u // 4 for u in range(8)]
