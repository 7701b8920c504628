"""Evaluation protocols: RecBole-exact per-user ratio counts, seeded determinism, temporal pairs."""
from __future__ import annotations

from collections import Counter

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
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


EXAMPLE_COLS = (
    "split string, user_id string, user_idx int, item_id string, item_idx int, event_id string, event_type string, "
    "ts timestamp, seq_item_idx array<int>, neighbour_idx array<int>, source string"
)


def test_protocol_examples_one_per_pair_and_train_only_sequences(spark: SparkSession) -> None:
    from datetime import datetime

    from socialrec.evaluation.protocols import protocol_examples

    def ex(event: str, item: int, day: int) -> tuple[object, ...]:
        return ("train", "u0", 0, f"i{item}", item, event, "rating", datetime(2020, 1, day), [9, 9], [5], "s")

    # item 1 twice (earliest e1 kept), item 2 held out by the protocol, item 3 after it in time
    examples = spark.createDataFrame([ex("e1", 1, 1), ex("e2", 1, 2), ex("e3", 2, 3), ex("e4", 3, 4)], EXAMPLE_COLS)
    splits = spark.createDataFrame([(0, 1, "train"), (0, 2, "test"), (0, 3, "train")], "user_idx int, item_idx int, split string")
    got = protocol_examples(examples, splits, sequence_length=5).select("split", "event_id", "item_idx", "seq_item_idx")
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            # item 3's sequence skips the held-out item 2: only earlier *training* items reach a model input
            [("train", "e1", 1, []), ("test", "e3", 2, []), ("train", "e4", 3, [1])],
            "split string, event_id string, item_idx int, seq_item_idx array<int>",
        ),
    )


def test_random_protocol_bags_hold_the_users_other_training_items(spark: SparkSession) -> None:
    from datetime import datetime

    from socialrec.evaluation.protocols import protocol_examples

    def ex(user: int, item: int) -> tuple[object, ...]:  # one timestamp for all, as in LastFM
        return ("train", f"u{user}", user, f"i{item}", item, f"e{user}-{item}", "rating", datetime(2020, 1, 1), [],
                [], "s")

    examples = spark.createDataFrame([ex(0, i) for i in (1, 2, 3, 4)] + [ex(1, 7)], EXAMPLE_COLS)
    splits = spark.createDataFrame([(0, 1, "train"), (0, 2, "train"), (0, 3, "test"), (0, 4, "train"),
                                    (1, 7, "train")], "user_idx int, item_idx int, split string")
    got = protocol_examples(examples, splits, sequence_length=5, bag=True, seed=3).select(
        "user_idx", "item_idx", "split", F.array_sort("seq_item_idx").alias("seq"))
    assertDataFrameEqual(got, spark.createDataFrame(
        # every other training item, whatever the order in time; never the held-out item 3 nor the example's own
        [(0, 1, "train", [2, 4]), (0, 2, "train", [1, 4]), (0, 3, "test", []), (0, 4, "train", [1, 2]),
         (1, 7, "train", [])],
        "user_idx int, item_idx int, split string, seq array<int>"))
    # a user with more training items than sequence_length gets a seeded sample, the same on every run
    capped = protocol_examples(examples, splits, sequence_length=1, bag=True, seed=3).where("user_idx = 0")
    rows = {r["item_idx"]: r["seq_item_idx"] for r in capped.collect()}
    again = {r["item_idx"]: r["seq_item_idx"] for r in
             protocol_examples(examples, splits, sequence_length=1, bag=True, seed=3).where("user_idx = 0").collect()}
    assert rows == again and rows[3] == [] and all(len(rows[i]) == 1 and rows[i][0] not in (i, 3) for i in (1, 2, 4))


def test_protocol_pairs_carry_the_user_id(spark: SparkSession) -> None:
    from datetime import datetime

    from socialrec.evaluation.protocols import protocol_pairs

    rows = [(s, "u0", 0, f"i{i}", i, f"e{i}", "rating", datetime(2020, 1, 1 + i), [], [], "s")
            for s, i in (("train", 1), ("validation", 2), ("test", 3))]
    examples = spark.createDataFrame(rows, EXAMPLE_COLS)
    assertDataFrameEqual(
        protocol_pairs(examples, "temporal", (0.8, 0.1, 0.1), 1),
        spark.createDataFrame([(0, 1, "train", "u0"), (0, 2, "validation", "u0"), (0, 3, "test", "u0")],
                              "user_idx int, item_idx int, split string, user_id string"),
    )
    random = protocol_pairs(examples, "random", (0.4, 0.3, 0.3), 1).collect()
    assert sorted(r["split"] for r in random) == ["test", "train", "validation"]
    with pytest.raises(ValueError, match="unknown protocol"):
        protocol_pairs(examples, "leave_one_out", (0.8, 0.1, 0.1), 1)
