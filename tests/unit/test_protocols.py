"""Evaluation protocols: RecBole-exact per-user ratio counts, seeded determinism, temporal pairs."""
from __future__ import annotations

from collections import Counter

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from socialrec.evaluation.protocols import random_user_split, temporal_pairs


def recbole_counts(n: int, ratios: tuple[float, float, float]) -> tuple[int, int, int]:
    """RecBole's ``_calcu_split_ids`` (recbole/data/dataset/dataset.py), transcribed."""
    cnt = [int(r * n) for r in ratios]
    cnt[0] = n - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * n < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt[0], cnt[1], cnt[2]


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.1, 0.2)])
def test_per_user_counts_match_recbole(spark: SparkSession, ratios: tuple[float, float, float]) -> None:
    sizes = [1, 2, 3, 5, 9, 10, 13, 27]
    pairs = spark.createDataFrame([(f"u{n}", f"i{j}") for n in sizes for j in range(n)], "user string, item string")
    got = random_user_split(pairs, ratios, seed=3).collect()
    counts = Counter((r["user"], r["split"]) for r in got)
    for n in sizes:
        want = recbole_counts(n, ratios)
        assert (counts[(f"u{n}", "train")], counts[(f"u{n}", "validation")], counts[(f"u{n}", "test")]) == want, n


def test_split_is_seeded(spark: SparkSession) -> None:
    pairs = spark.createDataFrame([(f"u{u}", f"i{j}") for u in range(5) for j in range(20)], "user string, item string")
    a = random_user_split(pairs, (0.8, 0.1, 0.1), seed=1)
    assertDataFrameEqual(a, random_user_split(pairs.repartition(3), (0.8, 0.1, 0.1), seed=1))
    assert a.exceptAll(random_user_split(pairs, (0.8, 0.1, 0.1), seed=2)).count() > 0
    with pytest.raises(ValueError, match="summing to 1"):
        random_user_split(pairs, (0.8, 0.1), seed=1)


def test_temporal_pairs_keep_the_earliest_split(spark: SparkSession) -> None:
    ex = spark.createDataFrame(
        [("train", 0, 1), ("validation", 0, 1), ("validation", 0, 2), ("test", 0, 2), ("test", 1, 3)],
        "split string, user_idx int, item_idx int",
    )
    assertDataFrameEqual(
        temporal_pairs(ex),
        spark.createDataFrame([(0, 1, "train"), (0, 2, "validation"), (1, 3, "test")], "user int, item int, split string"),
    )
