"""Evaluation metrics in Spark: hand-computed examples, and agreement with the independent reference
implementation (plain Python/numpy) to 1e-9 on the same random predictions."""
from __future__ import annotations

import math
import random

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from socialrec.evaluation import reference
from socialrec.evaluation.metrics import accuracy, beyond_accuracy, popularity_buckets, recall_by_bucket


def rec_rows(recs: dict[str, list[str]]) -> list[tuple[str, str, int]]:
    return [(u, i, r + 1) for u, lst in recs.items() for r, i in enumerate(lst)]


def as_dict(df) -> dict[tuple[str, str, int], float]:  # type: ignore[no-untyped-def]
    return {(r["slice"], r["metric"], r["k"]): r["value"] for r in df.collect()}


def test_hand_computed_accuracy(spark: SparkSession) -> None:
    # u1: list a b c d, truth {b, d, x}: hits at ranks 2 and 4. u2: list e f, truth {e}. u3: no list, truth {a}.
    recs = spark.createDataFrame(rec_rows({"u1": ["a", "b", "c", "d"], "u2": ["e", "f"]}), "user string, item string, rank int")
    truth = spark.createDataFrame([("u1", "b"), ("u1", "d"), ("u1", "x"), ("u2", "e"), ("u3", "a")], "user string, item string")
    got = as_dict(accuracy(recs, truth, [2, 4]))
    d = lambda r: 1 / math.log2(r + 1)  # noqa: E731
    assert got[("all", "recall", 2)] == pytest.approx((1 / 3 + 1 + 0) / 3, abs=1e-12)
    assert got[("all", "recall", 4)] == pytest.approx((2 / 3 + 1 + 0) / 3, abs=1e-12)
    assert got[("all", "precision", 4)] == pytest.approx((2 / 4 + 1 / 4 + 0) / 3, abs=1e-12)
    assert got[("all", "hit_rate", 2)] == pytest.approx(2 / 3, abs=1e-12)
    ndcg_u1 = (d(2) + d(4)) / (d(1) + d(2) + d(3))
    assert got[("all", "ndcg", 4)] == pytest.approx((ndcg_u1 + 1 + 0) / 3, abs=1e-12)
    ap_u1 = (1 / 2 + 2 / 4) / 3
    assert got[("all", "map", 4)] == pytest.approx((ap_u1 + 1 + 0) / 3, abs=1e-12)
    assert got[("all", "mrr", 4)] == pytest.approx((1 / 2 + 1 + 0) / 3, abs=1e-12)


def test_slices_and_popularity_buckets(spark: SparkSession) -> None:
    train = spark.createDataFrame([("u1", "a"), ("u2", "a"), ("u3", "a"), ("u1", "b"), ("u2", "b"), ("u3", "c")], "user string, item string")
    catalogue = spark.createDataFrame([("a",), ("b",), ("c",), ("d",)], "item string")
    buckets = popularity_buckets(train, catalogue)
    # a holds 3/6 (cum. share before it 0 -> head), b 2/6 (before: 0.5 -> mid), c 1/6 (before 5/6 -> tail), d unseen
    assertDataFrameEqual(buckets, spark.createDataFrame([("a", "head"), ("b", "mid"), ("c", "tail"), ("d", "tail")], "item string, bucket string"))
    recs = spark.createDataFrame(rec_rows({"u1": ["c", "d"], "u2": ["a", "c"]}), "user string, item string, rank int")
    truth = spark.createDataFrame([("u1", "d"), ("u2", "b"), ("u2", "c")], "user string, item string")
    slices = spark.createDataFrame([("u1", "cold"), ("u2", "warm")], "user string, slice string")
    got = as_dict(accuracy(recs, truth, [2], slices))
    assert got[("cold", "recall", 2)] == 1.0 and got[("warm", "recall", 2)] == 0.5
    by_bucket = as_dict(recall_by_bucket(recs, truth, buckets, [2]))
    assert by_bucket == {("bucket:mid", "recall", 2): 0.0, ("bucket:tail", "recall", 2): 1.0}


def test_spark_metrics_match_the_reference_implementation(spark: SparkSession) -> None:
    rnd = random.Random(5)
    items = [f"i{j}" for j in range(40)]
    users = [f"u{j}" for j in range(30)]
    recs = {u: rnd.sample(items, rnd.randint(1, 12)) for u in users[:27]}  # 3 users without a list
    truth = {u: set(rnd.sample(items, rnd.randint(1, 6))) for u in users}
    train = [(u, rnd.choice(items[:30])) for u in users for _ in range(rnd.randint(1, 8))]
    category = {i: f"c{rnd.randint(0, 4)}" if rnd.random() > 0.1 else None for i in items}
    vectors = {i: [rnd.gauss(0, 1) for _ in range(6)] for i in items}
    ks = [5, 10]

    recs_df = spark.createDataFrame(rec_rows(recs), "user string, item string, rank int")
    truth_df = spark.createDataFrame([(u, i) for u, t in truth.items() for i in t], "user string, item string")
    got = as_dict(accuracy(recs_df, truth_df, ks))
    want = reference.accuracy(recs, truth, ks)
    for name, value in want.items():
        metric, _, k = name.partition("@")
        assert got[("all", metric, int(k) if k else max(ks))] == pytest.approx(value, abs=1e-9), name

    beyond = as_dict(beyond_accuracy(
        recs_df,
        spark.createDataFrame(train, "user string, item string"),
        spark.createDataFrame([(i,) for i in items], "item string"),
        ks,
        categories=spark.createDataFrame(list(category.items()), "item string, category string"),
        embeddings=spark.createDataFrame([(i, [float(x) for x in v]) for i, v in vectors.items()], "item string, embedding array<double>"),
    ))
    for k in ks:
        assert beyond[("all", "coverage", k)] == pytest.approx(reference.coverage(recs, items, k), abs=1e-9)
        assert beyond[("all", "gini", k)] == pytest.approx(reference.gini(recs, items, k), abs=1e-9)
        assert beyond[("all", "novelty", k)] == pytest.approx(reference.novelty(recs, train, k), abs=1e-9)
        assert beyond[("all", "ild_category", k)] == pytest.approx(reference.ild_category(recs, category, k), abs=1e-9)
        assert beyond[("all", "ild_embedding", k)] == pytest.approx(reference.ild_embedding(recs, vectors, k), abs=1e-9)


def test_grouped_metrics_equal_one_run_per_group(spark: SparkSession) -> None:
    """Two models and two splits in one plan give exactly what each (model, split) gives alone."""
    recs_rows = [("a", "validation", "u1", "i1", 1), ("a", "validation", "u1", "i2", 2), ("a", "test", "u1", "i3", 1),
                 ("a", "test", "u2", "i1", 1), ("b", "validation", "u1", "i2", 1), ("b", "test", "u2", "i2", 1),
                 ("b", "test", "u2", "i3", 2)]
    truth_rows = [("validation", "u1", "i2"), ("test", "u1", "i3"), ("test", "u2", "i3"), ("test", "u2", "i4")]
    recs = spark.createDataFrame(recs_rows, "model string, split string, user string, item string, rank int")
    truth = spark.createDataFrame(truth_rows, "split string, user string, item string")
    train = spark.createDataFrame([("u1", "i1"), ("u2", "i1"), ("u2", "i2")], "user string, item string")
    catalogue = spark.createDataFrame([(f"i{i}",) for i in range(1, 6)], "item string")
    categories = spark.createDataFrame([("i1", "x"), ("i2", "x"), ("i3", "y")], "item string, category string")
    slices = spark.createDataFrame([("u2", "cold")], "user string, slice string")
    buckets = popularity_buckets(train, catalogue)
    grouped_acc = accuracy(recs, truth, [1, 2], slices, groups=["model", "split"]).toPandas()
    grouped_bucket = recall_by_bucket(recs, truth, buckets, [2], groups=["model", "split"]).toPandas()
    grouped_beyond = beyond_accuracy(recs, train, catalogue, [2], categories, groups=["model", "split"]).toPandas()
    for model, split in (("b", "test"),):  # one of the four groups (the others share the same code path)
        r = recs.where((recs.model == model) & (recs.split == split)).drop("model", "split")
        t = truth.where(truth.split == split).drop("split")

        def pick(df, m=model, s=split):  # type: ignore[no-untyped-def]
            return df[(df["model"] == m) & (df["split"] == s)].drop(columns=["model", "split"])

        for got, alone in (
            (pick(grouped_acc), accuracy(r, t, [1, 2], slices).toPandas()),
            (pick(grouped_bucket), recall_by_bucket(r, t, buckets, [2]).toPandas()),
            (pick(grouped_beyond), beyond_accuracy(r, train, catalogue, [2], categories).toPandas()),
        ):
            key = ["slice", "metric", "k"]
            a = got.sort_values(key).reset_index(drop=True)
            b = alone.sort_values(key).reset_index(drop=True)
            assert a[key].equals(b[key]), (model, split)
            assert (a["value"] - b["value"]).abs().max() < 1e-12 and a["users"].tolist() == b["users"].tolist()
