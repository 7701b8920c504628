"""Graph statistics per user (gold.user_graph_features): degrees, weakly connected components, PageRank.

The vertex set is every user of the ``users`` frame (when given) plus every endpoint of an edge: a user
without edges is a component of their own (size 1) and a dangling vertex of PageRank.

Two engines compute components and PageRank, chosen by size:

* **igraph on the driver** when the edge list (and the vertex list) has at most ``igraph_max_edges`` rows and
  fits the driver's budget. That *collects* both lists to the driver (the ids once, then each edge as two 64-bit
  hashes and its weight: about 150 bytes an edge across the pandas, numpy and igraph copies), which is why there
  is a limit; below it igraph is much faster than a Spark job per iteration (STACK.md: PageRank on 1M edges in
  0.3 s). PageRank is PRPACK's exact solution.
* **Spark** above it (or when asked): components by min-label propagation with pointer jumping, PageRank by
  power iteration; both persist the state each iteration, ``localCheckpoint`` it every few iterations so
  the plan (lineage) stays short, and stop once nothing changes (components) or the L1 change falls below
  ``tol`` (PageRank, at most ``iterations`` steps).

Both engines give the same frame: components identically, PageRank within ``tol``-ish of each other once
Spark has converged (the test checks 1e-6 after 100 iterations; with the default 20 iterations the Spark
figures are the 20-step approximation, whose L1 error is at most ``2 * damping**20`` ~ 0.08 and in practice
far less). PageRank is weighted by tie strength; the mass of dangling vertices (no out-edge) is spread
uniformly over all vertices, as igraph does, so the ranks sum to 1.

``component_id`` is the first 16 hex characters of SHA-256 of the component's smallest member id, never a
member's pseudonym: forgetting one user must not delete the rows of everyone in their component.
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Literal, cast

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from socialrec.schema import columns as C
from socialrec.schema.tables import GOLD_USER_GRAPH_FEATURES
from socialrec.schema.validate import require_columns

logger = logging.getLogger(__name__)

Engine = Literal["auto", "spark", "igraph"]
COMPONENT_ID = "component_id"
COMPONENT_SIZE = "component_size"
PAGERANK = "pagerank"
IN_DEGREE = "in_degree"
OUT_DEGREE = "out_degree"


def _edges(graph: DataFrame) -> DataFrame:
    require_columns(graph, [C.SRC_USER_ID, C.DST_USER_ID, "strength", C.SOURCE], "social graph")
    return graph


def graph_vertices(graph: DataFrame, users: DataFrame | None = None) -> DataFrame:
    """``(user_id, source)``: the users (when given) and every edge endpoint, once each."""
    g = _edges(graph)
    ends = g.select(F.col(C.SRC_USER_ID).alias(C.USER_ID), C.SOURCE).unionByName(
        g.select(F.col(C.DST_USER_ID).alias(C.USER_ID), C.SOURCE)
    )
    if users is not None:
        require_columns(users, [C.USER_ID, C.SOURCE], "users")
        ends = users.select(C.USER_ID, C.SOURCE).unionByName(ends)
    return ends.groupBy(C.USER_ID).agg(F.min(C.SOURCE).alias(C.SOURCE))


def degrees(graph: DataFrame, users: DataFrame | None = None) -> DataFrame:
    """``(user_id, in_degree, out_degree)``: edge counts per vertex (0 for users without edges).

    Undirected relations are two directed edges in gold.social_graph, so a friendship counts once in
    each direction."""
    g = _edges(graph)
    out_d = g.groupBy(F.col(C.SRC_USER_ID).alias(C.USER_ID)).agg(F.count(F.lit(1)).alias(OUT_DEGREE))
    in_d = g.groupBy(F.col(C.DST_USER_ID).alias(C.USER_ID)).agg(F.count(F.lit(1)).alias(IN_DEGREE))
    return (
        graph_vertices(graph, users)
        .select(C.USER_ID)
        .join(in_d, C.USER_ID, "left")
        .join(out_d, C.USER_ID, "left")
        .select(
            C.USER_ID,
            F.coalesce(F.col(IN_DEGREE), F.lit(0).cast("long")).alias(IN_DEGREE),
            F.coalesce(F.col(OUT_DEGREE), F.lit(0).cast("long")).alias(OUT_DEGREE),
        )
    )


def degree_distribution(frame: DataFrame) -> DataFrame:
    """``(degree, in_users, out_users)``: how many users have each in- and out-degree, by degree.

    ``frame`` is per-user degrees (:func:`degrees`, gold.user_graph_features) or a social graph, whose
    degrees are then computed (users without edges are then absent)."""
    if IN_DEGREE not in frame.columns or OUT_DEGREE not in frame.columns:
        frame = degrees(frame)
    ins = frame.groupBy(F.col(IN_DEGREE).alias("degree")).agg(F.count(F.lit(1)).alias("in_users"))
    outs = frame.groupBy(F.col(OUT_DEGREE).alias("degree")).agg(F.count(F.lit(1)).alias("out_users"))
    zero = F.lit(0).cast("long")
    return (
        ins.join(outs, "degree", "full")
        .select(
            "degree",
            F.coalesce(F.col("in_users"), zero).alias("in_users"),
            F.coalesce(F.col("out_users"), zero).alias("out_users"),
        )
        .orderBy("degree")
    )


def degree_buckets(distribution: DataFrame) -> DataFrame:
    """``(degree_from, degree_to, in_users, out_users)``: a :func:`degree_distribution` summed into
    power-of-two buckets (0, 1, 2-3, 4-7, ...): at most 64 rows whatever the graph size, so safe to collect
    and print."""
    d = F.col("degree")
    bits = F.when(d <= 0, F.lit(0)).otherwise(F.length(F.bin(d)))
    lo = F.when(bits == 0, F.lit(0).cast("long")).otherwise(F.pow(F.lit(2.0), bits - 1).cast("long"))
    hi = F.when(bits == 0, F.lit(0).cast("long")).otherwise(F.pow(F.lit(2.0), bits).cast("long") - 1)
    return (
        distribution.groupBy(lo.alias("degree_from"), hi.alias("degree_to"))
        .agg(F.sum("in_users").cast("long").alias("in_users"), F.sum("out_users").cast("long").alias("out_users"))
        .orderBy("degree_from")
    )


def _component_id(label: Column) -> Column:
    return F.substring(F.sha2(label, 256), 1, 16)


def component_id_of(smallest_member: str) -> str:
    """The driver-side twin of the Spark expression: SHA-256 hex of the id, first 16 characters."""
    return hashlib.sha256(smallest_member.encode("utf-8")).hexdigest()[:16]


def _materialise(df: DataFrame, iteration: int, checkpoint_every: int) -> DataFrame:
    """Persist ``df`` (or ``localCheckpoint`` it every ``checkpoint_every`` iterations, which also cuts the
    lineage that would otherwise grow by a few joins per iteration)."""
    if checkpoint_every > 0 and iteration % checkpoint_every == 0:
        return df.localCheckpoint(eager=True)
    return df.persist(StorageLevel.MEMORY_AND_DISK)


def connected_components(
    graph: DataFrame,
    users: DataFrame | None = None,
    *,
    max_iterations: int = 100,
    checkpoint_every: int = 3,
) -> DataFrame:
    """``(user_id, component_id, component_size)``: weakly connected components, in Spark.

    Every vertex starts labelled with its own id; each iteration takes the smallest label among itself
    and its neighbours (edges in either direction), then jumps to its label's label (pointer jumping,
    which shortens long chains from linear to about logarithmic in their length). Labels only shrink and
    stay ids of members of the same component, so at the fixed point each component carries its smallest
    member id. Stops when no label changed (one count per iteration) or after ``max_iterations`` (then a
    warning: the labels are a refinement of the components, not wrong but split).
    """
    g = _edges(graph)
    spark = g.sparkSession
    adjacency = (
        g.select(F.col(C.SRC_USER_ID).alias("_v"), F.col(C.DST_USER_ID).alias("_u"))
        .unionByName(g.select(F.col(C.DST_USER_ID).alias("_v"), F.col(C.SRC_USER_ID).alias("_u")))
        .distinct()
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    labels = graph_vertices(graph, users).select(F.col(C.USER_ID).alias("_v"), F.col(C.USER_ID).alias("_label"))
    labels = labels.localCheckpoint(eager=True)
    started = time.perf_counter()
    try:
        for i in range(1, max_iterations + 1):
            spark.sparkContext.setJobDescription(f"socialrec: graph components, iteration {i}")
            incoming = (
                adjacency.join(labels.select(F.col("_v").alias("_u"), F.col("_label").alias("_l")), "_u")
                .groupBy("_v")
                .agg(F.min("_l").alias("_m"))
            )
            step = (
                labels.join(incoming, "_v", "left")
                .select(
                    "_v", F.col("_label").alias("_old"), F.least("_label", F.coalesce("_m", "_label")).alias("_label")
                )
                .persist(StorageLevel.MEMORY_AND_DISK)
            )
            jumped = step.join(
                step.select(F.col("_v").alias("_label"), F.col("_label").alias("_l2")), "_label", "left"
            ).select("_v", "_old", F.least("_label", F.coalesce("_l2", "_label")).alias("_label"))
            new = _materialise(jumped, i, checkpoint_every)
            changed = new.where(F.col("_label") != F.col("_old")).count()
            step.unpersist()
            labels.unpersist()
            labels = new.select("_v", "_label")
            logger.debug("components iteration %d: %d labels changed", i, changed)
            if changed == 0:
                logger.info("connected components converged after %d iterations (%.1f s)", i,
                            time.perf_counter() - started)
                break
        else:
            logger.warning("connected components did not converge in %d iterations; components may be split",
                           max_iterations)
        sizes = labels.groupBy("_label").agg(F.count(F.lit(1)).alias(COMPONENT_SIZE))
        out = labels.join(sizes, "_label").select(
            F.col("_v").alias(C.USER_ID), _component_id(F.col("_label")).alias(COMPONENT_ID), COMPONENT_SIZE
        )
        return out.localCheckpoint(eager=True)
    finally:
        adjacency.unpersist()
        spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]


def pagerank(
    graph: DataFrame,
    users: DataFrame | None = None,
    *,
    iterations: int = 20,
    damping: float = 0.85,
    tol: float = 1e-12,
    checkpoint_every: int = 3,
) -> DataFrame:
    """``(user_id, pagerank)``: strength-weighted PageRank by power iteration in Spark.

    ``r'(v) = (1 - d) / N + d * (sum over u -> v of r(u) * s(u, v) / s(u) + D / N)`` where ``s(u)`` is
    ``u``'s total out-strength and ``D`` the rank held by dangling vertices, spread uniformly (as igraph /
    PRPACK do). Starts uniform; stops after ``iterations`` steps or when the L1 change is below ``tol``.
    One small aggregate per iteration (dangling mass and L1 change) comes back to the driver.
    """
    g = _edges(graph)
    spark = g.sparkSession
    vertices = graph_vertices(graph, users).select(C.USER_ID).localCheckpoint(eager=True)
    n = vertices.count()
    if n == 0:
        return spark.createDataFrame([], f"{C.USER_ID} string, {PAGERANK} double")
    out_strength = g.groupBy(F.col(C.SRC_USER_ID).alias(C.USER_ID)).agg(F.sum("strength").alias("_out"))
    transitions = (
        g.join(out_strength.withColumnRenamed(C.USER_ID, C.SRC_USER_ID), C.SRC_USER_ID)
        .select(C.SRC_USER_ID, C.DST_USER_ID, (F.col("strength") / F.col("_out")).alias("_p"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    state = (
        vertices.join(out_strength.select(C.USER_ID, F.lit(False).alias("_has_out")), C.USER_ID, "left")
        .select(C.USER_ID, F.col("_has_out").isNull().alias("_dangling"), F.lit(1.0 / n).alias("_r"))
        .localCheckpoint(eager=True)
    )
    dangling = state.where("_dangling").agg(F.sum("_r")).first()[0] or 0.0  # type: ignore[index]
    started = time.perf_counter()
    delta = float("nan")
    try:
        for i in range(1, iterations + 1):
            spark.sparkContext.setJobDescription(f"socialrec: graph pagerank, iteration {i}")
            contrib = (
                transitions.join(state.select(F.col(C.USER_ID).alias(C.SRC_USER_ID), "_r"), C.SRC_USER_ID)
                .groupBy(F.col(C.DST_USER_ID).alias(C.USER_ID))
                .agg(F.sum(F.col("_r") * F.col("_p")).alias("_c"))
            )
            base = (1.0 - damping) / n + damping * dangling / n
            new = state.join(contrib, C.USER_ID, "left").select(
                C.USER_ID,
                "_dangling",
                (F.lit(base) + F.lit(damping) * F.coalesce(F.col("_c"), F.lit(0.0))).alias("_r"),
                F.col("_r").alias("_prev"),
            )
            new = _materialise(new, i, checkpoint_every)
            row = new.agg(
                F.sum(F.when(F.col("_dangling"), F.col("_r")).otherwise(F.lit(0.0))).alias("d"),
                F.sum(F.abs(F.col("_r") - F.col("_prev"))).alias("delta"),
            ).first()
            state.unpersist()
            state = new.drop("_prev")
            dangling = float(row["d"] or 0.0)  # type: ignore[index]
            delta = float(row["delta"] or 0.0)  # type: ignore[index]
            logger.debug("pagerank iteration %d: L1 change %.3g", i, delta)
            if delta < tol:
                logger.info("pagerank converged after %d iterations (L1 change %.2g)", i, delta)
                break
        else:
            logger.info("pagerank: %d iterations, last L1 change %.2g (%.1f s)", iterations, delta,
                        time.perf_counter() - started)
        return state.select(C.USER_ID, F.col("_r").alias(PAGERANK)).localCheckpoint(eager=True)
    finally:
        transitions.unpersist()
        spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]


_IGRAPH_SCHEMA = StructType(
    [
        StructField(C.USER_ID, StringType(), False),
        StructField(COMPONENT_ID, StringType(), False),
        StructField(COMPONENT_SIZE, LongType(), False),
        StructField(PAGERANK, DoubleType(), False),
    ]
)


class VertexHashCollision(ValueError):
    """Two vertex ids share a 64-bit hash, so the numbered edge list would be ambiguous (about 3e-8 at 1M users)."""


def igraph_components_pagerank(graph: DataFrame, users: DataFrame | None = None, *, damping: float = 0.85) -> DataFrame:
    """``(user_id, component_id, component_size, pagerank)`` computed by igraph on the driver.

    Collects the vertex list (ids) and the edge list (see the module docstring for the size limit that guards
    this). The edges travel as 64-bit hashes of their end points (Spark's ``xxhash64``), 24 bytes an edge, not as
    two pseudonyms of 64 characters: the driver numbers the vertices by their sorted ids and maps each hash to its
    number with a binary search. A hash shared by two ids raises :class:`VertexHashCollision` (the caller falls back
    to Spark).
    """
    import igraph
    import numpy as np
    import pandas as pd

    g = _edges(graph)
    spark = g.sparkSession
    started = time.perf_counter()
    vertex_frame = cast(pd.DataFrame, graph_vertices(graph, users)
                        .select(C.USER_ID, F.xxhash64(C.USER_ID).alias("_h")).toPandas())
    if not len(vertex_frame):
        return spark.createDataFrame([], _IGRAPH_SCHEMA)
    vertex_frame = vertex_frame.sort_values(C.USER_ID, ignore_index=True)  # vertex i = the i-th smallest id
    ids = vertex_frame[C.USER_ID].to_numpy(dtype=object)
    hashes = vertex_frame["_h"].to_numpy(dtype=np.int64)
    by_hash = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[by_hash]
    if len(sorted_hashes) > 1 and bool((sorted_hashes[1:] == sorted_hashes[:-1]).any()):
        raise VertexHashCollision(f"two of {len(ids):,} vertex ids share a 64-bit hash")
    edges = cast(pd.DataFrame, g.select(F.xxhash64(C.SRC_USER_ID).alias("_s"), F.xxhash64(C.DST_USER_ID).alias("_d"),
                                        F.col("strength").cast("double").alias("_w")).toPandas())

    def numbers(h: pd.Series) -> np.ndarray:
        return by_hash[np.searchsorted(sorted_hashes, h.to_numpy(dtype=np.int64))]

    ig = igraph.Graph(n=len(ids), edges=np.column_stack([numbers(edges["_s"]), numbers(edges["_d"])]), directed=True)
    weights = edges["_w"].to_numpy(dtype=float).tolist()  # igraph takes a list (an array would be an attribute name)
    n_edges = len(edges)
    del edges  # the hashes are no longer needed; igraph holds the edges
    membership = np.asarray(ig.connected_components(mode="weak").membership)
    ranks = np.asarray(ig.pagerank(directed=True, damping=damping, weights=weights if weights else None))
    frame = pd.DataFrame({C.USER_ID: ids, "_c": membership, PAGERANK: ranks})
    grouped = frame.groupby("_c")[C.USER_ID]
    # ids are sorted, so a component's first member is its smallest id.
    smallest = grouped.transform("first")
    frame[COMPONENT_ID] = [component_id_of(s) for s in smallest]
    frame[COMPONENT_SIZE] = grouped.transform("size").astype("int64")
    logger.info("igraph: %d vertices, %d edges, %d components (%.1f s on the driver)", len(ids), n_edges,
                int(membership.max()) + 1, time.perf_counter() - started)
    return spark.createDataFrame(frame[[C.USER_ID, COMPONENT_ID, COMPONENT_SIZE, PAGERANK]], _IGRAPH_SCHEMA)


def user_graph_features(
    graph: DataFrame,
    users: DataFrame | None = None,
    *,
    iterations: int = 20,
    damping: float = 0.85,
    igraph_max_edges: int = 20_000_000,
    engine: Engine = "auto",
) -> DataFrame:
    """gold.user_graph_features rows: degrees, component, PageRank for every vertex (see the module
    docstring). ``engine="auto"`` uses igraph when edges and vertices are both ``<= igraph_max_edges``."""
    vertices = graph_vertices(graph, users).localCheckpoint(eager=True)
    if engine == "auto":
        n_edges = graph.count()
        n_vertices = vertices.count()
        engine = "igraph" if max(n_edges, n_vertices) <= igraph_max_edges else "spark"
        logger.info("graph statistics with %s (%d edges, %d vertices; igraph_max_edges=%d)", engine, n_edges,
                    n_vertices, igraph_max_edges)
    stats: DataFrame | None = None
    if engine == "igraph":
        try:
            stats = igraph_components_pagerank(graph, users, damping=damping)
        except VertexHashCollision as exc:
            logger.warning("graph statistics with spark instead of igraph: %s", exc)
    if stats is None:
        comps = connected_components(graph, users)
        ranks = pagerank(graph, users, iterations=iterations, damping=damping)
        stats = comps.join(ranks, C.USER_ID)
    return (
        vertices.join(degrees(graph, users), C.USER_ID)
        .join(stats, C.USER_ID)
        .select(*GOLD_USER_GRAPH_FEATURES.column_names)
    )
