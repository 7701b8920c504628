"""Stable indices and temporal-split examples on inline rows."""
from __future__ import annotations

from datetime import datetime as T

from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from socialrec.features.examples import extend_index, temporal_examples
from socialrec.schema.tables import GOLD_NEIGHBOURHOODS, GOLD_USER_INDEX, SILVER_EVENTS


def test_existing_ids_keep_their_index_and_new_ids_are_appended_in_order(spark: SparkSession) -> None:
    existing = spark.createDataFrame([("u5", 0, "s"), ("u1", 1, "s")], GOLD_USER_INDEX.schema)
    ids = spark.createDataFrame([("u1",), ("u9",), ("u5",), ("u2",), ("u2",)], "user_id string")
    got = extend_index(spark, ids, existing, "user_id", "user_idx", "s")
    assertDataFrameEqual(got, spark.createDataFrame([("u2", 2, "s"), ("u9", 3, "s")], GOLD_USER_INDEX.schema))
    empty = existing.limit(0)
    first = extend_index(spark, ids, empty, "user_id", "user_idx", "s")
    assertDataFrameEqual(first, spark.createDataFrame([("u1", 0, "s"), ("u2", 1, "s"), ("u5", 2, "s"), ("u9", 3, "s")], GOLD_USER_INDEX.schema))


def test_examples_see_only_earlier_items_and_get_split_labels(spark: SparkSession) -> None:
    ev = spark.createDataFrame(
        [
            ("e1", "u1", "i1", "view", None, T(2024, 1, 1), "s", "b"),
            ("e2", "u1", "i2", "purchase", None, T(2024, 1, 2), "s", "b"),
            ("e3", "u1", "i3", "view", None, T(2024, 1, 3), "s", "b"),
            ("e4", "u1", "i1", "purchase", None, T(2024, 1, 5), "s", "b"),
            ("e5", "u2", "i3", "rating", 5.0, T(2024, 1, 9), "s", "b"),
        ],
        SILVER_EVENTS.schema,
    )
    users = spark.createDataFrame([("u1", 0, "s"), ("u2", 1, "s")], "user_id string, user_idx int, source string")
    items = spark.createDataFrame([("i1", 0, "s"), ("i2", 1, "s"), ("i3", 2, "s")], "item_id string, item_idx int, source string")
    nb = spark.createDataFrame([("u1", 1, "u2", 0.9, 1, "s"), ("u2", 2, "u1", 0.1, 1, "s")], GOLD_NEIGHBOURHOODS.schema)
    got = temporal_examples(
        ev, users, items, nb, target_types=["purchase", "rating"], t1=T(2024, 1, 4), t2=T(2024, 1, 8),
        sequence_length=2, neighbours=5, source="s",
    )
    want = spark.createDataFrame(
        [
            ("train", "u1", 0, "i2", 1, "e2", "purchase", T(2024, 1, 2), [0], [1], "s"),
            ("validation", "u1", 0, "i1", 0, "e4", "purchase", T(2024, 1, 5), [1, 2], [1], "s"),
            ("test", "u2", 1, "i3", 2, "e5", "rating", T(2024, 1, 9), [], [], "s"),
        ],
        got.schema,
    )
    assertDataFrameEqual(got, want)
