"""Driver-side ranking for evaluation: exclusions, ranks, and the numpy early-stopping metrics against the
independent reference implementation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from socialrec.evaluation import reference
from socialrec.evaluation.predict import monitor_fn, ndcg_at, protocol_data, rank_users, recall_at, recs_frame


def pairs() -> pd.DataFrame:
    rows = [(0, 0, "train"), (0, 1, "train"), (0, 2, "validation"), (0, 3, "test"),
            (1, 1, "train"), (1, 3, "validation"), (1, 4, "test"), (1, 0, "test"),
            (2, 4, "train")]
    return pd.DataFrame(rows, columns=["user_idx", "item_idx", "split"])


def test_protocol_data_truth_and_exclusions() -> None:
    d = protocol_data(pairs(), n_users=3, n_items=5, splits=["validation", "test"])
    assert d.train.toarray().tolist() == [[1, 1, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 1]]
    val, test = d.held_out["validation"], d.held_out["test"]
    assert val.users.tolist() == [0, 1] and test.users.tolist() == [0, 1]
    assert val.exclude.toarray()[1].tolist() == [0, 1, 0, 0, 0]
    # the test split also excludes what validation revealed
    assert test.exclude.toarray()[1].tolist() == [0, 1, 0, 1, 0]
    assert test.truth.toarray()[1].tolist() == [1, 0, 0, 0, 1]


def test_rank_users_removes_exclusions_and_marks_short_lists() -> None:
    d = protocol_data(pairs(), n_users=3, n_items=5, splits=["test"])
    held = d.held_out["test"]
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    top = rank_users(lambda users: np.repeat(scores, len(users), 0), held.users, held.exclude, k=4, batch=1)
    # user 0 excludes 0, 1 (train) and 2 (validation); user 1 excludes 1 and 3
    assert top.tolist() == [[3, 4, -1, -1], [0, 2, 4, -1]]
    frame = recs_frame(held.users, top)
    assert frame.to_dict("list") == {"user": [0, 0, 1, 1, 1], "item": [3, 4, 0, 2, 4], "rank": [1, 2, 1, 2, 3]}


def test_numpy_monitor_metrics_match_the_reference() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items, k = 30, 40, 10
    rows = [(u, i, "train" if rng.random() < 0.6 else "validation") for u in range(n_users)
            for i in rng.choice(n_items, 8, replace=False)]
    d = protocol_data(pd.DataFrame(rows, columns=["user_idx", "item_idx", "split"]), n_users, n_items, ["validation"])
    held = d.held_out["validation"]
    top = rank_users(lambda users: rng.random((len(users), n_items)), held.users, held.exclude, k)
    recs = {str(u): [str(i) for i in row if i >= 0] for u, row in zip(held.users, top, strict=True)}
    truth = {str(u): {str(i) for i in held.truth[u].indices} for u in held.users}
    want = reference.accuracy(recs, truth, [k])
    assert ndcg_at(top, held.users, held.truth, k) == pytest.approx(want[f"ndcg@{k}"], abs=1e-12)
    assert recall_at(top, held.users, held.truth, k) == pytest.approx(want[f"recall@{k}"], abs=1e-12)
    assert monitor_fn("ndcg@10")(top, held.users, held.truth) == pytest.approx(want["ndcg@10"], abs=1e-12)
