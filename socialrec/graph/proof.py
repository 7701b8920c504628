"""Social proof per (user, item), as of a cutoff (gold.social_proof).

For a user ``u`` and an item ``i``: how many of ``u``'s sampled 1-hop neighbours bought (``purchase``),
liked (``like`` or ``favourite``), rated (``rating``) or reviewed ``i`` strictly before ``cutoff_ts``;
``n_neighbours`` = the distinct neighbours with any of those actions; ``top_neighbours`` = the ``top_n``
strongest of them (tie strength desc, then id), comma-joined. Only pairs with at least one such neighbour
have a row.

As-of correctness: every event and review at or after the cutoff is dropped before anything else, so
adding one changes nothing. Reviews without a timestamp cannot be shown to predate the cutoff and are
left out. The neighbour lists come from the sampled neighbourhoods (``<= k1`` per user), which bounds the
work per (user, item) and is what the model sees.
"""
from __future__ import annotations

import logging
from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from socialrec.graph._common import ts_lit
from socialrec.schema import columns as C
from socialrec.schema.tables import GOLD_SOCIAL_PROOF
from socialrec.schema.validate import require_columns

logger = logging.getLogger(__name__)

BOUGHT_TYPES: tuple[str, ...] = ("purchase",)
LIKED_TYPES: tuple[str, ...] = ("like", "favourite")
RATED_TYPES: tuple[str, ...] = ("rating",)
_FLAGS = ("_bought", "_liked", "_rated", "_reviewed")


def neighbour_actions(events: DataFrame, reviews: DataFrame | None, cutoff_ts: datetime) -> DataFrame:
    """``(_actor, item_id, _bought, _liked, _rated, _reviewed)``: one row per (user, item) with any proof
    action strictly before ``cutoff_ts``, with a flag per kind."""
    require_columns(events, [C.USER_ID, C.ITEM_ID, C.EVENT_TYPE, C.TS], "events")
    cutoff = ts_lit(cutoff_ts)
    kind = F.col(C.EVENT_TYPE)
    acts = events.where(
        (F.col(C.TS) < cutoff) & kind.isin(*BOUGHT_TYPES, *LIKED_TYPES, *RATED_TYPES)
    ).select(
        F.col(C.USER_ID).alias("_actor"),
        C.ITEM_ID,
        kind.isin(*BOUGHT_TYPES).alias("_bought"),
        kind.isin(*LIKED_TYPES).alias("_liked"),
        kind.isin(*RATED_TYPES).alias("_rated"),
        F.lit(False).alias("_reviewed"),
    )
    if reviews is not None:
        require_columns(reviews, [C.USER_ID, C.ITEM_ID, C.TS], "reviews")
        acts = acts.unionByName(
            reviews.where(F.col(C.TS).isNotNull() & (F.col(C.TS) < cutoff)).select(
                F.col(C.USER_ID).alias("_actor"),
                C.ITEM_ID,
                *[F.lit(f == "_reviewed").alias(f) for f in _FLAGS],
            )
        )
    return acts.groupBy("_actor", C.ITEM_ID).agg(*[F.max(f).alias(f) for f in _FLAGS])


def social_proof(
    neighbourhoods_hop1: DataFrame,
    events: DataFrame,
    reviews: DataFrame | None,
    cutoff_ts: datetime,
    top_n: int,
) -> DataFrame:
    """gold.neighbourhoods (hop 1; other hops are ignored) + silver events/reviews -> gold.social_proof
    rows as of ``cutoff_ts`` (naive = UTC). See the module docstring."""
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    require_columns(neighbourhoods_hop1, [C.USER_ID, "neighbour_id", "strength", C.SOURCE], "neighbourhoods")
    hop1 = neighbourhoods_hop1
    if "hop" in hop1.columns:
        hop1 = hop1.where(F.col("hop") == 1)
    hop1 = hop1.select(C.USER_ID, F.col("neighbour_id").alias("_actor"), F.col("strength").alias("_s"), C.SOURCE)
    joined = hop1.join(neighbour_actions(events, reviews, cutoff_ts), "_actor")
    # One window, not a group-by: the rows of a (user, item) are sorted strongest first once, the counts
    # are whole-partition aggregates, the top list a frame of the first top_n rows, and row 1 carries all.
    # A group-by would need collect_list (an object aggregate that falls back to sorting anyway) plus its
    # own sort per side of the shuffle; this is one shuffle and one sort (~30% faster at 1M edges).
    # (user, neighbour) is the neighbourhood key and (neighbour, item) is unique after neighbour_actions,
    # so each neighbour meets each (user, item) once: a row count is the distinct neighbour count.
    ordered = Window.partitionBy(C.USER_ID, C.ITEM_ID).orderBy(F.col("_s").desc(), F.col("_actor").asc())
    whole = ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    first_n = ordered.rowsBetween(Window.currentRow, top_n - 1)
    out = joined.select(
        C.USER_ID,
        C.ITEM_ID,
        F.row_number().over(ordered).alias("_rn"),
        *[F.count_if(F.col(f"_{kind}")).over(whole).alias(f"n_{kind}") for kind in ("bought", "liked", "rated", "reviewed")],
        F.count(F.lit(1)).over(whole).alias("n_neighbours"),
        F.array_join(F.collect_list("_actor").over(first_n), ",").alias("top_neighbours"),
        C.SOURCE,
    ).where(F.col("_rn") == 1)
    return out.select(
        C.USER_ID, C.ITEM_ID, "n_bought", "n_liked", "n_rated", "n_reviewed", "n_neighbours", "top_neighbours",
        ts_lit(cutoff_ts).alias("cutoff_ts"), C.SOURCE,
    ).select(*GOLD_SOCIAL_PROOF.column_names)
