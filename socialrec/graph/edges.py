"""The social graph: silver edges -> one directed, weighted edge per ordered user pair (gold.social_graph).

Tie strength of ``u -> v``::

    strength = sum over the relations r between u and v of  relation_weights[r] * weight_r
             + overlap_weight * jaccard(items(u), items(v))

* Undirected silver edges (``directed = false``, e.g. ``friend``) become both ``u -> v`` and ``v -> u``;
  several relations between the same ordered pair (a follow and a friendship) merge into one row whose
  ``relations`` lists them, sorted and distinct.
* "Edges derived from interactions where the data has them": silver's ``interaction`` relation (a source
  that records who commented on / replied to whom) enters like any other relation, with its own relation
  weight (0.5 by default, a weaker tie than an explicit follow). Relations missing from
  ``relation_weights``, or with a weight <= 0, are left out: that is how a relation is switched off.
* Interaction overlap: the Jaccard index of the two users' sets of items with a purchase, like, rating or
  favourite event (the "strong" signals; views and clicks are too noisy). It is computed only for pairs
  that already have an edge (one join per side of each edge), never for all user pairs, so its cost
  grows with the edges and the items per user, not with users squared. It strengthens existing ties; it
  does not create edges.
* With ``cutoff_ts``, only edges created before it (or with no creation time) and events before it count,
  so features built as of a cutoff never see the future.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from socialrec.graph._common import exact_sum, ts_lit
from socialrec.schema import columns as C
from socialrec.schema.tables import GOLD_SOCIAL_GRAPH
from socialrec.schema.validate import require_columns

logger = logging.getLogger(__name__)

OVERLAP_EVENT_TYPES: tuple[str, ...] = ("purchase", "like", "rating", "favourite")
STRENGTH = "strength"
RELATIONS = "relations"


def relation_weight(relation: Column, relation_weights: Mapping[str, float]) -> Column:
    """The configured weight of ``relation`` (null when the relation is not configured)."""
    expr: Column | None = None
    for name, w in sorted(relation_weights.items()):
        expr = F.when(relation == name, F.lit(float(w))) if expr is None else expr.when(relation == name, F.lit(float(w)))
    return expr if expr is not None else F.lit(None).cast("double")


def directed_edges(
    edges: DataFrame, relation_weights: Mapping[str, float], cutoff_ts: datetime | None = None
) -> DataFrame:
    """``(src, dst, relation, w, source)``: every usable silver edge in each direction it goes, with
    ``w = relation weight * edge weight``. Self-loops are dropped (silver quarantines them already)."""
    require_columns(edges, [C.SRC_USER_ID, C.DST_USER_ID, C.RELATION, C.WEIGHT, C.DIRECTED, C.SOURCE], "social edges")
    rw = relation_weight(F.col(C.RELATION), relation_weights)
    usable = edges.where(rw.isNotNull() & (rw > 0) & (F.col(C.SRC_USER_ID) != F.col(C.DST_USER_ID)))
    if cutoff_ts is not None:
        usable = usable.where(F.col(C.TS).isNull() | (F.col(C.TS) < ts_lit(cutoff_ts)))
    forward = usable.select(
        C.SRC_USER_ID, C.DST_USER_ID, C.RELATION, (rw * F.col(C.WEIGHT)).alias("w"), C.SOURCE, C.DIRECTED
    )
    backward = forward.where(~F.col(C.DIRECTED)).select(
        F.col(C.DST_USER_ID).alias(C.SRC_USER_ID), F.col(C.SRC_USER_ID).alias(C.DST_USER_ID), C.RELATION, "w",
        C.SOURCE, C.DIRECTED,
    )
    return forward.unionByName(backward).drop(C.DIRECTED)


def interaction_items(
    events: DataFrame, cutoff_ts: datetime | None = None, event_types: Sequence[str] = OVERLAP_EVENT_TYPES
) -> DataFrame:
    """``(user_id, item_id)``, distinct: the items each user bought, liked, rated or favourited."""
    require_columns(events, [C.USER_ID, C.ITEM_ID, C.EVENT_TYPE, C.TS], "events")
    kept = events.where(F.col(C.EVENT_TYPE).isin(list(event_types)))
    if cutoff_ts is not None:
        kept = kept.where(F.col(C.TS) < ts_lit(cutoff_ts))
    return kept.select(C.USER_ID, C.ITEM_ID).distinct()


def pair_overlap(pairs: DataFrame, user_items: DataFrame) -> DataFrame:
    """``(a, b, overlap)``: the Jaccard index of the item sets of ``a`` and ``b`` for the given unordered
    pairs (``a < b``); pairs without a shared item are absent (overlap 0)."""
    ui_a = user_items.select(F.col(C.USER_ID).alias("a"), F.col(C.ITEM_ID).alias("_item"))
    ui_b = user_items.select(F.col(C.USER_ID).alias("b"), F.col(C.ITEM_ID).alias("_item"))
    sizes = user_items.groupBy(C.USER_ID).agg(F.count(F.lit(1)).alias("_n"))
    shared = pairs.join(ui_a, "a").join(ui_b, ["b", "_item"]).groupBy("a", "b").agg(F.count(F.lit(1)).alias("_shared"))
    return (
        shared.join(sizes.select(F.col(C.USER_ID).alias("a"), F.col("_n").alias("_na")), "a")
        .join(sizes.select(F.col(C.USER_ID).alias("b"), F.col("_n").alias("_nb")), "b")
        .select("a", "b", (F.col("_shared") / (F.col("_na") + F.col("_nb") - F.col("_shared"))).alias("overlap"))
    )


def build_social_graph(
    edges: DataFrame,
    events: DataFrame,
    relation_weights: Mapping[str, float],
    overlap_weight: float,
    *,
    cutoff_ts: datetime | None = None,
    overlap_event_types: Sequence[str] = OVERLAP_EVENT_TYPES,
) -> DataFrame:
    """Silver edges (+ events for the overlap) -> the gold.social_graph frame (see the module docstring).

    ``edges`` and ``events`` should hold one source (pseudonyms are per source, so a join across sources
    finds nothing anyway). Sums are exact (decimal), so the strengths do not depend on partitioning.
    """
    merged = (
        directed_edges(edges, relation_weights, cutoff_ts)
        .groupBy(C.SRC_USER_ID, C.DST_USER_ID)
        .agg(
            exact_sum(F.col("w")).alias("_base"),
            F.array_sort(F.collect_set(C.RELATION)).alias(RELATIONS),
            F.min(C.SOURCE).alias(C.SOURCE),
        )
    )
    if overlap_weight > 0:
        pairs = merged.select(
            F.least(C.SRC_USER_ID, C.DST_USER_ID).alias("a"), F.greatest(C.SRC_USER_ID, C.DST_USER_ID).alias("b")
        ).distinct()
        overlap = pair_overlap(pairs, interaction_items(events, cutoff_ts, overlap_event_types))
        merged = merged.join(
            overlap,
            (F.least(merged[C.SRC_USER_ID], merged[C.DST_USER_ID]) == overlap["a"])
            & (F.greatest(merged[C.SRC_USER_ID], merged[C.DST_USER_ID]) == overlap["b"]),
            "left",
        )
        strength = F.col("_base") + F.lit(float(overlap_weight)) * F.coalesce(F.col("overlap"), F.lit(0.0))
    else:
        strength = F.col("_base")
    return merged.select(
        C.SRC_USER_ID, C.DST_USER_ID, strength.alias(STRENGTH), RELATIONS, C.SOURCE
    ).select(*GOLD_SOCIAL_GRAPH.column_names)
