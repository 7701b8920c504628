"""Seeded weighted neighbourhood sampling (gold.neighbourhoods), à la GraphSAGE / PinSage.

Weighted sampling without replacement (Efraimidis & Spirakis): every candidate ``v`` of user ``u`` gets the
key ``-ln(x) / w`` with ``x`` uniform in (0, 1) and ``w`` its strength; the ``k`` smallest keys are a
sample of ``k`` drawn one by one with probability proportional to strength. ``x`` is not ``rand()`` (whose
value depends on the partition a row lands in) but a hash of ``(seed, hop, u, v)``: the same seed gives
the same sample however the input is partitioned, another seed an independent one. Ties between keys
(practically never) go to the smaller neighbour id, so the ranks are a total order.

* Hop 1: the user's out-edges in gold.social_graph (whom they follow / trust / befriend), ``rank <= k1``.
* Hop 2: paths ``u -> m -> v`` through the user's ``hub_cap`` strongest edges and, from each ``m``, ``m``'s
  ``hub_cap`` strongest edges (ties: smaller id), so a hub with a million followers costs at most
  ``hub_cap`` paths per user who reaches it. ``v`` is neither ``u`` nor a 1-hop neighbour of ``u`` (any
  graph neighbour, sampled or not). The candidate's strength is the sum over its paths of the product of
  the two tie strengths (many strong paths = a close friend of friends), summed exactly (decimal) so it
  does not depend on partitioning. Then ``rank <= k2`` by the same kind of key (with another hash salt).
"""
from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from socialrec.graph._common import exact_sum
from socialrec.schema import columns as C
from socialrec.schema.tables import GOLD_NEIGHBOURHOODS
from socialrec.schema.validate import require_columns

logger = logging.getLogger(__name__)

NEIGHBOUR_ID = "neighbour_id"
HOP = "hop"
RANK = "rank"
STRENGTH = "strength"
_TWO_POW_53 = float(1 << 53)


def hash_uniform(seed: int, *cols: Column | str) -> Column:
    """A uniform double in the open interval (0, 1), a pure function of ``seed`` and ``cols``.

    The 53 high bits of ``xxhash64(seed, cols...)``, centred in their bucket so 0 and 1 never occur.
    """
    h = F.xxhash64(F.lit(int(seed)).cast("long"), *cols)
    return (F.shiftrightunsigned(h, 11).cast("double") + F.lit(0.5)) / F.lit(_TWO_POW_53)


def sampling_key(seed: int, hop: int, user: Column | str, neighbour: Column | str, weight: Column | str) -> Column:
    """``-ln(x) / weight`` with ``x = hash_uniform(seed, hop, user, neighbour)``: smaller = drawn earlier."""
    w = F.col(weight) if isinstance(weight, str) else weight
    return -F.log(hash_uniform(seed, F.lit(hop), user, neighbour)) / w


def _top_by_key(candidates: DataFrame, k: int, seed: int, hop: int) -> DataFrame:
    """Rank ``(user_id, neighbour_id, strength, source)`` per user by sampling key, keep ``rank <= k``."""
    key = sampling_key(seed, hop, C.USER_ID, NEIGHBOUR_ID, STRENGTH)
    w = Window.partitionBy(C.USER_ID).orderBy(F.col("_key").asc(), F.col(NEIGHBOUR_ID).asc())
    return (
        candidates.withColumn("_key", key)
        .withColumn(RANK, F.row_number().over(w))
        .where(F.col(RANK) <= k)
        .select(C.USER_ID, F.lit(hop).alias(HOP), NEIGHBOUR_ID, STRENGTH, RANK, C.SOURCE)
    )


def strongest_edges(graph: DataFrame, hub_cap: int) -> DataFrame:
    """Each user's ``hub_cap`` strongest out-edges as ``(user_id, neighbour_id, strength, source)``
    (ties: the smaller neighbour id), the edges that 2-hop expansion may use."""
    w = Window.partitionBy(C.USER_ID).orderBy(F.col(STRENGTH).desc(), F.col(NEIGHBOUR_ID).asc())
    return (
        _as_neighbours(graph)
        .withColumn("_r", F.row_number().over(w))
        .where(F.col("_r") <= hub_cap)
        .drop("_r")
    )


def _as_neighbours(graph: DataFrame) -> DataFrame:
    require_columns(graph, [C.SRC_USER_ID, C.DST_USER_ID, STRENGTH, C.SOURCE], "social graph")
    return graph.select(
        F.col(C.SRC_USER_ID).alias(C.USER_ID), F.col(C.DST_USER_ID).alias(NEIGHBOUR_ID), STRENGTH, C.SOURCE
    )


def two_hop_candidates(graph: DataFrame, hub_cap: int) -> DataFrame:
    """``(user_id, neighbour_id, strength, source)``: every 2-hop candidate with its summed path strength."""
    capped = strongest_edges(graph, hub_cap)
    first = capped.select(C.USER_ID, F.col(NEIGHBOUR_ID).alias("_mid"), F.col(STRENGTH).alias("_s1"), C.SOURCE)
    second = capped.select(
        F.col(C.USER_ID).alias("_mid"), F.col(NEIGHBOUR_ID).alias(NEIGHBOUR_ID), F.col(STRENGTH).alias("_s2")
    )
    paths = first.join(second, "_mid").where(F.col(NEIGHBOUR_ID) != F.col(C.USER_ID))
    summed = paths.groupBy(C.USER_ID, NEIGHBOUR_ID).agg(
        exact_sum(F.col("_s1") * F.col("_s2")).alias(STRENGTH), F.min(C.SOURCE).alias(C.SOURCE)
    )
    one_hop = _as_neighbours(graph).select(C.USER_ID, NEIGHBOUR_ID)
    return summed.join(one_hop, [C.USER_ID, NEIGHBOUR_ID], "left_anti")


def sample_social_neighbourhoods(graph: DataFrame, k1: int, k2: int, hub_cap: int, seed: int) -> DataFrame:
    """gold.social_graph -> gold.neighbourhoods rows: ``<= k1`` sampled neighbours at hop 1 and ``<= k2``
    at hop 2 per user, ``rank`` 1..k in draw order (see the module docstring)."""
    if k1 < 1 or k2 < 0 or hub_cap < 1:
        raise ValueError(f"need k1 >= 1, k2 >= 0, hub_cap >= 1; got k1={k1}, k2={k2}, hub_cap={hub_cap}")
    hop1 = _top_by_key(_as_neighbours(graph), k1, seed, 1)
    if k2 == 0:
        return hop1.select(*GOLD_NEIGHBOURHOODS.column_names)
    hop2 = _top_by_key(two_hop_candidates(graph, hub_cap), k2, seed, 2)
    return hop1.unionByName(hop2).select(*GOLD_NEIGHBOURHOODS.column_names)
