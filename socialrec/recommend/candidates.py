"""Candidates and blending for the recommendations (pure DataFrame -> DataFrame, Spark built-ins only).

Every function takes the data as of the generation time (events strictly before ``as_of``, see
:func:`socialrec.features.behaviour.before`) and returns small, keyed frames:

* :func:`exclusions`: what each user must never be offered again (already bought or rated);
* :func:`social_counts` / :func:`social_candidates`: how many of the user's sampled 1-hop neighbours bought or
  liked an item (counts only: who they were is never carried further), and the best such items per user;
* :func:`item_popularity`: distinct users per item in a window, ranked overall and within the category
  (popular fallback, "popular in <category>", "trending");
* :func:`cold_candidates`: the popular fallback for users the model cannot score;
* :func:`blend`: one score per (user, item) from the three sources, and the top-k by that score.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from socialrec.graph._common import ts_lit
from socialrec.graph.proof import neighbour_actions
from socialrec.schema import columns as C
from socialrec.schema.validate import require_columns

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400


def exclusions(events: DataFrame, event_types: Sequence[str]) -> DataFrame:
    """``(user_id, item_id)``: items the user already has an event of ``event_types`` for (e.g. bought, rated)."""
    require_columns(events, [C.USER_ID, C.ITEM_ID, C.EVENT_TYPE], "events")
    return events.where(F.col(C.EVENT_TYPE).isin(*event_types)).select(C.USER_ID, C.ITEM_ID).distinct()


def social_counts(neighbourhoods: DataFrame, events: DataFrame, as_of: datetime) -> DataFrame:
    """``(user_id, item_id, n_bought, n_liked, n_people)`` over the user's 1-hop neighbours' actions before ``as_of``.

    ``n_people`` = distinct neighbours who bought or liked the item. Counts are all that leaves this function:
    the neighbours' ids are aggregated away here, so no reason can name them.
    """
    require_columns(neighbourhoods, [C.USER_ID, "neighbour_id"], "neighbourhoods")
    hop1 = neighbourhoods
    if "hop" in hop1.columns:
        hop1 = hop1.where(F.col("hop") == 1)
    acts = neighbour_actions(events, None, as_of).where(F.col("_bought") | F.col("_liked"))
    # (user, neighbour) is unique in a neighbourhood and (neighbour, item) after neighbour_actions, so each
    # row is one neighbour: count_if counts people.
    return (
        hop1.select(C.USER_ID, F.col("neighbour_id").alias("_actor"))
        .distinct()
        .join(acts, "_actor")
        .groupBy(C.USER_ID, C.ITEM_ID)
        .agg(
            F.count_if("_bought").alias("n_bought"),
            F.count_if("_liked").alias("n_liked"),
            F.count(F.lit(1)).alias("n_people"),
        )
    )


def social_candidates(counts: DataFrame, excluded: DataFrame, n: int, min_count: int = 1) -> DataFrame:
    """``(user_id, item_id, n_people)``: per user, the ``n`` items most neighbours bought or liked (ties by
    item id), that the user has not already bought or rated."""
    if n <= 0:
        return counts.select(C.USER_ID, C.ITEM_ID, "n_people").limit(0)
    best = Window.partitionBy(C.USER_ID).orderBy(F.desc("n_people"), F.asc(C.ITEM_ID))
    return (
        counts.where(F.col("n_people") >= min_count)
        .join(excluded, [C.USER_ID, C.ITEM_ID], "left_anti")
        .withColumn("_r", F.row_number().over(best))
        .where(F.col("_r") <= n)
        .select(C.USER_ID, C.ITEM_ID, "n_people")
    )


def in_window(events: DataFrame, as_of: datetime, days: int) -> DataFrame:
    """Events in ``[as_of - days, as_of)``."""
    start = ts_lit(as_of).cast("long") - F.lit(days * SECONDS_PER_DAY)
    return events.where((F.col(C.TS) < ts_lit(as_of)) & (F.col(C.TS).cast("long") >= start))


def item_popularity(
    events: DataFrame, items: DataFrame, as_of: datetime, days: int, positive_types: Sequence[str]
) -> DataFrame:
    """``(item_id, category, n_users, pop_rank, cat_rank)``: distinct users with a positive interaction in the
    ``days`` before ``as_of``, ranked overall and within the item's category (ties by item id).

    The overall rank is a window without partition: it sees one row per item (catalogue-sized), not per user.
    """
    require_columns(items, [C.ITEM_ID, C.CATEGORY], "items")
    counts = (
        in_window(events, as_of, days)
        .where(F.col(C.EVENT_TYPE).isin(*positive_types))
        .groupBy(C.ITEM_ID)
        .agg(F.count_distinct(C.USER_ID).alias("n_users"))
    )
    order = [F.desc("n_users"), F.asc(C.ITEM_ID)]
    return counts.join(items.select(C.ITEM_ID, C.CATEGORY), C.ITEM_ID, "left").select(
        C.ITEM_ID,
        C.CATEGORY,
        "n_users",
        F.row_number().over(Window.orderBy(*order)).cast("int").alias("pop_rank"),
        F.row_number().over(Window.partitionBy(C.CATEGORY).orderBy(*order)).cast("int").alias("cat_rank"),
    )


def top_categories(events: DataFrame, items: DataFrame) -> DataFrame:
    """``(user_id, top_category)``: the category of most of the user's events (any type: what they browse),
    ties by category name."""
    per_cat = (
        events.join(items.select(C.ITEM_ID, C.CATEGORY), C.ITEM_ID)
        .where(F.col(C.CATEGORY).isNotNull())
        .groupBy(C.USER_ID, C.CATEGORY)
        .count()
    )
    return per_cat.groupBy(C.USER_ID).agg(
        F.min_by(C.CATEGORY, F.struct(-F.col("count"), F.col(C.CATEGORY))).alias("top_category")
    )


def cold_candidates(cold_users: DataFrame, popularity: DataFrame, excluded: DataFrame, n: int) -> DataFrame:
    """``(user_id, item_id, pop_score)``: the ``n`` most popular items for every user in ``cold_users`` minus
    what they already bought or rated; ``pop_score`` = the item's users over the most popular item's, in (0, 1].

    The popular list is at most ``n`` rows: the cross join is ``n`` rows per cold user.
    """
    top = popularity.where(F.col("pop_rank") <= n)
    peak = top.agg(F.max("n_users").alias("_peak"))
    scored = top.crossJoin(peak).select(
        C.ITEM_ID, (F.col("n_users") / F.greatest(F.col("_peak"), F.lit(1))).alias("pop_score")
    )
    return (
        cold_users.select(C.USER_ID)
        .crossJoin(F.broadcast(scored))
        .join(excluded, [C.USER_ID, C.ITEM_ID], "left_anti")
    )


def social_boost(n_people: Column, weight: float) -> Column:
    """``weight * ln(1 + n_people)``: more neighbours help, with diminishing returns (0 without any)."""
    return F.lit(weight) * F.log1p(F.coalesce(n_people, F.lit(0)).cast("double"))


def blend(
    model_scores: DataFrame,
    social: DataFrame,
    popular: DataFrame,
    k: int,
    social_weight: float,
) -> DataFrame:
    """``(user_id, item_id, score, rank)``: the top ``k`` per user of the union of the candidates.

    * ``model_scores`` ``(user_id, item_id, model_score)``: the model's inner products (its top pool and its
      scores of the user's social candidates);
    * ``social`` ``(user_id, item_id, n_people)``: social candidates;
    * ``popular`` ``(user_id, item_id, pop_score)``: the popular fallback of cold users.

    ``score = base + social_weight * ln(1 + n_people)`` with ``base`` the model score when the model scored
    the pair, else the popularity score (cold users), else 0. Rank 1 is the best; ties by item id, so the
    order is deterministic.
    """
    keys = [C.USER_ID, C.ITEM_ID]
    both = model_scores.join(social, keys, "full_outer").join(popular, keys, "full_outer")
    base = F.coalesce(F.col("model_score").cast("double"), F.col("pop_score").cast("double"), F.lit(0.0))
    scored = both.select(*keys, (base + social_boost(F.col("n_people"), social_weight)).alias("score"))
    order = Window.partitionBy(C.USER_ID).orderBy(F.desc("score"), F.asc(C.ITEM_ID))
    return (
        scored.withColumn("rank", F.row_number().over(order).cast("int"))
        .where(F.col("rank") <= k)
        .select(C.USER_ID, C.ITEM_ID, "score", "rank")
    )
