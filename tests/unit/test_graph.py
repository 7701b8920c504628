"""The social graph on 2-10 inline rows: edges and tie strength, sampling (determinism, K caps, the
weighting), social proof (as of a cutoff), graph statistics (Spark vs igraph), and the stage end to end."""
from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from socialrec.config import SyntheticConfig
from socialrec.graph import (
    build_social_graph,
    connected_components,
    degree_buckets,
    degree_distribution,
    degrees,
    pagerank,
    sample_social_neighbourhoods,
    social_proof,
    user_graph_features,
)
from socialrec.graph.sampling import two_hop_candidates
from socialrec.graph.stats import component_id_of, igraph_components_pagerank
from socialrec.schema import columns as C
from socialrec.schema.tables import (
    GOLD_NEIGHBOURHOODS,
    GOLD_SOCIAL_GRAPH,
    GOLD_SOCIAL_PROOF,
    GOLD_USER_GRAPH_FEATURES,
    SILVER_EVENTS,
    SILVER_REVIEWS,
    SILVER_SOCIAL_EDGES,
)

S = "src"  # the source of every inline row
T1 = datetime(2024, 3, 1, 12, 0)
CUTOFF = datetime(2024, 6, 1)
WEIGHTS = {"follow": 1.0, "friend": 0.5, "trust": 2.0, "interaction": 0.5}


# ----------------------------------------------------------------------------------------------- helpers


def edges(spark: SparkSession, rows: list[tuple]) -> DataFrame:  # type: ignore[type-arg]
    """Silver edges from ``(src, dst, relation, weight, directed[, ts])``."""
    data = [(r[0], r[1], r[2], float(r[3]), r[4], r[5] if len(r) > 5 else None, S, "b1") for r in rows]
    return spark.createDataFrame(data, SILVER_SOCIAL_EDGES.schema)


def events(spark: SparkSession, rows: list[tuple[str, str, str, datetime]]) -> DataFrame:
    """Silver events from ``(user, item, type, ts)``."""
    data = [(f"e{i}", u, it, t, 4.0 if t == "rating" else None, ts, S, "b1") for i, (u, it, t, ts) in enumerate(rows)]
    return spark.createDataFrame(data, SILVER_EVENTS.schema)


def reviews(spark: SparkSession, rows: list[tuple[str, str, datetime | None]]) -> DataFrame:
    """Silver reviews from ``(user, item, ts)``."""
    data = [(f"r{i}", u, it, 4.0, "fine", 0.0, ts, S, "b1") for i, (u, it, ts) in enumerate(rows)]
    return spark.createDataFrame(data, SILVER_REVIEWS.schema)


def graph(spark: SparkSession, rows: list[tuple[str, str, float]]) -> DataFrame:
    """gold.social_graph rows from ``(src, dst, strength)`` (relation: follow)."""
    return spark.createDataFrame([(a, b, float(s), ["follow"], S) for a, b, s in rows], GOLD_SOCIAL_GRAPH.schema)


def expected_graph(spark: SparkSession, rows: list[tuple[str, str, float, list[str]]]) -> DataFrame:
    return spark.createDataFrame([(a, b, float(s), rel, S) for a, b, s, rel in rows], GOLD_SOCIAL_GRAPH.schema)


def hoods(spark: SparkSession, rows: list[tuple[str, int, str, float, int]]) -> DataFrame:
    """gold.neighbourhoods rows from ``(user, hop, neighbour, strength, rank)``."""
    return spark.createDataFrame([(*r[:3], float(r[3]), r[4], S) for r in rows], GOLD_NEIGHBOURHOODS.schema)


def no_events(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], SILVER_EVENTS.schema)


def random_graph(spark: SparkSession, users: int, out_degree: int, seed: int, equal: bool = False) -> DataFrame:
    rng = random.Random(seed)
    rows = set()
    for u in range(users):
        for v in rng.sample([x for x in range(users) if x != u], out_degree):
            rows.add((f"u{u:03d}", f"u{v:03d}", 1.0 if equal else round(rng.uniform(0.1, 3.0), 3)))
    return graph(spark, sorted(rows))


# ------------------------------------------------------------------------------------------------ edges


def test_relations_merge_per_ordered_pair_and_undirected_edges_go_both_ways(spark: SparkSession) -> None:
    e = edges(spark, [
        ("a", "b", "follow", 1.0, True),
        ("a", "b", "friend", 2.0, False),  # undirected: a->b and b->a, 0.5 x 2 each
        ("b", "a", "interaction", 1.0, True),  # an interaction-derived edge: 0.5 x 1
        ("c", "a", "trust", 1.0, True),
        ("c", "c", "follow", 1.0, True),  # self-loop: dropped
    ])
    got = build_social_graph(e, no_events(spark), WEIGHTS, overlap_weight=1.0)
    assertDataFrameEqual(got, expected_graph(spark, [
        ("a", "b", 2.0, ["follow", "friend"]),
        ("b", "a", 1.5, ["friend", "interaction"]),
        ("c", "a", 2.0, ["trust"]),
    ]))
    # A relation missing from the weights (or weighted 0) is switched off.
    off = build_social_graph(e, no_events(spark), {"follow": 1.0, "friend": 0.5, "trust": 0.0}, overlap_weight=1.0)
    assertDataFrameEqual(off, expected_graph(spark, [
        ("a", "b", 2.0, ["follow", "friend"]),
        ("b", "a", 1.0, ["friend"]),
    ]))


def test_interaction_overlap_adds_jaccard_to_existing_edges_only(spark: SparkSession) -> None:
    e = edges(spark, [("a", "b", "follow", 1.0, True), ("b", "c", "friend", 2.0, False)])
    ev = events(spark, [
        ("a", "i1", "purchase", T1), ("a", "i2", "like", T1), ("a", "i3", "view", T1),  # views do not count
        ("b", "i1", "purchase", T1), ("b", "i1", "rating", T1), ("b", "i4", "rating", T1), ("b", "i2", "click", T1),
        ("c", "i4", "favourite", T1),
        ("d", "i1", "purchase", T1),  # shares i1 with a and b but has no edge: no edge is created
    ])
    got = build_social_graph(e, ev, WEIGHTS, overlap_weight=2.0)
    # items: a {i1, i2}, b {i1, i4}, c {i4}: J(a, b) = 1/3, J(b, c) = 1/2
    assertDataFrameEqual(got, expected_graph(spark, [
        ("a", "b", 1.0 + 2.0 / 3.0, ["follow"]),
        ("b", "c", 1.0 + 1.0, ["friend"]),
        ("c", "b", 1.0 + 1.0, ["friend"]),
    ]))


def test_graph_as_of_ignores_later_edges_and_events(spark: SparkSession) -> None:
    base_e = [("a", "b", "follow", 1.0, True, T1), ("b", "c", "follow", 1.0, True, None)]
    base_ev = [("a", "i1", "purchase", T1), ("b", "i1", "purchase", T1), ("b", "i2", "purchase", T1)]
    late_e = [("c", "a", "follow", 1.0, True, CUTOFF)]  # created at the cutoff: not yet there
    late_ev = [("a", "i2", "purchase", CUTOFF), ("c", "i1", "like", datetime(2024, 7, 1))]
    before = build_social_graph(edges(spark, base_e), events(spark, base_ev), WEIGHTS, 1.0, cutoff_ts=CUTOFF)
    after = build_social_graph(
        edges(spark, base_e + late_e), events(spark, base_ev + late_ev), WEIGHTS, 1.0, cutoff_ts=CUTOFF
    )
    assertDataFrameEqual(after, before)
    assertDataFrameEqual(before, expected_graph(spark, [("a", "b", 1.5, ["follow"]), ("b", "c", 1.0, ["follow"])]))


# --------------------------------------------------------------------------------------------- sampling

# Strengths far apart, so the weighted draw order is the strength order (a reversal has odds ~1e-4).
SEPARATED = [
    ("a", "b", 1e4), ("a", "c", 1.0), ("a", "d", 1e-4),
    ("b", "e", 2.0),
    ("c", "e", 1.0), ("c", "f", 1e-4),
]


def test_sampling_whole_result_one_and_two_hops(spark: SparkSession) -> None:
    got = sample_social_neighbourhoods(graph(spark, SEPARATED), k1=5, k2=5, hub_cap=10, seed=42)
    assertDataFrameEqual(got, hoods(spark, [
        ("a", 1, "b", 1e4, 1), ("a", 1, "c", 1.0, 2), ("a", 1, "d", 1e-4, 3),
        ("b", 1, "e", 2.0, 1),
        ("c", 1, "e", 1.0, 1), ("c", 1, "f", 1e-4, 2),
        # a -> b -> e (1e4 * 2) + a -> c -> e (1 * 1); a -> c -> f (1 * 1e-4); b, c, d are 1-hop: excluded
        ("a", 2, "e", 20001.0, 1), ("a", 2, "f", 1e-4, 2),
    ]))


def test_hub_cap_limits_two_hop_expansion_on_both_sides(spark: SparkSession) -> None:
    g = graph(spark, [
        ("a", "m1", 3.0), ("a", "m2", 2.0), ("a", "m3", 1.0),  # hub_cap 2: a expands through m1, m2 only
        ("m1", "y", 5.0), ("m1", "z", 3.0), ("m1", "x", 1.0),  # m1 passes on y, z only
        ("m2", "w", 4.0), ("m2", "y", 1.0),
        ("m3", "q", 7.0),
    ])
    got = two_hop_candidates(g, hub_cap=2)
    expected = spark.createDataFrame(
        [("a", "y", 3.0 * 5 + 2.0 * 1, S), ("a", "z", 9.0, S), ("a", "w", 8.0, S)],
        "user_id string, neighbour_id string, strength double, source string",
    )
    assertDataFrameEqual(got, expected)
    sampled = sample_social_neighbourhoods(g, k1=2, k2=2, hub_cap=2, seed=1)
    counts = {(r[C.USER_ID], r["hop"]): r["count"] for r in sampled.groupBy(C.USER_ID, "hop").count().collect()}
    assert counts == {("a", 1): 2, ("a", 2): 2, ("m1", 1): 2, ("m2", 1): 2, ("m3", 1): 1}


def test_k_caps_and_neighbourhood_invariants_on_a_random_graph(spark: SparkSession) -> None:
    g = random_graph(spark, users=40, out_degree=6, seed=3)
    got = sample_social_neighbourhoods(g, k1=4, k2=5, hub_cap=3, seed=9).cache()
    per = got.groupBy(C.USER_ID, "hop").agg(F.count(F.lit(1)).alias("n"), F.max("rank").alias("max_rank"))
    rows = per.collect()
    assert {r["hop"] for r in rows} == {1, 2}
    assert all(r["n"] == r["max_rank"] for r in rows)  # ranks are 1..n
    assert max(r["n"] for r in rows if r["hop"] == 1) == 4  # every user has 6 > k1 out-edges
    assert all(r["n"] == 4 for r in rows if r["hop"] == 1)
    assert max(r["n"] for r in rows if r["hop"] == 2) <= 5
    edge_pairs = g.select(F.col(C.SRC_USER_ID).alias(C.USER_ID), F.col(C.DST_USER_ID).alias("neighbour_id"))
    hop1 = got.where("hop = 1").select(C.USER_ID, "neighbour_id")
    hop2 = got.where("hop = 2").select(C.USER_ID, "neighbour_id")
    assert hop1.subtract(edge_pairs).count() == 0  # hop 1 are graph edges
    assert hop2.intersect(edge_pairs).count() == 0  # hop 2 are not
    assert got.where(F.col(C.USER_ID) == F.col("neighbour_id")).count() == 0
    assert got.groupBy(C.USER_ID, "neighbour_id").count().where("count > 1").count() == 0
    got.unpersist()


def test_sampling_is_deterministic_for_a_seed_whatever_the_partitioning(spark: SparkSession) -> None:
    g = random_graph(spark, users=50, out_degree=8, seed=5, equal=True)
    first = sample_social_neighbourhoods(g, k1=3, k2=4, hub_cap=5, seed=42)
    again = sample_social_neighbourhoods(g.repartition(7), k1=3, k2=4, hub_cap=5, seed=42)
    shuffled = sample_social_neighbourhoods(g.orderBy(F.rand(1)).coalesce(1), k1=3, k2=4, hub_cap=5, seed=42)
    assertDataFrameEqual(again, first)
    assertDataFrameEqual(shuffled, first)
    other = sample_social_neighbourhoods(g, k1=3, k2=4, hub_cap=5, seed=43)
    # 8 equal-strength neighbours, 3 drawn: another seed changes many users' samples.
    assert other.where("hop = 1").subtract(first.where("hop = 1")).count() > 20


def test_sampling_draws_in_proportion_to_strength(spark: SparkSession) -> None:
    # 2000 users, each with a neighbour of strength 3 and one of strength 1: the first draw is the strong one
    # with probability 3/4 (a wrong key such as -ln(u) * w would give 1/4 or 0/1).
    rows = [(f"u{i}", f"u{i}-strong", 3.0) for i in range(2000)] + [(f"u{i}", f"u{i}-weak", 1.0) for i in range(2000)]
    first = sample_social_neighbourhoods(graph(spark, rows), k1=1, k2=0, hub_cap=1, seed=7)
    share = first.where(F.col("neighbour_id").endswith("-strong")).count() / 2000
    assert 0.71 < share < 0.79, share


# ------------------------------------------------------------------------------------------------ proof

PROOF_HOODS = [
    ("u", 1, "a", 3.0, 1), ("u", 1, "b", 2.0, 2), ("u", 1, "c", 2.0, 3),
    ("u", 2, "z", 9.0, 1),  # hop 2: not social proof
    ("v", 1, "a", 1.0, 1),
]
PROOF_EVENTS = [
    ("a", "i1", "purchase", T1), ("a", "i1", "like", T1), ("b", "i1", "favourite", T1),
    ("c", "i2", "rating", T1), ("a", "i2", "view", T1),  # views are not proof
    ("z", "i1", "purchase", T1),
]
PROOF_REVIEWS: list[tuple[str, str, datetime | None]] = [("c", "i1", T1), ("b", "i2", None)]  # no ts: left out


def proof_rows(spark: SparkSession, rows: list[tuple[str, str, int, int, int, int, int, str]]) -> DataFrame:
    return spark.createDataFrame([(*r, CUTOFF, S) for r in rows], GOLD_SOCIAL_PROOF.schema)


def test_social_proof_whole_result(spark: SparkSession) -> None:
    got = social_proof(hoods(spark, PROOF_HOODS), events(spark, PROOF_EVENTS), reviews(spark, PROOF_REVIEWS),
                       CUTOFF, top_n=2)
    assertDataFrameEqual(got, proof_rows(spark, [
        # bought a; liked a, b; reviewed c; strongest: a (3), then b and c tie at 2 -> b by id
        ("u", "i1", 1, 2, 0, 1, 3, "a,b"),
        ("u", "i2", 0, 0, 1, 0, 1, "c"),
        ("v", "i1", 1, 1, 0, 0, 1, "a"),
    ]))


def test_social_proof_is_as_of_the_cutoff(spark: SparkSession) -> None:
    late_events = [("a", "i9", "purchase", CUTOFF), ("c", "i1", "like", datetime(2024, 7, 1)),
                   ("b", "i2", "rating", CUTOFF)]
    late_reviews: list[tuple[str, str, datetime | None]] = [("a", "i2", CUTOFF)]
    base = social_proof(hoods(spark, PROOF_HOODS), events(spark, PROOF_EVENTS), reviews(spark, PROOF_REVIEWS),
                        CUTOFF, top_n=2)
    with_late = social_proof(
        hoods(spark, PROOF_HOODS), events(spark, PROOF_EVENTS + late_events),
        reviews(spark, PROOF_REVIEWS + late_reviews), CUTOFF, top_n=2,
    )
    assertDataFrameEqual(with_late, base)
    # ...and the same rows count once the cutoff moves past them.
    later = social_proof(
        hoods(spark, PROOF_HOODS), events(spark, PROOF_EVENTS + late_events),
        reviews(spark, PROOF_REVIEWS + late_reviews), datetime(2024, 8, 1), top_n=2,
    )
    assert later.where("item_id = 'i9'").count() == 2


# ------------------------------------------------------------------------------------------------ stats

STATS_GRAPH = [
    ("a", "b", 1.0), ("b", "c", 2.0), ("c", "a", 1.0), ("a", "c", 0.5),  # a strongly connected triangle
    ("d", "e", 1.0), ("e", "d", 1.0),  # a friendship
    ("f", "g", 3.0),  # g is dangling
]


def users(spark: SparkSession, ids: list[str]) -> DataFrame:
    return spark.createDataFrame([(u, S) for u in ids], "user_id string, source string")


def test_degrees_and_degree_distribution(spark: SparkSession) -> None:
    g = graph(spark, STATS_GRAPH)
    got = degrees(g, users(spark, ["a", "h"]))  # h: a user without edges
    assertDataFrameEqual(got, spark.createDataFrame(
        [("a", 1, 2), ("b", 1, 1), ("c", 2, 1), ("d", 1, 1), ("e", 1, 1), ("f", 0, 1), ("g", 1, 0), ("h", 0, 0)],
        "user_id string, in_degree long, out_degree long",
    ))
    dist = degree_distribution(got)
    assertDataFrameEqual(dist, spark.createDataFrame(
        [(0, 2, 2), (1, 5, 5), (2, 1, 1)], "degree long, in_users long, out_users long"
    ))
    assertDataFrameEqual(degree_buckets(dist), spark.createDataFrame(
        [(0, 0, 2, 2), (1, 1, 5, 5), (2, 3, 1, 1)], "degree_from long, degree_to long, in_users long, out_users long"
    ))
    assertDataFrameEqual(degree_distribution(g), spark.createDataFrame(
        [(0, 1, 1), (1, 5, 5), (2, 1, 1)], "degree long, in_users long, out_users long"
    ))


def test_connected_components_are_weak_and_named_by_a_hash(spark: SparkSession) -> None:
    got = connected_components(graph(spark, STATS_GRAPH), users(spark, ["h"]))
    comp = {"a": ("a", 3), "b": ("a", 3), "c": ("a", 3), "d": ("d", 2), "e": ("d", 2), "f": ("f", 2),
            "g": ("f", 2), "h": ("h", 1)}
    assertDataFrameEqual(got, spark.createDataFrame(
        [(u, component_id_of(m), n) for u, (m, n) in comp.items()],
        "user_id string, component_id string, component_size long",
    ))
    assert component_id_of("a") == "ca978112ca1bbdca"  # sha256("a"), not the id itself


def test_connected_components_converge_on_a_long_chain(spark: SparkSession) -> None:
    # The smallest id at the far end of a 60-long chain, edges pointing away from it: plain min-label
    # propagation would need 59 iterations; pointer jumping needs far fewer, and checkpoints keep plans short.
    chain = [(f"n{i + 1:02d}", f"n{i:02d}", 1.0) for i in range(59)]
    got = connected_components(graph(spark, chain), max_iterations=20, checkpoint_every=2)
    rows = got.groupBy("component_id", "component_size").count().collect()
    assert [(r["component_id"], r["component_size"], r["count"]) for r in rows] == [(component_id_of("n00"), 60, 60)]


def test_pagerank_spark_agrees_with_igraph(spark: SparkSession) -> None:
    g = random_graph(spark, users=30, out_degree=3, seed=11).unionByName(graph(spark, STATS_GRAPH))
    u = users(spark, ["h", "u000"])
    # Power iteration converges far faster than its d**k bound here: after 40 steps the largest difference
    # from the exact solution is ~1e-8 (checked with numpy).
    in_spark = pagerank(g, u, iterations=40, damping=0.85, tol=1e-9)
    in_igraph = igraph_components_pagerank(g, u, damping=0.85).select(C.USER_ID, "pagerank")
    assertDataFrameEqual(in_spark, in_igraph, rtol=0, atol=1e-6)
    total = in_spark.agg(F.sum("pagerank")).first()[0]  # type: ignore[index]
    assert abs(total - 1.0) < 1e-9
    ranks = {r[C.USER_ID]: r["pagerank"] for r in in_spark.collect()}
    assert ranks["g"] > ranks["f"]  # f passes all its rank to g
    assert ranks["h"] == pytest.approx(min(ranks.values()))  # isolated: only the teleport share


def test_user_graph_features_spark_and_igraph_paths_agree(spark: SparkSession) -> None:
    g = graph(spark, STATS_GRAPH)
    u = users(spark, ["a", "h"])
    # 32 power-iteration steps leave at most ~5e-7 from the exact PageRank on this graph (checked with numpy).
    via_spark = user_graph_features(g, u, iterations=32, damping=0.85, engine="spark")
    via_igraph = user_graph_features(g, u, iterations=32, damping=0.85, engine="igraph")
    assert via_spark.schema.fieldNames() == GOLD_USER_GRAPH_FEATURES.column_names
    assertDataFrameEqual(via_spark, via_igraph, rtol=0, atol=1e-6)
    auto_small = user_graph_features(g, u, iterations=1, igraph_max_edges=100)  # -> igraph (exact)
    assertDataFrameEqual(auto_small, via_igraph)
    auto_large = user_graph_features(g, u, iterations=1, igraph_max_edges=3)  # -> Spark: 1 step is not exact
    assertDataFrameEqual(auto_large.drop("pagerank"), via_spark.drop("pagerank"))
    assert auto_large.join(via_spark, [C.USER_ID, "pagerank"]).count() < 8
    # the exact integer columns, whole result
    assertDataFrameEqual(
        via_igraph.drop("pagerank", "component_id"),
        spark.createDataFrame(
            [("a", 1, 2, 3, S), ("b", 1, 1, 3, S), ("c", 2, 1, 3, S), ("d", 1, 1, 2, S), ("e", 1, 1, 2, S),
             ("f", 0, 1, 2, S), ("g", 1, 0, 2, S), ("h", 0, 0, 1, S)],
            "user_id string, in_degree long, out_degree long, component_size long, source string",
        ),
    )


# ------------------------------------------------------------------------------------------ the stage


@pytest.mark.slow
def test_graph_stage_on_a_small_synthetic_platform(spark: SparkSession, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from socialrec.lake import Lake
    from socialrec.pipelines import clean, ingest
    from socialrec.pipelines import graph as graph_stage
    from socialrec.schema.tables import SILVER_USERS
    from socialrec.synth import generate_platform
    from tests.conftest import lake_cfg

    small = SyntheticConfig(users=150, items=120, events=3000, batches=1)
    feed = tmp_path / "feed"
    generate_platform(feed, small, platform_launch=cfg.clean.platform_launch, max_text_chars=cfg.clean.max_text_chars)
    c = lake_cfg(cfg, tmp_path, dataset="synthetic", path=str(feed), synthetic=small)
    c = c.model_copy(update={"graph": c.graph.model_copy(update={"k1": 5, "k2": 4, "hub_cap": 8})})
    ingest.run(spark, c)
    clean.run(spark, c)
    summary = graph_stage.run(spark, c)
    lake = Lake(spark, c)
    for spec in (GOLD_SOCIAL_GRAPH, GOLD_NEIGHBOURHOODS, GOLD_SOCIAL_PROOF, GOLD_USER_GRAPH_FEATURES):
        assert lake.exists(spec)
    g = lake.read(GOLD_SOCIAL_GRAPH)
    n = lake.read(GOLD_NEIGHBOURHOODS)
    proof = lake.read(GOLD_SOCIAL_PROOF)
    feats = lake.read(GOLD_USER_GRAPH_FEATURES)
    silver_users = lake.read(SILVER_USERS).select(C.USER_ID)
    assert summary["edges"] == g.count() > 100
    assert summary["stats_engine"] == "igraph"
    assert g.where("strength <= 0").count() == 0
    assert n.select(C.USER_ID).subtract(silver_users).count() == 0
    assert n.select("neighbour_id").subtract(silver_users).count() == 0
    edge_pairs = g.select(F.col(C.SRC_USER_ID).alias(C.USER_ID), F.col(C.DST_USER_ID).alias("neighbour_id"))
    assert n.where("hop = 1").select(C.USER_ID, "neighbour_id").subtract(edge_pairs).count() == 0
    assert n.where("hop = 2").select(C.USER_ID, "neighbour_id").intersect(edge_pairs).count() == 0
    caps = n.groupBy(C.USER_ID, "hop").count().groupBy("hop").agg(F.max("count")).collect()
    assert {r["hop"]: r[1] <= (5 if r["hop"] == 1 else 4) for r in caps} == {1: True, 2: True}
    assert summary["hop2_rows"] > 0
    assert proof.count() == summary["proof_rows"] > 0
    assert proof.where("n_neighbours < greatest(n_bought, n_liked, n_rated, n_reviewed)").count() == 0
    assert proof.where("n_neighbours = 0").count() == 0
    assert feats.count() == silver_users.count() == summary["users"]
    assert abs(feats.agg(F.sum("pagerank")).first()[0] - 1.0) < 1e-6  # type: ignore[index]
    assert feats.select("component_id").distinct().count() == summary["components"]
    # A rerun over the same silver gives the same tables (seeded sampling, exact sums).
    before = n.localCheckpoint()
    graph_stage.run(spark, c)
    assertDataFrameEqual(lake.read(GOLD_NEIGHBOURHOODS), before)
    # As of an earlier cutoff, social proof only counts what happened before it.
    early = graph_stage.run(spark, c, cutoff_ts=datetime(2024, 2, 1))
    assert early["proof_rows"] < summary["proof_rows"]
    cutoffs = lake.read(GOLD_SOCIAL_PROOF).select(F.unix_seconds("cutoff_ts").alias("s")).distinct().collect()
    assert [r["s"] for r in cutoffs] == [1706745600]  # 2024-02-01T00:00:00Z
