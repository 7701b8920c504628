"""Behaviour/item features and sequences on inline rows: whole results, and as-of correctness."""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from socialrec.features.behaviour import item_features, user_features, user_sequences
from socialrec.schema.tables import SILVER_EVENTS, SILVER_ITEMS, SILVER_REVIEWS, user_count_columns

CUTOFF = datetime(2024, 3, 31)
T = datetime


def events(spark: SparkSession, rows: list[tuple[str, str, str, str, float | None, datetime]]) -> DataFrame:
    return spark.createDataFrame([(*r, "s", "b") for r in rows], SILVER_EVENTS.schema)


def items(spark: SparkSession) -> DataFrame:
    rows = [("i1", "Kettle", None, "Kitchen", None, 20.0, "EUR", None, None, "s", "b"),
            ("i2", "Novel", None, "Books", None, 10.0, "EUR", None, None, "s", "b")]
    return spark.createDataFrame(rows, SILVER_ITEMS.schema)


BASE = [
    ("e1", "u1", "i1", "view", None, T(2024, 3, 1)),
    ("e2", "u1", "i1", "purchase", None, T(2024, 3, 28)),
    ("e3", "u1", "i2", "view", None, T(2024, 3, 30)),
    ("e4", "u2", "i1", "rating", 4.0, T(2024, 3, 30, 12)),
]
LATE = [("e9", "u1", "i2", "purchase", None, T(2024, 3, 31)), ("e8", "u3", "i2", "view", None, T(2024, 4, 2))]


def test_user_features_whole_result(spark: SparkSession) -> None:
    got = user_features(events(spark, BASE), items(spark), CUTOFF, "s")
    zero = dict.fromkeys(user_count_columns(), 0)
    # the view of 1 March is exactly 30 days old: windows include their boundary
    u1 = {**zero, "n_view_7d": 1, "n_view_30d": 2, "n_view_all": 2, "n_purchase_7d": 1, "n_purchase_30d": 1,
          "n_purchase_all": 1}
    u2 = {**zero, "n_rating_7d": 1, "n_rating_30d": 1, "n_rating_all": 1}
    want = spark.createDataFrame(
        [
            {"user_id": "u1", "cutoff_ts": CUTOFF, "source": "s", **u1, "first_ts": T(2024, 3, 1),
             "last_ts": T(2024, 3, 30), "recency_days": 1.0, "active_days": 3, "top_category": "Kitchen",
             "category_affinity": '{"Kitchen":0.6667,"Books":0.3333}', "price_mean_viewed": 15.0,
             "price_mean_purchased": 20.0},
            {"user_id": "u2", "cutoff_ts": CUTOFF, "source": "s", **u2, "first_ts": T(2024, 3, 30, 12),
             "last_ts": T(2024, 3, 30, 12), "recency_days": 0.5, "active_days": 1, "top_category": "Kitchen",
             "category_affinity": '{"Kitchen":1.0}', "price_mean_viewed": None, "price_mean_purchased": None},
        ],
        got.schema,
    )
    assertDataFrameEqual(got, want)


def test_events_at_or_after_the_cutoff_change_nothing(spark: SparkSession) -> None:
    base, late = events(spark, BASE), events(spark, BASE + LATE)
    reviews = spark.createDataFrame([("r1", "u2", "i1", 4.0, "ok", 1.0, T(2024, 4, 1), "s", "b")], SILVER_REVIEWS.schema)
    no_reviews = reviews.limit(0)
    assertDataFrameEqual(user_features(late, items(spark), CUTOFF, "s"), user_features(base, items(spark), CUTOFF, "s"))
    assertDataFrameEqual(item_features(late, reviews, CUTOFF, "s", 14.0), item_features(base, no_reviews, CUTOFF, "s", 14.0))
    assertDataFrameEqual(user_sequences(late, CUTOFF, "s", 10), user_sequences(base, CUTOFF, "s", 10))


def test_item_features_whole_result(spark: SparkSession) -> None:
    reviews = spark.createDataFrame(
        [("r1", "u2", "i1", 4.0, "ok", 1.0, T(2024, 3, 30), "s", "b"), ("r2", "u1", "i3", 5.0, None, None, T(2024, 3, 2), "s", "b")],
        SILVER_REVIEWS.schema,
    )
    got = item_features(events(spark, BASE), reviews, CUTOFF, "s", half_life_days=1.0).withColumn(
        "popularity_decayed", F.round("popularity_decayed", 6)
    )
    # i1: events 30, 3 and 0.5 days old with a 1-day half-life; i3 only has a review.
    pop_i1 = round(2 ** -30 + 2 ** -3 + 2 ** -0.5, 6)
    want = spark.createDataFrame(
        [
            ("i1", CUTOFF, "s", pop_i1, 3, 2, 1, 1, 1.0, 4.0, 1, 1),
            ("i2", CUTOFF, "s", round(2 ** -1, 6), 1, 1, 1, 0, 0.0, None, 0, 0),
            ("i3", CUTOFF, "s", 0.0, 0, 0, 0, 0, None, None, 0, 1),
        ],
        got.schema,
    )
    assertDataFrameEqual(got, want)


def test_sequences_keep_the_latest_n_oldest_first(spark: SparkSession) -> None:
    got = user_sequences(events(spark, BASE), CUTOFF, "s", length=2)
    want = spark.createDataFrame(
        [
            ("u1", CUTOFF, "s", ["i1", "i2"], ["purchase", "view"], [T(2024, 3, 28), T(2024, 3, 30)]),
            ("u2", CUTOFF, "s", ["i1"], ["rating"], [T(2024, 3, 30, 12)]),
        ],
        got.schema,
    )
    assertDataFrameEqual(got, want)
