"""Behaviour and item features as of a cutoff (DESIGN §4, §7).

Every function takes the cutoff explicitly and only reads rows with ``ts < cutoff``: features used to train
or evaluate at a split point never see what happened after it. Spark built-ins only.
"""
from __future__ import annotations

import math
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from socialrec.schema import columns as C
from socialrec.schema.tables import (
    FEATURE_WINDOWS_DAYS,
    GOLD_ITEM_FEATURES,
    GOLD_USER_FEATURES,
    GOLD_USER_SEQUENCES,
)

SECONDS_PER_DAY = 86_400.0
TOP_CATEGORIES = 5


def before(df: DataFrame, cutoff: datetime, ts_col: str = C.TS) -> DataFrame:
    """Rows strictly before the cutoff: the single as-of rule every feature goes through."""
    return df.where(F.col(ts_col) < F.lit(cutoff))


def _age_days(cutoff: datetime) -> Column:
    return (F.lit(cutoff).cast("double") - F.col(C.TS).cast("double")) / SECONDS_PER_DAY


def user_features(events: DataFrame, items: DataFrame, cutoff: datetime, source: str) -> DataFrame:
    """GOLD_USER_FEATURES for every user with at least one event before ``cutoff``.

    ``items`` supplies category and price (item_id, category, price); events of unknown items count in the
    event counts but not in the affinities.
    """
    ev = before(events, cutoff).withColumn("_age", _age_days(cutoff))
    counts: list[Column] = []
    for t in C.EVENT_TYPES:
        is_t = F.col(C.EVENT_TYPE) == t
        for d in FEATURE_WINDOWS_DAYS:
            counts.append(F.count_if(is_t & (F.col("_age") <= d)).alias(f"n_{t}_{d}d"))
        counts.append(F.count_if(is_t).alias(f"n_{t}_all"))
    activity = ev.groupBy(C.USER_ID).agg(
        *counts,
        F.min(C.TS).alias("first_ts"),
        F.max(C.TS).alias("last_ts"),
        F.count_distinct(F.to_date(C.TS)).alias("active_days"),
    )
    catalogue = items.select(C.ITEM_ID, F.col(C.CATEGORY).alias("_cat"), F.col(C.PRICE).alias("_price"))
    with_items = ev.join(catalogue, C.ITEM_ID, "left")
    prices = with_items.groupBy(C.USER_ID).agg(
        F.avg(F.when(F.col(C.EVENT_TYPE) == "view", F.col("_price"))).alias("price_mean_viewed"),
        F.avg(F.when(F.col(C.EVENT_TYPE) == "purchase", F.col("_price"))).alias("price_mean_purchased"),
    )
    per_cat = with_items.where(F.col("_cat").isNotNull()).groupBy(C.USER_ID, "_cat").count()
    total = Window.partitionBy(C.USER_ID)
    ranked = per_cat.withColumns(
        {
            "_share": F.round(F.col("count") / F.sum("count").over(total), 4),
            "_rank": F.row_number().over(total.orderBy(F.desc("count"), F.col("_cat"))),
        }
    ).where(F.col("_rank") <= TOP_CATEGORIES)
    affinity = ranked.groupBy(C.USER_ID).agg(
        F.min_by(F.col("_cat"), F.col("_rank")).alias("top_category"),
        # Sorted by rank, so the JSON reads strongest first.
        F.to_json(
            F.map_from_entries(
                F.transform(
                    F.array_sort(F.collect_list(F.struct(F.col("_rank"), F.col("_cat"), F.col("_share")))),
                    lambda s: F.struct(s["_cat"], s["_share"]),
                )
            )
        ).alias("category_affinity"),
    )
    out = (
        activity.join(prices, C.USER_ID, "left")
        .join(affinity, C.USER_ID, "left")
        .withColumns(
            {
                "cutoff_ts": F.lit(cutoff),
                C.SOURCE: F.lit(source),
                "recency_days": (F.lit(cutoff).cast("double") - F.col("last_ts").cast("double")) / SECONDS_PER_DAY,
            }
        )
    )
    return out.select(*GOLD_USER_FEATURES.column_names)


def item_features(
    events: DataFrame, reviews: DataFrame, cutoff: datetime, source: str, half_life_days: float
) -> DataFrame:
    """GOLD_ITEM_FEATURES for every item with an event or review before ``cutoff``.

    ``popularity_decayed`` sums ``2^(-age/half_life)`` over events; conversion = distinct purchasers who
    also viewed / distinct viewers (null without viewers).
    """
    ev = before(events, cutoff).withColumn("_age", _age_days(cutoff))
    decay = F.exp(F.lit(-math.log(2) / half_life_days) * F.col("_age"))
    viewer = F.when(F.col(C.EVENT_TYPE) == "view", F.col(C.USER_ID))
    buyer = F.when(F.col(C.EVENT_TYPE) == "purchase", F.col(C.USER_ID))
    per_user = ev.groupBy(C.ITEM_ID, C.USER_ID).agg(
        F.max(F.col(C.EVENT_TYPE) == "view").alias("_viewed"), F.max(F.col(C.EVENT_TYPE) == "purchase").alias("_bought")
    )
    conversion = per_user.groupBy(C.ITEM_ID).agg(
        F.count_if(F.col("_viewed") & F.col("_bought")).alias("_converted")
    )
    stats = ev.groupBy(C.ITEM_ID).agg(
        F.sum(decay).alias("popularity_decayed"),
        F.count(F.lit(1)).alias("n_events"),
        F.count_distinct(C.USER_ID).alias("n_users"),
        F.count_distinct(viewer).alias("n_viewers"),
        F.count_distinct(buyer).alias("n_purchasers"),
        F.avg(F.when(F.col(C.EVENT_TYPE) == "rating", F.col(C.VALUE))).alias("rating_mean"),
        F.count_if(F.col(C.EVENT_TYPE) == "rating").alias("rating_count"),
    ).join(conversion, C.ITEM_ID, "left")
    review_counts = before(reviews, cutoff).groupBy(C.ITEM_ID).agg(F.count(F.lit(1)).alias("review_count"))
    out = stats.join(review_counts, C.ITEM_ID, "full_outer").select(
        C.ITEM_ID,
        F.lit(cutoff).alias("cutoff_ts"),
        F.lit(source).alias(C.SOURCE),
        F.coalesce(F.col("popularity_decayed"), F.lit(0.0)).alias("popularity_decayed"),
        *[F.coalesce(F.col(c), F.lit(0)).cast("long").alias(c) for c in ("n_events", "n_users", "n_viewers", "n_purchasers")],
        F.when(F.col("n_viewers") > 0, F.col("_converted") / F.col("n_viewers")).alias("conversion_view_purchase"),
        F.col("rating_mean"),
        F.coalesce(F.col("rating_count"), F.lit(0)).cast("long").alias("rating_count"),
        F.coalesce(F.col("review_count"), F.lit(0)).cast("long").alias("review_count"),
    )
    return out.select(*GOLD_ITEM_FEATURES.column_names)


def user_sequences(events: DataFrame, cutoff: datetime, source: str, length: int) -> DataFrame:
    """GOLD_USER_SEQUENCES: each user's last ``length`` events before ``cutoff``, oldest first (ties by id)."""
    ev = before(events, cutoff)
    latest_first = Window.partitionBy(C.USER_ID).orderBy(F.desc(C.TS), F.desc(C.EVENT_ID))
    recent = ev.withColumn("_n", F.row_number().over(latest_first)).where(F.col("_n") <= length)
    seq = recent.groupBy(C.USER_ID).agg(
        F.array_sort(F.collect_list(F.struct(C.TS, C.EVENT_ID, C.ITEM_ID, C.EVENT_TYPE))).alias("_s")
    )
    return seq.select(
        C.USER_ID,
        F.lit(cutoff).alias("cutoff_ts"),
        F.lit(source).alias(C.SOURCE),
        F.transform("_s", lambda s: s[C.ITEM_ID]).alias("item_ids"),
        F.transform("_s", lambda s: s[C.EVENT_TYPE]).alias("event_types"),
        F.transform("_s", lambda s: s[C.TS]).alias("event_ts"),
    ).select(*GOLD_USER_SEQUENCES.column_names)
