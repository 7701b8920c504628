"""Full-ranking evaluation metrics in Spark (DESIGN §7), in long format ``(slice, metric, k, value, users)``.

Inputs are top-K lists already computed over **all** items minus each user's training items (never sampled
negatives): ``recs(user, item, rank)`` with ranks 1..K, and the held-out ``truth(user, item)``. Definitions, per
user with a non-empty truth ``T`` (users without any recommendation count as zeros), then averaged over users:

* ``recall@K = |top-K ∩ T| / |T|``; ``precision@K = |top-K ∩ T| / K``; ``hit_rate@K = [|top-K ∩ T| > 0]``;
* ``ndcg@K = sum_{r<=K, item_r in T} 1/log2(r+1) / sum_{r<=min(K,|T|)} 1/log2(r+1)``;
* ``map@K = sum_{r<=K, item_r in T} precision@r / min(K, |T|)``;
* ``mrr = 1 / (rank of the first hit)`` within the list (0 without a hit), reported with ``k`` = list length.

Beyond accuracy, over the lists cut at K (``users`` = users with a list):

* ``coverage@K``: distinct recommended items / catalogue size;
* ``gini@K``: Gini index of how often each catalogue item is recommended (0 = perfectly even, ->1 = a few items);
* ``novelty@K``: mean self-information ``-log2 p_i`` of recommended items, ``p_i`` = share of training users who
  interacted with ``i`` (items nobody interacted with count as one user);
* ``ild_category@K``: share of pairs within a list whose categories differ, ``1 - sum_c n_c(n_c-1) / (n(n-1))``;
* ``ild_embedding@K``: mean pairwise cosine distance within a list, ``1 - (||sum v||^2 - n) / (n(n-1))`` for
  unit vectors ``v``.

Slices: any ``(user, slice)`` table (a user may be in several; every user is also in ``all``), and recall by item
popularity bucket (``recall_bucket``: truth restricted to the bucket's items, over users with such an item).
"""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

USER, ITEM, RANK = "user", "item", "rank"
ALL = "all"


def _idcg(n_truth: Column, k: int) -> Column:
    terms = F.sequence(F.lit(1), F.least(n_truth, F.lit(k)).cast("int"))
    return F.aggregate(terms, F.lit(0.0), lambda acc, r: acc + F.lit(1.0) / F.log2(r + F.lit(1.0)))


def per_user_accuracy(recs: DataFrame, truth: DataFrame, ks: Sequence[int]) -> DataFrame:
    """One row per user with a non-empty truth: ``user, n_truth`` and ``<metric>@<k>`` columns, plus ``mrr``."""
    k_max = max(ks)
    t = truth.select(USER, ITEM).distinct()
    n_truth = t.groupBy(USER).agg(F.count(F.lit(1)).alias("n_truth"))
    by_rank = Window.partitionBy(USER).orderBy(RANK)
    hits = (
        recs.where(F.col(RANK) <= k_max)
        .select(USER, ITEM, RANK)
        .join(t, [USER, ITEM])
        .withColumn("_nth_hit", F.row_number().over(by_rank))
    )
    aggs: list[Column] = [F.min(RANK).alias("_first_hit")]
    for k in ks:
        within = F.col(RANK) <= k
        aggs += [
            F.sum(F.when(within, 1).otherwise(0)).alias(f"_hits@{k}"),
            F.sum(F.when(within, 1.0 / F.log2(F.col(RANK) + 1.0)).otherwise(0.0)).alias(f"_dcg@{k}"),
            F.sum(F.when(within, F.col("_nth_hit") / F.col(RANK)).otherwise(0.0)).alias(f"_ap@{k}"),
        ]
    per_user = n_truth.join(hits.groupBy(USER).agg(*aggs), USER, "left")
    cols: list[Column] = [F.col(USER), F.col("n_truth")]
    for k in ks:
        h = F.coalesce(F.col(f"`_hits@{k}`"), F.lit(0)).cast("double")
        cols += [
            (h / F.col("n_truth")).alias(f"recall@{k}"),
            (h / F.lit(float(k))).alias(f"precision@{k}"),
            F.when(h > 0, 1.0).otherwise(0.0).alias(f"hit_rate@{k}"),
            (F.coalesce(F.col(f"`_dcg@{k}`"), F.lit(0.0)) / _idcg(F.col("n_truth"), k)).alias(f"ndcg@{k}"),
            (F.coalesce(F.col(f"`_ap@{k}`"), F.lit(0.0)) / F.least(F.col("n_truth"), F.lit(k))).alias(f"map@{k}"),
        ]
    cols.append(F.coalesce(F.lit(1.0) / F.col("_first_hit"), F.lit(0.0)).alias("mrr"))
    return per_user.select(*cols)


ACCURACY_METRICS = ("recall", "precision", "hit_rate", "ndcg", "map")


def accuracy(recs: DataFrame, truth: DataFrame, ks: Sequence[int], slices: DataFrame | None = None) -> DataFrame:
    """Mean accuracy metrics per slice, long format ``slice, metric, k, value, users``.

    ``slices(user, slice)`` adds slices besides ``all``; users of a slice without a truth are not counted.
    """
    per_user = per_user_accuracy(recs, truth, ks)
    membership = per_user.select(USER, F.lit(ALL).alias("slice"))
    if slices is not None:
        membership = membership.unionByName(slices.select(USER, "slice").distinct()).distinct()
    joined = per_user.join(membership, USER)
    names = [f"{m}@{k}" for m in ACCURACY_METRICS for k in ks] + ["mrr"]
    agg = joined.groupBy("slice").agg(
        F.count(F.lit(1)).alias("users"), *[F.avg(F.col(f"`{n}`")).alias(n) for n in names]
    )
    k_of = {f"{m}@{k}": k for m in ACCURACY_METRICS for k in ks} | {"mrr": max(ks)}
    stacked = F.explode(
        F.array(*[F.struct(F.lit(n.split("@")[0]).alias("metric"), F.lit(k_of[n]).alias("k"), F.col(f"`{n}`").alias("value"))
                  for n in names])
    ).alias("m")
    return agg.select("slice", stacked, "users").select("slice", "m.metric", "m.k", "m.value", "users")


def popularity_buckets(train: DataFrame, catalogue: DataFrame, shares: Sequence[float] = (1 / 3, 2 / 3)) -> DataFrame:
    """``item, bucket``: ``head`` = the most popular items that together hold the first third of the training
    interactions, ``mid`` the next third, ``tail`` the rest, including items never interacted with.

    The window runs over the catalogue (one row per item), not over users or events.
    """
    counts = train.groupBy(ITEM).agg(F.count(F.lit(1)).alias("n"))
    items = catalogue.select(ITEM).distinct().join(counts, ITEM, "left").fillna(0, ["n"])
    order = Window.orderBy(F.col("n").desc(), F.col(ITEM))
    total = F.sum("n").over(Window.partitionBy())
    before = F.sum("n").over(order.rowsBetween(Window.unboundedPreceding, -1))
    cum = items.withColumn("_share", F.coalesce(before, F.lit(0)) / F.greatest(total, F.lit(1)))
    return cum.select(
        ITEM,
        F.when((F.col("n") > 0) & (F.col("_share") < shares[0]), "head")
        .when((F.col("n") > 0) & (F.col("_share") < shares[1]), "mid")
        .otherwise("tail")
        .alias("bucket"),
    )


def recall_by_bucket(recs: DataFrame, truth: DataFrame, buckets: DataFrame, ks: Sequence[int]) -> DataFrame:
    """``slice = bucket:<b>``, ``metric = recall``: recall over each user's truth items in bucket ``b``."""
    out = None
    t = truth.select(USER, ITEM).distinct().join(buckets, ITEM)
    for b in ("head", "mid", "tail"):
        part = accuracy(recs, t.where(F.col("bucket") == b).select(USER, ITEM), ks).where(
            (F.col("metric") == "recall") & (F.col("slice") == ALL)
        )
        part = part.withColumn("slice", F.lit(f"bucket:{b}"))
        out = part if out is None else out.unionByName(part)
    assert out is not None
    return out


def _unit_vectors(embeddings: DataFrame) -> DataFrame:
    """``item, v``: each embedding divided by its L2 norm."""
    norm = F.sqrt(F.aggregate("embedding", F.lit(0.0), lambda a, x: a + x * x))
    return embeddings.select(ITEM, F.transform("embedding", lambda x: x / norm).alias("v"))


def beyond_accuracy(
    recs: DataFrame,
    train: DataFrame,
    catalogue: DataFrame,
    ks: Sequence[int],
    categories: DataFrame | None = None,
    embeddings: DataFrame | None = None,
) -> DataFrame:
    """Coverage, Gini, novelty and intra-list diversity per K, long format ``slice, metric, k, value, users``.

    Args:
        recs: ``user, item, rank``.
        train: ``user, item`` training interactions (for novelty's popularity).
        catalogue: ``item`` (every rankable item).
        categories: ``item, category`` (for ``ild_category``).
        embeddings: ``item, embedding`` (array<float>, for ``ild_embedding``; normalised here).
    """
    spark = recs.sparkSession
    n_items = catalogue.select(ITEM).distinct().count()
    n_train_users = max(train.select(USER).distinct().count(), 1)
    item_users = train.select(USER, ITEM).distinct().groupBy(ITEM).agg(F.count(F.lit(1)).alias("_nu"))
    rows = []
    for k in ks:
        top = recs.where(F.col(RANK) <= k).select(USER, ITEM)
        users_with_list = top.select(USER).distinct().count()
        coverage = top.select(ITEM).distinct().count() / max(n_items, 1)
        counts = (
            catalogue.select(ITEM).distinct().join(top.groupBy(ITEM).agg(F.count(F.lit(1)).alias("c")), ITEM, "left")
            .fillna(0, ["c"])
        )
        ordered = counts.withColumn("_i", F.row_number().over(Window.orderBy("c", ITEM)))
        g = ordered.agg(F.sum((2 * F.col("_i") - n_items - 1) * F.col("c")).alias("num"), F.sum("c").alias("den")).first()
        gini = float(g["num"]) / (n_items * float(g["den"])) if g and g["den"] else 0.0
        nov_row = (
            top.join(item_users, ITEM, "left")
            .agg(F.avg(-F.log2(F.greatest(F.coalesce(F.col("_nu"), F.lit(1)), F.lit(1)) / F.lit(float(n_train_users)))))
            .first()
        )
        novelty = float(nov_row[0]) if nov_row and nov_row[0] is not None else 0.0
        rows += [("coverage", k, coverage, users_with_list), ("gini", k, gini, users_with_list),
                 ("novelty", k, novelty, users_with_list)]
        if categories is not None:
            per_cat = top.join(categories.select(ITEM, "category"), ITEM, "left").fillna("(none)", ["category"])
            per_cat = per_cat.groupBy(USER, "category").agg(F.count(F.lit(1)).alias("nc"))
            per_user = per_cat.groupBy(USER).agg(F.sum("nc").alias("n"), F.sum(F.col("nc") * (F.col("nc") - 1)).alias("same"))
            ild = per_user.where(F.col("n") > 1).agg(F.avg(1 - F.col("same") / (F.col("n") * (F.col("n") - 1))), F.count(F.lit(1))).first()
            rows.append(("ild_category", k, float(ild[0]) if ild and ild[0] is not None else 0.0, int(ild[1]) if ild else 0))
        if embeddings is not None:
            unit = _unit_vectors(embeddings)
            exploded = top.join(unit, ITEM).select(USER, F.posexplode("v").alias("pos", "x"))
            sums = exploded.groupBy(USER, "pos").agg(F.sum("x").alias("s"))
            sq = sums.groupBy(USER).agg(F.sum(F.col("s") * F.col("s")).alias("sq"))
            n_per_user = top.join(unit.select(ITEM), ITEM).groupBy(USER).agg(F.count(F.lit(1)).alias("n"))
            ild_e = (
                sq.join(n_per_user, USER)
                .where(F.col("n") > 1)
                .agg(F.avg(1 - (F.col("sq") - F.col("n")) / (F.col("n") * (F.col("n") - 1))), F.count(F.lit(1)))
                .first()
            )
            rows.append(("ild_embedding", k, float(ild_e[0]) if ild_e and ild_e[0] is not None else 0.0, int(ild_e[1]) if ild_e else 0))
    # a handful of rows (metrics x ks): built on the driver
    return spark.createDataFrame(
        [(ALL, m, int(k), float(v), int(u)) for m, k, v, u in rows],
        "slice string, metric string, k int, value double, users long",
    )
