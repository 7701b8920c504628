"""Stage ``graph``: silver -> the social graph, sampled neighbourhoods, social proof and graph statistics.

For the configured dataset's source (silver may hold several sources; pseudonyms are per source):

1. silver.social_edges + silver.events -> gold.social_graph (:func:`socialrec.graph.build_social_graph`);
2. gold.social_graph -> gold.neighbourhoods (:func:`socialrec.graph.sample_social_neighbourhoods`);
3. hop-1 neighbourhoods + silver.events/reviews -> gold.social_proof as of ``cutoff_ts``;
4. gold.social_graph + silver.users -> gold.user_graph_features (igraph below ``graph.igraph_max_edges``).

Each step reads the previous step's gold table back, so later steps work from what was committed (and
a rerun of the same inputs gives the same tables: sampling is seeded and sums are exact). Each table's rows
of this source are replaced in one commit; other sources' rows are kept.

``cutoff_ts``: when given, *every* step is as of it (edges created and events at or after it are ignored, so
no feature sees the future of an evaluation split). When omitted, the graph uses everything and the social
proof's cutoff is the last event or review time + 1 second, i.e. everything too.
"""
from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.faults import checkpoint
from socialrec.graph import (
    build_social_graph,
    degree_buckets,
    degree_distribution,
    sample_social_neighbourhoods,
    social_proof,
    user_graph_features,
)
from socialrec.graph._common import utc
from socialrec.graph.stats import Engine, graph_vertices
from socialrec.ingest import adapter_for
from socialrec.lake import Lake
from socialrec.resources import fits_on_driver
from socialrec.schema import columns as C
from socialrec.schema.tables import (
    GOLD_NEIGHBOURHOODS,
    GOLD_SOCIAL_GRAPH,
    GOLD_SOCIAL_PROOF,
    GOLD_USER_GRAPH_FEATURES,
    SILVER_EVENTS,
    SILVER_REVIEWS,
    SILVER_SOCIAL_EDGES,
    SILVER_USERS,
    TableSpec,
)

logger = logging.getLogger(__name__)
# igraph's statistics on the driver, per edge (and per vertex): the hashed edge list in pandas (24 B), the vertex
# numbers (32 B), igraph's edge and index vectors (~32 B), the weights as a list of floats (32 B), slack.
DRIVER_BYTES_PER_EDGE = 150

GOLD_GRAPH_TABLES: tuple[TableSpec, ...] = (
    GOLD_SOCIAL_GRAPH, GOLD_NEIGHBOURHOODS, GOLD_SOCIAL_PROOF, GOLD_USER_GRAPH_FEATURES,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def default_cutoff(events: DataFrame, reviews: DataFrame) -> datetime:
    """The latest event or review time + 1 second (aware UTC); now when there is none.

    Read as epoch microseconds, not as a Python datetime, so the process's time zone cannot shift it."""
    micros = (
        events.select(F.unix_micros(F.col(C.TS)).alias("_us"))
        .unionByName(reviews.select(F.unix_micros(F.col(C.TS)).alias("_us")))
        .agg(F.max("_us"))
        .first()
    )
    latest = micros[0] if micros is not None else None
    if latest is None:
        return datetime.now(UTC).replace(microsecond=0)
    return _EPOCH + timedelta(microseconds=int(latest)) + timedelta(seconds=1)


def replace_source(lake: Lake, df: DataFrame, spec: TableSpec, source: str) -> int:
    """Replace ``spec``'s rows of ``source`` with ``df`` in one commit (other sources' rows are kept,
    :meth:`Lake.replace_source`); returns the rows of ``source`` now in the table."""
    lake.replace_source(df, spec, source)
    checkpoint("graph:after-table")  # crash tests: some graph tables rebuilt, the rest not yet
    return lake.read(spec).where(F.col(C.SOURCE) == source).count()


def stats_engine(spark: SparkSession, cfg: AppConfig, edges: int, vertices: int) -> Engine:
    """igraph on the driver for graphs up to ``graph.igraph_max_edges`` that fit the driver's budget (about 150 B
    an edge across the pandas, numpy and igraph copies); Spark, distributed, for anything larger."""
    if max(edges, vertices) > cfg.graph.igraph_max_edges:
        return "spark"
    if not fits_on_driver(spark, cfg, edges + vertices, DRIVER_BYTES_PER_EDGE):
        logger.warning("graph stats: %d edges exceed the driver's budget (spark.driver_collect_fraction of "
                       "spark.driver.memory); computing them with Spark instead of igraph", edges)
        return "spark"
    return "igraph"


def run(spark: SparkSession, cfg: AppConfig, cutoff_ts: datetime | None = None) -> dict[str, Any]:
    """Build the four gold graph tables for ``data.dataset``'s source; returns a summary (counts, timings,
    the degree buckets) for the job to print."""
    source = adapter_for(cfg.data.dataset, cfg).name
    g = cfg.graph
    lake = Lake(spark, cfg)
    for spec in (SILVER_SOCIAL_EDGES, SILVER_EVENTS, SILVER_REVIEWS, SILVER_USERS):
        lake.ensure(spec)
    of_source = F.col(C.SOURCE) == source
    edges = lake.read(SILVER_SOCIAL_EDGES).where(of_source)
    events = lake.read(SILVER_EVENTS).where(of_source)
    reviews = lake.read(SILVER_REVIEWS).where(of_source)
    users = lake.read(SILVER_USERS).where(of_source).select(C.USER_ID, C.SOURCE)
    as_of = utc(cutoff_ts) if cutoff_ts is not None else None
    cutoff = as_of or default_cutoff(events, reviews)
    summary: dict[str, Any] = {"source": source, "cutoff_ts": cutoff.isoformat(), "graph_as_of": as_of is not None}
    timings: dict[str, float] = {}
    logger.info("graph stage for %s, social proof as of %s%s", source, cutoff.isoformat(),
                " (graph as of the same cutoff)" if as_of else "")

    def step(name: str) -> None:
        spark.sparkContext.setJobDescription(f"socialrec: graph {name} ({source})")
        timings[name] = time.perf_counter()

    def done(name: str, rows: int, table: TableSpec) -> None:
        timings[name] = round(time.perf_counter() - timings[name], 2)
        logger.info("%s <- %s: %d rows (%.1f s)", table.qualified_name, source, rows, timings[name])

    step("social_graph")
    graph_df = build_social_graph(edges, events, g.relation_weights, g.overlap_weight, cutoff_ts=as_of)
    summary["edges"] = replace_source(lake, graph_df, GOLD_SOCIAL_GRAPH, source)
    done("social_graph", summary["edges"], GOLD_SOCIAL_GRAPH)
    graph = lake.read(GOLD_SOCIAL_GRAPH).where(of_source)

    step("neighbourhoods")
    sampled = sample_social_neighbourhoods(graph, g.k1, g.k2, g.hub_cap, g.seed)
    summary["neighbourhood_rows"] = replace_source(lake, sampled, GOLD_NEIGHBOURHOODS, source)
    done("neighbourhoods", summary["neighbourhood_rows"], GOLD_NEIGHBOURHOODS)
    neighbourhoods = lake.read(GOLD_NEIGHBOURHOODS).where(of_source)
    by_hop = {r["hop"]: r["count"] for r in neighbourhoods.groupBy("hop").count().collect()}
    summary["hop1_rows"], summary["hop2_rows"] = by_hop.get(1, 0), by_hop.get(2, 0)

    step("social_proof")
    proof = social_proof(neighbourhoods.where(F.col("hop") == 1), events, reviews, cutoff, g.proof_top_n)
    summary["proof_rows"] = replace_source(lake, proof, GOLD_SOCIAL_PROOF, source)
    done("social_proof", summary["proof_rows"], GOLD_SOCIAL_PROOF)

    step("user_graph_features")
    n_vertices = graph_vertices(graph, users).count()
    engine = stats_engine(spark, cfg, summary["edges"], n_vertices)
    features_df = user_graph_features(
        graph, users, iterations=g.pagerank_iterations, damping=g.pagerank_damping,
        igraph_max_edges=g.igraph_max_edges, engine=engine,
    )
    summary["users"] = replace_source(lake, features_df, GOLD_USER_GRAPH_FEATURES, source)
    summary["stats_engine"] = engine
    done("user_graph_features", summary["users"], GOLD_USER_GRAPH_FEATURES)
    features = lake.read(GOLD_USER_GRAPH_FEATURES).where(of_source)
    comp = features.groupBy("component_id").agg(F.first("component_size").alias("size"))
    row = comp.agg(F.count(F.lit(1)).alias("n"), F.max("size").alias("largest")).first()
    summary["components"] = int(row["n"]) if row else 0
    summary["largest_component"] = int(row["largest"] or 0) if row else 0
    summary["degree_buckets"] = [r.asDict() for r in degree_buckets(degree_distribution(features)).collect()]
    summary["timings_s"] = timings
    spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]
    logger.info(
        "graph %s: %d edges, %d users, %d components (largest %d), %d neighbourhood rows (hop1 %d, hop2 %d), "
        "%d social proof rows; stats by %s", source, summary["edges"], summary["users"], summary["components"],
        summary["largest_component"], summary["neighbourhood_rows"], summary["hop1_rows"], summary["hop2_rows"],
        summary["proof_rows"], engine,
    )
    logger.info("degree buckets (from-to: users by in-degree/out-degree): %s", "; ".join(
        f"{b['degree_from']}-{b['degree_to']}: {b['in_users']}/{b['out_users']}" for b in summary["degree_buckets"]
    ))
    return summary
