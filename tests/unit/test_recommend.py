"""Recommendations: faiss retrieval against brute force, exclusions, social candidates, the cold-user fallback,
blending (rank = score order, K cap), reasons, and the per-partition scoring function, on tiny inline frames."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from socialrec.recommend.candidates import (
    blend,
    cold_candidates,
    exclusions,
    item_popularity,
    social_candidates,
    social_counts,
)
from socialrec.recommend.index import (
    build_index,
    deserialize,
    exact_topk,
    random_unit_vectors,
    recall_at_k,
    search_topk,
    serialize,
)
from socialrec.recommend.reasons import (
    ReasonSettings,
    TextVectorMatrix,
    anchor_items,
    most_similar_anchor,
    most_similar_anchor_broadcast,
    with_reasons,
)
from socialrec.recommend.scoring import ScoringPayload, model_scores, user_feature_rows
from socialrec.schema.tables import REASON

AS_OF = dt.datetime(2024, 6, 1)
T = [AS_OF - dt.timedelta(days=d) for d in (5, 4, 3, 2, 1)]
EVENTS = "event_id string, user_id string, item_id string, event_type string, value double, ts timestamp"


# ---------------------------------------------------------------------------------------- faiss, numpy only


def test_exact_index_matches_numpy_brute_force() -> None:
    items, users = random_unit_vectors(2000, 32, 1), random_unit_vectors(64, 32, 2)
    index = deserialize(serialize(build_index(items, "exact")))
    rows, ids, scores = search_topk(index, items, users, 10)
    expected = exact_topk(items, users, 10)
    assert np.array_equal(rows, np.repeat(np.arange(64), 10))
    assert np.array_equal(ids.reshape(64, 10), expected)
    assert np.allclose(scores.reshape(64, 10), np.take_along_axis(users @ items.T, expected, axis=1), atol=1e-5)


def test_search_drops_exclusions_keeps_k_and_scores_extra_candidates() -> None:
    items = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], dtype=np.float32)
    users = np.array([[1, 0], [0, 1]], dtype=np.float32)
    exclude = [np.array([0]), None]
    extra = [np.array([3, 1, 99]), np.array([0])]  # 1 is already in u0's top-2; 99 is not an item
    rows, ids, scores = search_topk(build_index(items), items, users, 2, exclude=exclude, extra=extra)
    assert rows.tolist() == [0, 0, 0, 1, 1, 1]
    assert ids.tolist() == [1, 2, 3, 2, 1, 0]
    assert np.allclose(scores, [0.8, 0.0, -1.0, 1.0, 0.6, 0.0])


def test_approximate_indexes_are_measured_against_exact() -> None:
    items, users = random_unit_vectors(4000, 16, 3), random_unit_vectors(200, 16, 4)
    exact = exact_topk(items, users, 10)
    ivf_all_cells = build_index(items, "ivf", nlist=32, nprobe=32)  # visiting every cell is exact
    assert recall_at_k(exact, ivf_all_cells.search(users, 10)[1]) == 1.0
    ivf = build_index(items, "ivf", nlist=64, nprobe=4)
    hnsw = build_index(items, "hnsw", hnsw_m=16, ef_search=200)
    assert 0.2 < recall_at_k(exact, ivf.search(users, 10)[1]) < 1.0
    assert recall_at_k(exact, hnsw.search(users, 10)[1]) > 0.95


# ------------------------------------------------------------------------------------------------ Spark


def _events(spark, rows):  # type: ignore[no-untyped-def]
    return spark.createDataFrame([(f"e{i}", *r) for i, r in enumerate(rows)], EVENTS)


def test_exclusions_and_social_candidates_never_offer_what_the_user_bought(spark) -> None:  # type: ignore[no-untyped-def]
    events = _events(spark, [
        ("u1", "i1", "purchase", 1.0, T[0]),
        ("u1", "i4", "rating", 5.0, T[0]),
        ("u2", "i1", "purchase", 1.0, T[1]),
        ("u2", "i2", "like", 1.0, T[1]),
        ("u3", "i1", "purchase", 1.0, T[2]),
        ("u3", "i3", "purchase", 1.0, T[2]),
        ("u3", "i9", "purchase", 1.0, AS_OF),  # at the as-of time: not yet
    ])
    hood = spark.createDataFrame([("u1", 1, "u2", 1), ("u1", 1, "u3", 2)], "user_id string, hop int, neighbour_id string, rank int")
    excluded = exclusions(events, ["purchase", "rating"])
    assertDataFrameEqual(excluded, spark.createDataFrame(
        [("u1", "i1"), ("u1", "i4"), ("u2", "i1"), ("u3", "i1"), ("u3", "i3"), ("u3", "i9")], "user_id string, item_id string"))
    counts = social_counts(hood, events, AS_OF)
    assertDataFrameEqual(counts, spark.createDataFrame(
        [("u1", "i1", 2, 0, 2), ("u1", "i2", 0, 1, 1), ("u1", "i3", 1, 0, 1)],
        "user_id string, item_id string, n_bought bigint, n_liked bigint, n_people bigint"))
    # i1 has the most neighbours but u1 bought it already; ties (i2, i3) go by item id.
    assertDataFrameEqual(social_candidates(counts, excluded, 2), spark.createDataFrame(
        [("u1", "i2", 1), ("u1", "i3", 1)], "user_id string, item_id string, n_people bigint"))
    assertDataFrameEqual(social_candidates(counts, excluded, 1), spark.createDataFrame(
        [("u1", "i2", 1)], "user_id string, item_id string, n_people bigint"))


def test_cold_users_get_the_popular_items_they_have_not_bought(spark) -> None:  # type: ignore[no-untyped-def]
    events = _events(spark, [
        ("u1", "i1", "purchase", 1.0, T[0]),
        ("u2", "i1", "like", 1.0, T[0]),
        ("u3", "i1", "purchase", 1.0, T[1]),
        ("u3", "i3", "purchase", 1.0, T[1]),
        ("u2", "i2", "purchase", 1.0, T[2]),
        ("u2", "i2", "view", 1.0, T[2]),  # not a positive
        ("u4", "i2", "purchase", 1.0, AS_OF - dt.timedelta(days=40)),  # outside the 30-day window
    ])
    items = spark.createDataFrame([("i1", "A"), ("i2", "B"), ("i3", "A")], "item_id string, category string")
    popularity = item_popularity(events, items, AS_OF, 30, ["purchase", "like"])
    assertDataFrameEqual(popularity, spark.createDataFrame(
        [("i1", "A", 3, 1, 1), ("i2", "B", 1, 2, 1), ("i3", "A", 1, 3, 2)],
        "item_id string, category string, n_users bigint, pop_rank int, cat_rank int"))
    cold = spark.createDataFrame([("u3",), ("u9",)], "user_id string")
    got = cold_candidates(cold, popularity, exclusions(events, ["purchase"]), 2)
    assertDataFrameEqual(got, spark.createDataFrame(
        [("u3", "i2", 1 / 3), ("u9", "i1", 1.0), ("u9", "i2", 1 / 3)], "user_id string, item_id string, pop_score double"),
        rtol=1e-9)


def test_blend_ranks_by_score_caps_at_k_and_lifts_social_items(spark) -> None:  # type: ignore[no-untyped-def]
    model = spark.createDataFrame([("u1", "a", 0.9), ("u1", "b", 0.5), ("u1", "c", 0.7)], "user_id string, item_id string, model_score float")
    social = spark.createDataFrame([("u1", "b", 3), ("u2", "c", 1)], "user_id string, item_id string, n_people bigint")
    popular = spark.createDataFrame([("u2", "a", 1.0), ("u2", "b", 0.5)], "user_id string, item_id string, pop_score double")
    got = blend(model, social, popular, k=2, social_weight=0.2)
    expected = spark.createDataFrame(
        [("u1", "a", 0.9, 1), ("u1", "b", 0.5 + 0.2 * math.log(4), 2), ("u2", "a", 1.0, 1), ("u2", "b", 0.5, 2)],
        "user_id string, item_id string, score double, rank int")
    assertDataFrameEqual(got, expected, rtol=1e-6)
    # rank order is score order, for every user
    rows = blend(model, social, popular, k=10, social_weight=0.2).orderBy("user_id", "rank").collect()
    for user in ("u1", "u2"):
        scores = [r["score"] for r in rows if r["user_id"] == user]
        assert scores == sorted(scores, reverse=True) and len(scores) == 3
    # u2's social-only candidate (no model, not popular) still gets the social part of the score
    assert [r["score"] for r in rows if r["user_id"] == "u2" and r["item_id"] == "c"] == [pytest.approx(0.2 * math.log(2))]


def _ev(**kw: object) -> dict[str, object]:
    fields = ["count", "action", "item_id", "title", "rating", "similarity", "category", "window_days", "popularity_rank"]
    return {f: kw.get(f) for f in fields}


def test_similar_anchor_broadcast_and_join_paths_agree(spark) -> None:  # type: ignore[no-untyped-def]
    """Both ways to find "similar to" anchors give the same rows: the best anchor per recommendation at or above
    the threshold, ties to the larger anchor id, pairs with a side without a vector dropped, an item never its
    own anchor."""
    anchors = spark.createDataFrame(
        [("u1", "a1", "One", "rated", 5.0), ("u1", "a2", "Two", "bought", None), ("u1", "a3", "Three", "viewed", None),
         ("u1", "i1", "Same", "bought", None), ("u2", "a1", "One", "liked", None), ("u2", "nov", "No vector", "bought", None)],
        "user_id string, anchor_id string, anchor_title string, anchor_action string, anchor_rating double")
    top = spark.createDataFrame(
        [("u1", "i1", 0.9, 1), ("u1", "i2", 0.8, 2), ("u1", "i3", 0.7, 3), ("u2", "i1", 0.6, 1), ("u2", "x", 0.5, 2)],
        "user_id string, item_id string, score double, rank int")
    rows = [("a1", [1.0, 0.0]), ("a2", [0.6, 0.8]), ("a3", [0.6, 0.8]), ("i1", [1.0, 0.0]), ("i2", [0.0, 1.0]),
            ("i3", [-1.0, 0.0])]
    vectors = spark.createDataFrame(rows, "item_id string, vector array<float>")
    payload = spark.sparkContext.broadcast(TextVectorMatrix(
        ids=np.array([r[0] for r in rows], dtype=object), matrix=np.array([r[1] for r in rows], dtype=np.float32)))
    expected = spark.createDataFrame(
        [("u1", "i1", "a1", "One", "rated", 5.0, 1.0),  # i1 itself is not an anchor of i1
         ("u1", "i2", "a3", "Three", "viewed", None, 0.8),  # a2 and a3 tie at 0.8: the larger id
         ("u2", "i1", "a1", "One", "liked", None, 1.0)],  # "nov" has no vector, "x" neither; i3 is below 0.5
        "user_id string, item_id string, anchor_id string, anchor_title string, anchor_action string, "
        "anchor_rating double, similarity double")
    assertDataFrameEqual(most_similar_anchor(top, anchors, vectors, 0.5), expected)
    assertDataFrameEqual(most_similar_anchor_broadcast(top, anchors, payload, 0.5), expected)
    payload.unpersist()


def test_reasons_are_computed_from_data_and_every_row_has_one(spark) -> None:  # type: ignore[no-untyped-def]
    events = _events(spark, [
        ("u1", "i4", "rating", 5.0, T[0]),
        ("u1", "i3", "purchase", 1.0, T[1]),
        ("u1", "i8", "rating", 2.0, T[2]),  # a low rating is not something to explain with
    ])
    items = spark.createDataFrame(
        [("i2", "Tea Pot", "kitchen"), ("i3", "Blue Mug", "kitchen"), ("i4", "Red Shoes", "shoes"), ("i8", "Old Hat", "hats")],
        "item_id string, title string, category string")
    anchors = anchor_items(events, items, n=5, min_rating=4.0)
    assertDataFrameEqual(anchors, spark.createDataFrame(
        [("u1", "i4", "Red Shoes", "rated", 5.0), ("u1", "i3", "Blue Mug", "bought", None)],
        "user_id string, anchor_id string, anchor_title string, anchor_action string, anchor_rating double"))

    top = spark.createDataFrame(
        [("u1", "i2", 0.9, 1), ("u1", "i5", 0.8, 2), ("u1", "i6", 0.7, 3), ("u1", "i7", 0.6, 4), ("u2", "i5", 0.5, 1)],
        "user_id string, item_id string, score double, rank int")
    vectors = spark.createDataFrame(
        [("i4", [1.0, 0.0]), ("i3", [0.0, 1.0]), ("i5", [0.8, 0.6]), ("i2", [0.0, 1.0]), ("i6", [-1.0, 0.0])],
        "item_id string, vector array<float>")
    similar = most_similar_anchor(top, anchors, vectors, 0.5)
    social = spark.createDataFrame([("u1", "i2", 0, 1, 1)], "user_id string, item_id string, n_bought bigint, n_liked bigint, n_people bigint")
    top_cat = spark.createDataFrame([("u1", "shoes"), ("u2", "kitchen")], "user_id string, top_category string")
    popularity = spark.createDataFrame(
        [("i5", "shoes", 4, 1, 1), ("i2", "kitchen", 3, 2, 1), ("i6", "hats", 2, 3, 1)],
        "item_id string, category string, n_users bigint, pop_rank int, cat_rank int")
    trending = spark.createDataFrame([("i5", "shoes", 3, 2, 1), ("i9", "x", 5, 1, 1)],
                                     "item_id string, category string, n_users bigint, pop_rank int, cat_rank int")
    history = spark.createDataFrame([("u1", 4)], "user_id string, n_history int")
    got = with_reasons(top, social, similar, top_cat, popularity, trending, history, ReasonSettings())

    def r(kind: str, text: str, **ev: object) -> dict[str, object]:
        return {"kind": kind, "text": text, "evidence": _ev(**ev)}

    expected_rows = [
        ("u1", "i2", 0.9, 1, [
            r("social", "1 person you follow liked this", count=1, action="liked"),
            r("similar", "similar to Blue Mug you bought", item_id="i3", title="Blue Mug", action="bought", similarity=1.0),
        ]),
        ("u1", "i5", 0.8, 2, [
            r("similar", "similar to Red Shoes you rated 5", item_id="i4", title="Red Shoes", rating=5.0, action="rated",
              similarity=0.8),
            r("category", "popular in shoes you browse", category="shoes", popularity_rank=1, count=4, window_days=30),
            r("trending", "trending this week", popularity_rank=2, count=3, window_days=7),
        ]),
        ("u1", "i6", 0.7, 3, [r("popular", "popular with shoppers right now", popularity_rank=3, count=2, window_days=30)]),
        ("u1", "i7", 0.6, 4, [r("for_you", "picked for you from your recent activity", count=4)]),
        ("u2", "i5", 0.5, 1, [r("trending", "trending this week", popularity_rank=2, count=3, window_days=7)]),
    ]
    schema = StructType([
        StructField("user_id", StringType()), StructField("item_id", StringType()), StructField("score", DoubleType()),
        StructField("rank", IntegerType()), StructField("reasons", ArrayType(REASON)),
    ])
    assertDataFrameEqual(got, spark.createDataFrame(expected_rows, schema), rtol=1e-5)


def test_user_feature_rows_pad_and_drop_what_the_model_does_not_know(spark) -> None:  # type: ignore[no-untyped-def]
    users = spark.createDataFrame([("uA", 0), ("uB", 1), ("uC", 5), ("uD", 2)], "user_id string, user_idx int")
    items = spark.createDataFrame([("i0", 0), ("i1", 1), ("i9", 7)], "item_id string, item_idx int")
    events = _events(spark, [
        ("uA", "i0", "view", None, T[0]),
        ("uA", "i1", "purchase", 1.0, T[1]),
        ("uA", "i9", "view", None, T[2]),  # item unknown to the model (index 7 >= 3)
        ("uA", "i0", "click", None, T[3]),
        ("uB", "i1", "view", None, T[0]),
        ("uC", "i1", "view", None, T[0]),  # user unknown to the model (index 5 >= 3)
    ])
    hood = spark.createDataFrame([("uA", "uB", 1), ("uA", "uC", 2), ("uA", "uD", 3)], "user_id string, neighbour_id string, rank int")
    got = user_feature_rows(users, items, events, hood, seq_len=4, n_neighbours=3, n_model_users=3, n_model_items=3)
    assertDataFrameEqual(got, spark.createDataFrame(
        [("uA", 0, [0, -1, 0, 1, 0, 1, 2, -1]), ("uB", 1, [1, -1, -1, -1, 1, -1, -1, -1])],
        "user_id string, user_idx int, features array<int>"))  # uD has no history: cold


def test_partition_scoring_function_in_spark(spark) -> None:  # type: ignore[no-untyped-def]
    items = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], dtype=np.float32)
    payload = ScoringPayload(index=serialize(build_index(items)), item_vectors=items, model=None, k=2, batch_size=1)
    broadcast = spark.sparkContext.broadcast(payload)
    rows = spark.createDataFrame(
        [("u1", [1.0, 0.0], [0], [3]), ("u2", [0.0, 1.0], None, None)],
        "user_id string, user_vector array<float>, exclude array<int>, extra array<int>")
    got = model_scores(rows, broadcast, 2)
    assertDataFrameEqual(got, spark.createDataFrame(
        [("u1", 1, 0.8), ("u1", 2, 0.0), ("u1", 3, -1.0), ("u2", 2, 1.0), ("u2", 1, 0.6)],
        "user_id string, item_idx int, model_score float"), atol=1e-6)
    broadcast.unpersist()
