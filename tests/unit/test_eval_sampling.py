"""The training loop's validation and test passes on a seeded sample of users (``train.max_eval_users``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from socialrec.training.loop import eval_fraction, evaluate, sampled_users_mask
from tests.unit.test_model import N_ITEMS, L, N, make

IDS = np.arange(200_000, dtype=np.int64)


def test_the_sample_is_seeded_sized_and_nested() -> None:
    small, large = sampled_users_mask(IDS, 0.1, seed=42), sampled_users_mask(IDS, 0.3, seed=42)
    assert np.array_equal(small, sampled_users_mask(IDS, 0.1, seed=42))  # every rank and epoch: the same users
    assert abs(small.mean() - 0.1) < 0.005 and abs(large.mean() - 0.3) < 0.005
    assert not small[~large].any()  # a user in the smaller sample is in the larger one
    other = sampled_users_mask(IDS, 0.1, seed=43)
    assert (small != other).mean() > 0.1  # another seed, other users
    # not a stripe of ids: each tenth of the id range holds its share
    assert all(abs(chunk.mean() - 0.1) < 0.01 for chunk in np.array_split(small, 10))
    assert sampled_users_mask(IDS[:5], 1.0, seed=42).tolist() == [True] * 5


@pytest.mark.parametrize(("n_users", "max_users", "expected"), [(100, None, 1.0), (100, 50, 0.5), (100, 200, 1.0), (100, 100, 1.0)])
def test_eval_fraction(n_users: int, max_users: int | None, expected: float) -> None:
    assert eval_fraction(n_users, max_users) == expected


def _queries(users: np.ndarray) -> pa.Table:
    truth = [sorted({int(u) % N_ITEMS, int(u) * 3 % N_ITEMS}) for u in users]
    exclude = [[(int(u) + 1) % N_ITEMS] if (int(u) + 1) % N_ITEMS not in t else [] for u, t in zip(users, truth, strict=True)]
    return pa.table({
        "user_idx": pa.array(users, pa.int32()),
        "seq": pa.array([[-1] * L for _ in users], pa.list_(pa.int32())),
        "neighbours": pa.array([[-1] * N for _ in users], pa.list_(pa.int32())),
        "truth": pa.array(truth, pa.list_(pa.int32())),
        "exclude": pa.array(exclude, pa.list_(pa.int32())),
    })


def test_a_sampled_pass_equals_a_full_pass_over_the_sampled_users(tmp_path: Path) -> None:
    users = np.arange(3000, dtype=np.int64)
    (tmp_path / "all").mkdir()
    (tmp_path / "kept").mkdir()
    pq.write_table(_queries(users[:1700]), tmp_path / "all" / "part-0.parquet")
    pq.write_table(_queries(users[1700:]), tmp_path / "all" / "part-1.parquet")
    mask = sampled_users_mask(users, 0.25, seed=7)
    pq.write_table(_queries(users[mask]), tmp_path / "kept" / "part-0.parquet")
    popularity = torch.tensor([5.0, 1.0, 7.0, 3.0, 2.0, 8.0, 4.0, 6.0])  # most-popular through the same code path
    model = make()

    sampled = evaluate(model, str(tmp_path / "all"), [2, 4], 0, 1, "cpu", 256, popularity, fraction=0.25, seed=7)
    reference = evaluate(model, str(tmp_path / "kept"), [2, 4], 0, 1, "cpu", 256, popularity)
    full = evaluate(model, str(tmp_path / "all"), [2, 4], 0, 1, "cpu", 256, popularity)

    assert sampled["users"] == mask.sum() == reference["users"] and full["users"] == 3000
    assert sampled == pytest.approx(reference, rel=1e-12)
    assert full["ndcg@2"] != sampled["ndcg@2"]  # the sample was used, not the whole file
