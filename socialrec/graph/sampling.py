"""Seeded weighted neighbourhood sampling (gold.neighbourhoods), à la GraphSAGE / PinSage.

Weighted sampling without replacement (Efraimidis & Spirakis): every candidate ``v`` of user ``u`` gets the
key ``-ln(x) / w`` with ``x`` uniform in (0, 1) and ``w`` its strength; the ``k`` smallest keys are a
sample of ``k`` drawn one by one with probability proportional to strength. ``x`` is not ``rand()`` (whose
value depends on the partition a row lands in) but a hash of ``(seed, hop, u, v)``: the same seed gives
the same sample however the input is partitioned, another seed an independent one. Ties between keys
(practically never) go to the smaller neighbour id, so the ranks are a total order.

* Hop 1: the user's out-edges in gold.social_graph (whom they follow / trust / befriend), ``rank <= k1``.
* Hop 2: paths ``u -> m -> v`` through the user's ``hub_cap`` strongest edges and, from each ``m``, ``m``'s
  ``hub_cap`` strongest edges, so a hub with a million followers costs at most ``hub_cap`` paths per user
  who reaches it. ``v`` is neither ``u`` nor a 1-hop neighbour of ``u`` (any graph neighbour, sampled or
  not). The candidate's strength is the sum over its paths of the product of the two tie strengths (many
  strong paths = a close friend of friends), summed exactly (fixed point in a long) so it does not depend
  on partitioning. Then ``rank <= k2`` by the same kind of key (hop 2 in the hash).

Hop 2 is where the work is (~``E * mean(min(out-degree, hub_cap))`` path rows), so it runs on 64-bit
surrogate ids (``xxhash64(salt, id)``, checked to be collision-free, see :func:`surrogate_ids`); its hash
key and ties (equal strengths at the hub cap, equal keys) use those surrogates, which are a fixed function
of the ids, so the result is still a pure function of the graph and the seed. Only the ``<= k2`` winners
per user are mapped back to pseudonyms.
"""
from __future__ import annotations

import logging
import math

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

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


def _ranked(candidates: DataFrame, k: int, key: Column, user: str, neighbour: str) -> DataFrame:
    """``candidates`` ranked per ``user`` by ``key`` (ties: the smaller ``neighbour``), ``rank <= k``."""
    w = Window.partitionBy(user).orderBy(F.col("_key").asc(), F.col(neighbour).asc())
    return (
        candidates.withColumn("_key", key)
        .withColumn(RANK, F.row_number().over(w))
        .where(F.col(RANK) <= k)
        .drop("_key")
    )


def _as_neighbours(graph: DataFrame) -> DataFrame:
    require_columns(graph, [C.SRC_USER_ID, C.DST_USER_ID, STRENGTH, C.SOURCE], "social graph")
    return graph.select(
        F.col(C.SRC_USER_ID).alias(C.USER_ID), F.col(C.DST_USER_ID).alias(NEIGHBOUR_ID), STRENGTH, C.SOURCE
    )


def surrogate_ids(graph: DataFrame, max_salt: int = 8) -> tuple[DataFrame, int]:
    """``(ids, salt)``: every vertex as ``(user_id, _sid, source)`` with ``_sid = xxhash64(salt, user_id)``,
    for the smallest salt under which no two ids share a ``_sid`` (checked: one distinct count).

    Two-hop expansion shuffles ~``E * mean(min(out-degree, hub_cap))`` path rows; with 8-byte keys instead
    of 64-character pseudonyms that moves several times less data, and the check keeps it exact (a 64-bit
    collision among 10M ids has odds of ~3e-6, and the next salt removes it).
    """
    g = _as_neighbours(graph)
    ids = (
        g.select(C.USER_ID, C.SOURCE)
        .unionByName(g.select(F.col(NEIGHBOUR_ID).alias(C.USER_ID), C.SOURCE))
        .groupBy(C.USER_ID)
        .agg(F.min(C.SOURCE).alias(C.SOURCE))
    )
    for salt in range(max_salt):
        row = ids.agg(F.count(F.lit(1)), F.count_distinct(_sid(F.col(C.USER_ID), salt))).first()
        if row is None or row[0] == row[1]:
            return ids.withColumn("_sid", _sid(F.col(C.USER_ID), salt)), salt
        logger.warning("surrogate ids: %d xxhash64 collisions with salt %d; trying the next salt", row[0] - row[1], salt)
    raise RuntimeError(f"xxhash64 surrogate ids collide under {max_salt} salts; ids are not distinct strings?")


def _sid(col: Column, salt: int) -> Column:
    return F.xxhash64(F.lit(int(salt)).cast("long"), col)


def _fixed_point_scale(max_sum: float) -> float:
    """The power of two that maps [0, max_sum] onto [0, 2**62]: sums of terms rounded to multiples of
    ``1 / scale`` are exact in a long (no overflow) and the same in any order; a power of two keeps the
    scaling itself exact."""
    if max_sum <= 0:
        return 1.0
    _mantissa, exponent = math.frexp(max_sum)  # max_sum < 2**exponent
    return math.ldexp(1.0, 62 - exponent)


def _two_hop_fixed(graph: DataFrame, hub_cap: int) -> tuple[DataFrame, DataFrame, float]:
    """``(candidates, ids, scale)``: candidates as surrogate ids ``(_u, _v, _fixed)`` with the summed path
    strength in fixed point (``strength = _fixed / scale``), and the id table to map them back."""
    g = _as_neighbours(graph)
    ids, salt = surrogate_ids(graph)
    edges = g.select(_sid(F.col(C.USER_ID), salt).alias("_u"), _sid(F.col(NEIGHBOUR_ID), salt).alias("_v"), STRENGTH)
    max_strength = g.agg(F.max(STRENGTH)).first()
    smax = float(max_strength[0]) if max_strength and max_strength[0] is not None else 0.0
    scale = _fixed_point_scale(hub_cap * smax * smax)
    w = Window.partitionBy("_u").orderBy(F.col(STRENGTH).desc(), F.col("_v").asc())
    capped = edges.withColumn("_r", F.row_number().over(w)).where(F.col("_r") <= hub_cap)
    first = capped.select("_u", F.col("_v").alias("_mid"), F.col(STRENGTH).alias("_s1"))
    second = capped.select(F.col("_u").alias("_mid"), "_v", F.col(STRENGTH).alias("_s2"))
    paths = first.join(second, "_mid").where(F.col("_v") != F.col("_u"))
    summed = paths.groupBy("_u", "_v").agg(
        F.sum(F.round(F.col("_s1") * F.col("_s2") * F.lit(scale)).cast("long")).alias("_fixed")
    )
    fresh = summed.join(edges.select("_u", "_v"), ["_u", "_v"], "left_anti").where(F.col("_fixed") > 0)
    return fresh, ids, scale


def _with_ids(candidates: DataFrame, ids: DataFrame, scale: float) -> DataFrame:
    """Surrogate candidates -> ``(user_id, neighbour_id, strength, source, ...)`` (other columns kept)."""
    users = ids.select(F.col("_sid").alias("_u"), F.col(C.USER_ID).alias(C.USER_ID), C.SOURCE)
    neighbours = ids.select(F.col("_sid").alias("_v"), F.col(C.USER_ID).alias(NEIGHBOUR_ID))
    return (
        candidates.join(users, "_u")
        .join(neighbours, "_v")
        .withColumn(STRENGTH, F.col("_fixed").cast("double") / F.lit(scale))
    )


def two_hop_candidates(graph: DataFrame, hub_cap: int) -> DataFrame:
    """``(user_id, neighbour_id, strength, source)``: every 2-hop candidate with its summed path strength.

    The heavy part runs on surrogate ids (:func:`surrogate_ids`). The sum over paths is exact: products are
    rounded to a fixed point scaled by the largest possible sum (``hub_cap * max_strength**2``: a user has at
    most ``hub_cap`` middles, each contributing one path to a candidate) and added as longs, so the strength
    does not depend on partitioning (a double sum does, in its last bits); resolution ``2**-62`` of the bound.
    """
    fresh, ids, scale = _two_hop_fixed(graph, hub_cap)
    return _with_ids(fresh, ids, scale).select(C.USER_ID, NEIGHBOUR_ID, STRENGTH, C.SOURCE)


def sample_social_neighbourhoods(graph: DataFrame, k1: int, k2: int, hub_cap: int, seed: int) -> DataFrame:
    """gold.social_graph -> gold.neighbourhoods rows: ``<= k1`` sampled neighbours at hop 1 and ``<= k2``
    at hop 2 per user, ``rank`` 1..k in draw order (see the module docstring)."""
    if k1 < 1 or k2 < 0 or hub_cap < 1:
        raise ValueError(f"need k1 >= 1, k2 >= 0, hub_cap >= 1; got k1={k1}, k2={k2}, hub_cap={hub_cap}")
    g = _as_neighbours(graph)
    hop1 = _ranked(g, k1, sampling_key(seed, 1, C.USER_ID, NEIGHBOUR_ID, STRENGTH), C.USER_ID, NEIGHBOUR_ID)
    hop1 = hop1.select(C.USER_ID, F.lit(1).alias(HOP), NEIGHBOUR_ID, STRENGTH, RANK, C.SOURCE)
    if k2 == 0:
        return hop1.select(*GOLD_NEIGHBOURHOODS.column_names)
    fresh, ids, scale = _two_hop_fixed(graph, hub_cap)
    # The key hashes the surrogate ids (a function of the ids and the salt, so still seeded and
    # partitioning-free); only the <= k2 winners per user are mapped back to pseudonyms.
    key = sampling_key(seed, 2, "_u", "_v", F.col("_fixed").cast("double") / F.lit(scale))
    top = _ranked(fresh, k2, key, "_u", "_v")
    hop2 = _with_ids(top, ids, scale).select(C.USER_ID, F.lit(2).alias(HOP), NEIGHBOUR_ID, STRENGTH, RANK, C.SOURCE)
    return hop1.unionByName(hop2).select(*GOLD_NEIGHBOURHOODS.column_names)
