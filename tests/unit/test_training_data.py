"""Spark-side training inputs: fixed-width padding, training rows, evaluation queries at the split point,
and the item catalogue."""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from socialrec.training.data import (
    item_catalogue,
    item_positive_counts,
    pad_left,
    pad_right,
    query_rows,
    split_start,
    training_rows,
    user_item_bags,
)

EX_SCHEMA = "split string, user_idx int, item_idx int, event_id string, ts timestamp, seq_item_idx array<int>, neighbour_idx array<int>"


def ts(day: int) -> datetime:
    return datetime(2024, 1, day)


def test_padding_keeps_the_latest_items_and_fixes_the_width(spark) -> None:  # type: ignore[no-untyped-def]
    df = spark.createDataFrame([([1, 2, 3, 4, 5],), ([7],), ([],)], "a array<int>")
    got = df.select(pad_left(F.col("a"), 3).alias("left"), pad_right(F.col("a"), 3).alias("right"))
    expected = spark.createDataFrame(
        [([3, 4, 5], [1, 2, 3]), ([-1, -1, 7], [7, -1, -1]), ([-1, -1, -1], [-1, -1, -1])], "left array<int>, right array<int>"
    )
    assertDataFrameEqual(got, expected)


def examples(spark):  # type: ignore[no-untyped-def]
    return spark.createDataFrame(
        [
            ("train", 0, 10, "e1", ts(1), [], [1]),
            ("train", 0, 11, "e2", ts(2), [11, 10, 11], [1]),  # the target's own funnel events leave its sequence
            ("train", 1, 10, "e3", ts(2), [], []),
            ("validation", 0, 11, "e5", ts(5), [10, 11, 12], [1]),  # 11 is a training item of user 0: excluded
            ("validation", 0, 13, "e6", ts(6), [10, 11, 12, 11], [1]),
            ("validation", 1, 10, "e7", ts(5), [10], []),  # only a training item: user 1 has no truth
            ("test", 2, 12, "e8", ts(9), [12], [0, 1]),
        ],
        EX_SCHEMA,
    )


def test_training_rows_are_the_train_split_padded_without_the_target_in_the_sequence(spark) -> None:  # type: ignore[no-untyped-def]
    got = training_rows(examples(spark), seq_len=2, n_neighbours=2)
    expected = spark.createDataFrame(
        [(0, 10, [-1, -1], [1, -1]), (0, 11, [-1, 10], [1, -1]), (1, 10, [-1, -1], [-1, -1])],
        "user_idx int, item_idx int, seq array<int>, neighbours array<int>",
    )
    assertDataFrameEqual(got, expected)


def test_queries_take_the_state_at_the_split_point_and_exclude_training_items(spark) -> None:  # type: ignore[no-untyped-def]
    ex = examples(spark)
    history = spark.createDataFrame(
        [
            (0, 10, ts(1), "e1"),
            (0, 11, ts(2), "e2"),
            (0, 12, ts(3), "v1"),  # a view before the split point: in the state
            (0, 13, ts(5), "v2"),  # a view of the held-out item after the split point: never in the state
            (1, 10, ts(2), "e3"),
            (2, 14, ts(8), "v3"),
        ],
        "user_idx int, item_idx int, ts timestamp, event_id string",
    )
    t1 = split_start(ex, "validation")
    assert t1 == ts(5)
    got = query_rows(ex, history, "validation", ["train"], t1, seq_len=2, n_neighbours=2)
    expected = spark.createDataFrame(
        [(0, [11, 12], [1, -1], [13], [10, 11])],
        "user_idx int, seq array<int>, neighbours array<int>, truth array<int>, exclude array<int>",
    )
    assertDataFrameEqual(got, expected)
    t2 = split_start(ex, "test")
    test = query_rows(ex, history, "test", ["train", "validation"], t2, seq_len=3, n_neighbours=2)
    expected_test = spark.createDataFrame(
        [(2, [-1, -1, 14], [0, 1], [12], [])],
        "user_idx int, seq array<int>, neighbours array<int>, truth array<int>, exclude array<int>",
    )
    assertDataFrameEqual(test, expected_test)


def test_item_catalogue_and_counts(spark) -> None:  # type: ignore[no-untyped-def]
    index = spark.createDataFrame([("s:a", 0), ("s:b", 1), ("s:c", 2)], "item_id string, item_idx int")
    items = spark.createDataFrame(
        [("s:a", "shoes", "acme"), ("s:b", "books", None), ("s:c", None, "acme")], "item_id string, category string, brand string"
    )
    text = spark.createDataFrame([("s:a", "h1"), ("s:b", "h2")], "item_id string, text_hash string")
    vectors = spark.createDataFrame(
        [("m", "h1", [1.0, 0.0]), ("other", "h2", [0.0, 1.0])], "model string, text_hash string, embedding array<float>"
    )
    got = item_catalogue(index, items, text, vectors, "m")
    expected = spark.createDataFrame(
        [(0, 2, 1, [1.0, 0.0]), (1, 1, 0, None), (2, 0, 1, None)],
        "item_idx int, category_id int, brand_id int, embedding array<float>",
    )
    assertDataFrameEqual(got, expected)
    counts = item_positive_counts(examples(spark))
    assertDataFrameEqual(counts, [Row(item_idx=10, n=2), Row(item_idx=11, n=1)])


def test_user_item_bags_are_each_users_latest_distinct_training_items(spark) -> None:  # type: ignore[no-untyped-def]
    history = spark.createDataFrame(
        [(0, 5, ts(1), "a"), (0, 6, ts(2), "b"), (0, 5, ts(3), "c"), (0, 7, ts(3), "d"), (1, 9, ts(1), "e")],
        "user_idx int, item_idx int, ts timestamp, event_id string")
    # user 0: item 5 last seen on day 3 (event c), 7 on day 3 (event d, later), 6 on day 2; newest first, two kept
    assertDataFrameEqual(user_item_bags(history, 2), spark.createDataFrame(
        [(0, [7, 5]), (1, [9])], "user_idx int, items array<int>"))
