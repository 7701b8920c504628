"""Reasons for each recommendation, computed from data (pure DataFrame -> DataFrame, Spark built-ins only).

Each reason is ``struct(kind, text, evidence)`` (:data:`socialrec.schema.tables.REASON`), evidence typed:

========== ============================================== ==============================================
kind       text                                           evidence
========== ============================================== ==============================================
social     "3 people you follow bought this" / "liked"    count (neighbours), action
similar    "similar to <title> you rated 5" / "bought"    item_id, title, rating, action, similarity
           / "viewed" ...
category   "popular in <category> you browse"             category, popularity_rank (in category), count,
                                                          window_days
trending   "trending this week"                           popularity_rank, count, window_days
popular    "popular with shoppers right now" (fallback)   popularity_rank, count, window_days
for_you    "picked for you from your recent activity"     count (your items the model read)
========== ============================================== ==============================================

The first four are added whenever the data supports them; ``popular`` (when the item is among the most
popular) or else ``for_you`` only when none applies, so every row has at least one reason. Social reasons carry
counts of the user's own 1-hop neighbours and nothing else: no other user's id or name ever reaches a reason.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

from socialrec.schema import columns as C
from socialrec.schema.tables import REASON_EVIDENCE

logger = logging.getLogger(__name__)

RATED, BOUGHT, LIKED, CARTED, PLAYED, VIEWED = "rated", "bought", "liked", "carted", "played", "viewed"
# The user's own actions that can anchor "similar to <title> you ...", strongest first (a rating of at least
# ``anchor_min_rating`` is the strongest: 10 + the rating).
ANCHOR_ACTIONS: dict[str, tuple[str, float]] = {
    "rating": (RATED, 10.0), "purchase": (BOUGHT, 4.0), "like": (LIKED, 3.0), "favourite": (LIKED, 3.0),
    "cart": (CARTED, 2.0), "play": (PLAYED, 2.0), "view": (VIEWED, 1.0), "click": (VIEWED, 1.0),
}
ACTION_PHRASES: dict[str, str] = {CARTED: "added to your cart"}


@dataclass(frozen=True)
class ReasonSettings:
    """Thresholds of the reasons (``recommend.*`` in the config)."""

    min_social_count: int = 1
    category_top: int = 20
    trending_top: int = 20
    trending_days: int = 7
    popular_top: int = 100
    popular_days: int = 30


def reason(kind: str, text: Column, **evidence: Column) -> Column:
    """A reason struct; evidence fields not given are typed nulls (every reason has the same struct type)."""
    names = set(REASON_EVIDENCE.fieldNames())
    unknown = set(evidence) - names
    if unknown:
        raise ValueError(f"unknown evidence fields {sorted(unknown)}; allowed: {sorted(names)}")
    ev = F.struct(
        *[(evidence[f.name] if f.name in evidence else F.lit(None)).cast(f.dataType).alias(f.name) for f in REASON_EVIDENCE.fields]
    )
    return F.struct(F.lit(kind).alias("kind"), text.alias("text"), ev.alias("evidence"))


def anchor_items(events: DataFrame, items: DataFrame, n: int, min_rating: float) -> DataFrame:
    """``(user_id, anchor_id, anchor_title, anchor_action, anchor_rating)``: per user, up to ``n`` of their own
    items to explain with: rated >= ``min_rating`` first (highest rating), then bought, liked, carted or played,
    viewed (:data:`ANCHOR_ACTIONS`); latest first.

    One row per (user, item): its strongest action (a rating wins over a purchase of the same item).
    """
    kind = F.col(C.EVENT_TYPE)
    action = F.coalesce(*[F.when(kind == t, F.lit(a)) for t, (a, _) in ANCHOR_ACTIONS.items()])
    weight = F.coalesce(*[F.when(kind == t, F.lit(w)) for t, (_, w) in ANCHOR_ACTIONS.items()])
    rated = kind == "rating"
    mine = events.where(
        F.col(C.EVENT_TYPE).isin(*ANCHOR_ACTIONS) & (~rated | (F.col(C.VALUE) >= F.lit(min_rating)))
    ).select(
        C.USER_ID,
        C.ITEM_ID,
        action.alias("_action"),
        F.when(rated, F.col(C.VALUE)).alias("_rating"),
        # the strength of what the user did (ratings by their value)
        F.when(rated, weight + F.col(C.VALUE)).otherwise(weight).alias("_w"),
        C.TS,
    )
    per_item = mine.groupBy(C.USER_ID, C.ITEM_ID).agg(
        F.max_by(F.struct("_w", "_action", "_rating"), F.struct("_w", C.TS)).alias("_best"), F.max(C.TS).alias("_ts")
    )
    order = Window.partitionBy(C.USER_ID).orderBy(F.desc("_best._w"), F.desc("_ts"), F.asc(C.ITEM_ID))
    return (
        per_item.withColumn("_r", F.row_number().over(order))
        .where(F.col("_r") <= n)
        .join(items.select(C.ITEM_ID, C.TITLE), C.ITEM_ID, "left")
        .where(F.col(C.TITLE).isNotNull())
        .select(
            C.USER_ID,
            F.col(C.ITEM_ID).alias("anchor_id"),
            F.col(C.TITLE).alias("anchor_title"),
            F.col("_best._action").alias("anchor_action"),
            F.col("_best._rating").alias("anchor_rating"),
        )
    )


def _cosine(a: Column, b: Column) -> Column:
    dot = F.aggregate(F.zip_with(a, b, lambda x, y: x * y), F.lit(0.0).cast("double"), lambda acc, x: acc + x)
    na = F.sqrt(F.aggregate(F.transform(a, lambda x: x * x), F.lit(0.0).cast("double"), lambda acc, x: acc + x))
    nb = F.sqrt(F.aggregate(F.transform(b, lambda x: x * x), F.lit(0.0).cast("double"), lambda acc, x: acc + x))
    return dot / F.greatest(na * nb, F.lit(1e-12))


def anchor_pairs(top: DataFrame, anchors: DataFrame) -> DataFrame:
    """``(user_id, item_id, anchor_id, anchor_title, anchor_action, anchor_rating)``: each recommended item with
    each of the user's anchors other than itself (ids only: at most ``anchor_items`` rows per recommendation)."""
    return top.select(C.USER_ID, C.ITEM_ID).join(anchors, C.USER_ID).where(F.col("anchor_id") != F.col(C.ITEM_ID))


def _best_anchor(pairs: DataFrame, min_similarity: float) -> DataFrame:
    """Per (user, item), the anchor with the highest ``similarity`` at or above ``min_similarity`` (ties: the
    larger anchor id)."""
    best = pairs.where(F.col("similarity") >= F.lit(min_similarity)).groupBy(C.USER_ID, C.ITEM_ID).agg(
        F.max_by(
            F.struct("anchor_id", "anchor_title", "anchor_action", "anchor_rating", "similarity"),
            F.struct("similarity", F.col("anchor_id")),
        ).alias("_b")
    )
    return best.select(C.USER_ID, C.ITEM_ID, "_b.*")


def most_similar_anchor(top: DataFrame, anchors: DataFrame, vectors: DataFrame, min_similarity: float) -> DataFrame:
    """``(user_id, item_id, anchor_id, anchor_title, anchor_action, anchor_rating, similarity)``: for each
    recommended pair, the user's anchor item whose text vector is closest (cosine >= ``min_similarity``).

    ``vectors`` is ``(item_id, vector array<float>)``; at most ``anchor_items`` comparisons per row. All in
    Spark: the vectors are attached to the recommended rows and to the anchors *before* these meet on the user,
    so the pairs are formed in that join's output and reduced where they are. (Joining the vectors onto the
    pairs instead moved two 384-float vectors per (user, item, anchor) through two shuffles: ~150 GB at 1M
    users.) When the catalogue's vectors fit on the driver, :func:`most_similar_anchor_broadcast` moves no
    vector at all.
    """
    vec = vectors.select(C.ITEM_ID, F.col("vector").alias("_v"))
    recommended = top.select(C.USER_ID, C.ITEM_ID).join(vec, C.ITEM_ID)
    own = anchors.join(vec.select(F.col(C.ITEM_ID).alias("anchor_id"), F.col("_v").alias("_a")), "anchor_id")
    pairs = (
        recommended.join(own, C.USER_ID)
        .where(F.col("anchor_id") != F.col(C.ITEM_ID))
        .withColumn("similarity", _cosine(F.col("_v"), F.col("_a")))
    )
    return _best_anchor(pairs, min_similarity)


@dataclass(frozen=True)
class TextVectorMatrix:
    """The catalogue's text vectors for :func:`most_similar_anchor_broadcast`: ``ids[i]`` has row ``i``."""

    ids: Any  # numpy array of item ids (object)
    matrix: Any  # numpy float32 (items, dim)

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes) + 80 * len(self.ids)


def _pair_similarities(payload: Any, batches: Iterator[Any]) -> Iterator[Any]:
    """mapInPandas body: ``similarity`` (cosine, in float64) of each pair's item and anchor vectors; pairs with
    a side that has no vector are dropped (as the join drops them)."""
    import numpy as np
    import pandas as pd

    vectors: TextVectorMatrix = payload.value
    index = pd.Index(vectors.ids)
    matrix = vectors.matrix
    norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
    for pdf in batches:
        i, a = index.get_indexer(pdf[C.ITEM_ID]), index.get_indexer(pdf["anchor_id"])
        known = (i >= 0) & (a >= 0)
        pdf, i, a = pdf[known], i[known], a[known]
        dot = np.einsum("ij,ij->i", matrix[i].astype(np.float64), matrix[a].astype(np.float64))
        yield pdf.assign(similarity=dot / np.maximum(norms[i] * norms[a], 1e-12))


def most_similar_anchor_broadcast(top: DataFrame, anchors: DataFrame, vectors: Any, min_similarity: float) -> DataFrame:
    """:func:`most_similar_anchor` with the vectors in a broadcast :class:`TextVectorMatrix` (``vectors``): the
    pairs travel as ids and each Python worker looks both vectors up, so no vector crosses a shuffle."""
    pairs = anchor_pairs(top, anchors)
    schema = StructType([*pairs.schema.fields, StructField("similarity", DoubleType())])
    return _best_anchor(pairs.mapInPandas(partial(_pair_similarities, vectors), schema), min_similarity)


def _number(col: Column) -> Column:
    """5.0 -> "5", 4.5 -> "4.5"."""
    return F.when(col == F.floor(col), col.cast("long").cast("string")).otherwise(F.format_number(col, 1))


def _phrase(action: Column) -> Column:
    out = action
    for a, phrase in ACTION_PHRASES.items():
        out = F.when(action == a, F.lit(phrase)).otherwise(out)
    return out


def _people(n: Column, verb: str) -> Column:
    return F.concat(n.cast("string"), F.when(n == 1, F.lit(" person you follow ")).otherwise(F.lit(" people you follow ")), F.lit(f"{verb} this"))


def with_reasons(
    top: DataFrame,
    social: DataFrame,
    similar: DataFrame,
    top_category: DataFrame,
    popularity: DataFrame,
    trending: DataFrame,
    history: DataFrame,
    settings: ReasonSettings,
) -> DataFrame:
    """``top`` ``(user_id, item_id, ...)`` plus ``reasons``: see the module docstring for the rules.

    Args:
        top: the recommended pairs (any further columns are kept).
        social: :func:`~socialrec.recommend.candidates.social_counts` ``(user_id, item_id, n_bought, n_liked, ...)``.
        similar: :func:`most_similar_anchor` output.
        top_category: ``(user_id, top_category)``.
        popularity: ``(item_id, category, n_users, pop_rank, cat_rank)`` over ``popular_days``.
        trending: the same over ``trending_days`` (only ``item_id, n_users, pop_rank`` are used).
        history: ``(user_id, n_history)``: how many of the user's items the model read.
        settings: thresholds.
    """
    s = settings
    keys = [C.USER_ID, C.ITEM_ID]
    pop = popularity.select(
        C.ITEM_ID, F.col(C.CATEGORY).alias("_cat"), F.col("n_users").alias("_pop_n"), F.col("pop_rank").alias("_pop_rank"),
        F.col("cat_rank").alias("_cat_rank"),
    )
    trend = trending.select(C.ITEM_ID, F.col("n_users").alias("_tr_n"), F.col("pop_rank").alias("_tr_rank"))
    soc = social.select(*keys, F.col("n_bought").alias("_nb"), F.col("n_liked").alias("_nl"))
    sim = similar.select(
        *keys, *[F.col(c).alias(f"_s_{c}") for c in ("anchor_id", "anchor_title", "anchor_action", "anchor_rating", "similarity")]
    )
    joined = (
        top.join(soc, keys, "left")
        .join(sim, keys, "left")
        .join(top_category.select(C.USER_ID, F.col("top_category").alias("_top_cat")), C.USER_ID, "left")
        .join(history.select(C.USER_ID, F.col("n_history").alias("_n_hist")), C.USER_ID, "left")
        .join(pop, C.ITEM_ID, "left")
        .join(trend, C.ITEM_ID, "left")
    )
    n_min = F.lit(s.min_social_count)
    social_reason = (
        F.when(F.col("_nb") >= n_min, reason("social", _people(F.col("_nb"), BOUGHT), count=F.col("_nb"), action=F.lit(BOUGHT)))
        .when(F.col("_nl") >= n_min, reason("social", _people(F.col("_nl"), LIKED), count=F.col("_nl"), action=F.lit(LIKED)))
    )
    you_did = (
        F.when(F.col("_s_anchor_action") == RATED, F.concat(F.lit(" you rated "), _number(F.col("_s_anchor_rating"))))
        .otherwise(F.concat(F.lit(" you "), _phrase(F.col("_s_anchor_action"))))
    )
    similar_reason = F.when(
        F.col("_s_anchor_id").isNotNull(),
        reason(
            "similar",
            F.concat(F.lit("similar to "), F.col("_s_anchor_title"), you_did),
            item_id=F.col("_s_anchor_id"), title=F.col("_s_anchor_title"), rating=F.col("_s_anchor_rating"),
            action=F.col("_s_anchor_action"), similarity=F.round(F.col("_s_similarity"), 4),
        ),
    )
    category_reason = F.when(
        (F.col("_cat") == F.col("_top_cat")) & (F.col("_cat_rank") <= s.category_top),
        reason(
            "category",
            F.concat(F.lit("popular in "), F.col("_cat"), F.lit(" you browse")),
            category=F.col("_cat"), popularity_rank=F.col("_cat_rank"), count=F.col("_pop_n"), window_days=F.lit(s.popular_days),
        ),
    )
    window = "this week" if s.trending_days == 7 else f"in the last {s.trending_days} days"
    trending_reason = F.when(
        F.col("_tr_rank") <= s.trending_top,
        reason("trending", F.lit(f"trending {window}"), popularity_rank=F.col("_tr_rank"), count=F.col("_tr_n"),
               window_days=F.lit(s.trending_days)),
    )
    popular_reason = reason(
        "popular", F.lit("popular with shoppers right now"), popularity_rank=F.col("_pop_rank"), count=F.col("_pop_n"),
        window_days=F.lit(s.popular_days),
    )
    for_you_reason = reason(
        "for_you", F.lit("picked for you from your recent activity"), count=F.coalesce(F.col("_n_hist"), F.lit(0))
    )
    found = F.filter(F.array(social_reason, similar_reason, category_reason, trending_reason), lambda r: r.isNotNull())
    fallback = F.when(F.col("_pop_rank") <= s.popular_top, popular_reason).otherwise(for_you_reason)
    reasons = F.when(F.size(found) > 0, found).otherwise(F.array(fallback))
    return joined.select(*top.columns, reasons.alias(C.REASONS))


def reason_kinds(reasons: Column) -> Column:
    """The kinds of a reasons array (for SQL-like checks and summaries)."""
    return F.transform(reasons, lambda r: r["kind"])


def has_kind(reasons: Column, kinds: Sequence[str]) -> Column:
    """True when any reason is of one of ``kinds``."""
    return F.exists(reasons, lambda r: r["kind"].isin(*kinds))
