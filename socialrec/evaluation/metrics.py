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
popularity bucket (``slice = bucket:<b>``: truth restricted to the bucket's items, over users with such an item).

**Groups.** Every function takes ``groups``: columns of ``recs`` that name independent lists (e.g. ``model, seed,
split``), so one Spark plan evaluates every model and split at once instead of a job per model (an evaluation
run was ~190 small Spark stages per model and split before). ``truth`` carries the subset of the group columns it
depends on (e.g. ``split``); a group's users are the truth users of its ``truth`` keys, with or without a list.
Results carry the group columns first.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

USER, ITEM, RANK = "user", "item", "rank"
ALL = "all"
_G = "_group"


def _idcg(n_truth: Column, k: int) -> Column:
    terms = F.sequence(F.lit(1), F.least(n_truth, F.lit(k)).cast("int"))
    return F.aggregate(terms, F.lit(0.0), lambda acc, r: acc + F.lit(1.0) / F.log2(r + F.lit(1.0)))


def _with_groups(recs: DataFrame, groups: Sequence[str]) -> tuple[DataFrame, list[str]]:
    """No groups: one implicit group (a literal column, dropped from the results)."""
    if groups:
        return recs, list(groups)
    return recs.withColumn(_G, F.lit(0)), [_G]


def _truth_keys(truth: DataFrame, groups: Sequence[str]) -> list[str]:
    return [g for g in groups if g in truth.columns]


def per_user_accuracy(recs: DataFrame, truth: DataFrame, ks: Sequence[int], groups: Sequence[str] = ()) -> DataFrame:
    """One row per (group, user with a non-empty truth): ``n_truth`` and ``<metric>@<k>`` columns, plus ``mrr``."""
    recs, gs = _with_groups(recs, groups)
    tkeys = _truth_keys(truth, gs)
    k_max = max(ks)
    t = truth.select(*tkeys, USER, ITEM).distinct()
    n_truth = t.groupBy(*tkeys, USER).agg(F.count(F.lit(1)).alias("n_truth"))
    by_rank = Window.partitionBy(*gs, USER).orderBy(RANK)
    hits = (
        recs.where(F.col(RANK) <= k_max)
        .select(*gs, USER, ITEM, RANK)
        .join(t, [*tkeys, USER, ITEM])
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
    # Every group is scored on all users of its truth, including users it has no list for (zeros).
    runs = recs.select(*gs).distinct()
    users = runs.join(n_truth, tkeys) if tkeys else runs.crossJoin(n_truth)
    per_user = users.join(hits.groupBy(*gs, USER).agg(*aggs), [*gs, USER], "left")
    cols: list[Column] = [F.col(g) for g in gs] + [F.col(USER), F.col("n_truth")]
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
    out = per_user.select(*cols)
    return out if groups else out.drop(_G)


ACCURACY_METRICS = ("recall", "precision", "hit_rate", "ndcg", "map")


def _stack(agg: DataFrame, keys: Sequence[str], names: Sequence[str], k_of: dict[str, int]) -> DataFrame:
    """Wide ``metric@k`` columns -> long ``metric, k, value`` rows."""
    stacked = F.explode(
        F.array(*[F.struct(F.lit(n.split("@")[0]).alias("metric"), F.lit(k_of[n]).alias("k"), F.col(f"`{n}`").alias("value"))
                  for n in names])
    ).alias("m")
    return agg.select(*keys, stacked, "users").select(*keys, "m.metric", "m.k", "m.value", "users")


def accuracy(
    recs: DataFrame, truth: DataFrame, ks: Sequence[int], slices: DataFrame | None = None, groups: Sequence[str] = ()
) -> DataFrame:
    """Mean accuracy metrics per (group,) slice, long format ``[groups...,] slice, metric, k, value, users``.

    ``slices(user, slice)`` adds slices besides ``all``; users of a slice without a truth are not counted.
    """
    per_user = per_user_accuracy(recs, truth, ks, groups)
    membership = per_user.select(USER).distinct().select(USER, F.lit(ALL).alias("slice"))
    if slices is not None:
        membership = membership.unionByName(slices.select(USER, "slice").distinct()).distinct()
    joined = per_user.join(membership, USER)
    names = [f"{m}@{k}" for m in ACCURACY_METRICS for k in ks] + ["mrr"]
    agg = joined.groupBy(*groups, "slice").agg(
        F.count(F.lit(1)).alias("users"), *[F.avg(F.col(f"`{n}`")).alias(n) for n in names]
    )
    k_of = {f"{m}@{k}": k for m in ACCURACY_METRICS for k in ks} | {"mrr": max(ks)}
    return _stack(agg, [*groups, "slice"], names, k_of)


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


def recall_by_bucket(
    recs: DataFrame, truth: DataFrame, buckets: DataFrame, ks: Sequence[int], groups: Sequence[str] = ()
) -> DataFrame:
    """``slice = bucket:<b>``, ``metric = recall``: recall over each user's truth items in bucket ``b``.

    One pass for all buckets: the bucket joins the truth keys, so each (user, bucket) is a user of its own.
    """
    recs_g, gs = _with_groups(recs, groups)
    tkeys = _truth_keys(truth, gs)
    t = truth.select(*tkeys, USER, ITEM).distinct().join(buckets.select(ITEM, "bucket"), ITEM)
    # the bucket becomes part of the truth key: recs are replicated per bucket (3 rows per list item)
    recs_b = recs_g.crossJoin(F.broadcast(buckets.sparkSession.createDataFrame([("head",), ("mid",), ("tail",)], "bucket string")))
    per_user = per_user_accuracy(recs_b, t, ks, [*gs, "bucket"])
    agg = per_user.groupBy(*gs, "bucket").agg(
        F.count(F.lit(1)).alias("users"), *[F.avg(F.col(f"`recall@{k}`")).alias(f"recall@{k}") for k in ks]
    ).withColumn("slice", F.concat(F.lit("bucket:"), F.col("bucket")))
    out = _stack(agg, [*gs, "slice"], [f"recall@{k}" for k in ks], {f"recall@{k}": k for k in ks})
    return out if groups else out.drop(_G)


def _broadcast_unit_vectors(embeddings: DataFrame) -> Any:
    """``{item: row}`` and the L2-normalised matrix, collected (one row per item) and broadcast."""
    import numpy as np

    rows = embeddings.select(ITEM, "embedding").collect()  # catalogue-sized
    matrix = np.array([r["embedding"] for r in rows], dtype=np.float64) if rows else np.zeros((0, 1))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    index = {r[ITEM]: i for i, r in enumerate(rows)}
    return embeddings.sparkSession.sparkContext.broadcast((index, matrix))


def _list_vector_sums(top: DataFrame, vectors: Any, gs: Sequence[str]) -> DataFrame:
    """``[groups...,] user, n, sq``: per list, the number of items with a vector and ``||sum of unit vectors||^2``.

    The lists are co-located by (group, user) and summed per partition with numpy against the broadcast
    matrix: a list's pairwise cosine distance follows from its vector sum, so no pair and no vector is
    shuffled.
    """
    import pandas as pd

    keys = [*gs, USER]
    fields = {f.name: f.dataType.simpleString() for f in top.schema.fields}
    schema = ", ".join(f"`{c}` {fields[c]}" for c in keys) + ", n long, sq double"

    def sums(frames: Iterable[pd.DataFrame]) -> Iterable[pd.DataFrame]:
        import numpy as np

        index, matrix = vectors.value
        for pdf in frames:
            rows = pdf[ITEM].map(index)
            pdf = pdf[rows.notna()]
            if pdf.empty:
                continue
            v = matrix[rows[rows.notna()].astype(np.int64).to_numpy()]
            acc = pd.DataFrame(v, index=pd.MultiIndex.from_frame(pdf[keys])).groupby(level=list(range(len(keys)))).sum()
            out = acc.index.to_frame(index=False)
            out.columns = keys
            out["n"] = pdf.groupby(keys).size().reindex(acc.index).to_numpy().astype(np.int64)
            out["sq"] = np.square(acc.to_numpy()).sum(axis=1)
            yield out

    return top.select(*keys, ITEM).repartition(*keys).mapInPandas(sums, schema)


def beyond_accuracy(
    recs: DataFrame,
    train: DataFrame,
    catalogue: DataFrame,
    ks: Sequence[int],
    categories: DataFrame | None = None,
    embeddings: DataFrame | None = None,
    groups: Sequence[str] = (),
) -> DataFrame:
    """Coverage, Gini, novelty and intra-list diversity per (group and) K, long format
    ``[groups...,] slice, metric, k, value, users`` (slice ``all``). Lazy: one plan, no action here but two
    scalar counts (catalogue size, training users).

    Args:
        recs: ``[groups...,] user, item, rank``.
        train: ``user, item`` training interactions (for novelty's popularity).
        catalogue: ``item`` (every rankable item).
        categories: ``item, category`` (for ``ild_category``).
        embeddings: ``item, embedding`` (array<float>, for ``ild_embedding``; normalised here).
    """
    recs, gs = _with_groups(recs, groups)
    n_items = catalogue.select(ITEM).distinct().count()
    n_train_users = max(train.select(USER).distinct().count(), 1)
    item_users = train.select(USER, ITEM).distinct().groupBy(ITEM).agg(F.count(F.lit(1)).alias("_nu"))
    # Catalogue-sized (one unit vector per item): broadcast, so the lists shuffle item ids, never vectors.
    vectors = _broadcast_unit_vectors(embeddings) if embeddings is not None else None
    parts: list[DataFrame] = []

    def metric(df: DataFrame, name: str, k: int) -> DataFrame:
        return df.select(*gs, F.lit(ALL).alias("slice"), F.lit(name).alias("metric"), F.lit(k).alias("k"),
                         F.col("value").cast("double").alias("value"), F.col("users").cast("long").alias("users"))

    for k in ks:
        top = recs.where(F.col(RANK) <= k).select(*gs, USER, ITEM)
        list_users = top.groupBy(*gs).agg(F.countDistinct(USER).alias("users"))
        cov = top.groupBy(*gs).agg((F.countDistinct(ITEM) / F.lit(float(max(n_items, 1)))).alias("value"))
        parts.append(metric(cov.join(list_users, gs), "coverage", k))
        # Gini over the whole catalogue: items never recommended are the zeros that sort first, so only the
        # recommended items need a position: (n_items - m) + their rank among the m recommended ones.
        counts = top.groupBy(*gs, ITEM).agg(F.count(F.lit(1)).alias("c"))
        m = F.count(F.lit(1)).over(Window.partitionBy(*gs))
        pos = F.row_number().over(Window.partitionBy(*gs).orderBy("c", ITEM))
        ranked = counts.withColumn("_i", F.lit(n_items) - m + pos)
        gini = ranked.groupBy(*gs).agg(
            F.when(F.sum("c") > 0, F.sum((2 * F.col("_i") - n_items - 1) * F.col("c")) / (F.lit(float(n_items)) * F.sum("c")))
            .otherwise(0.0).alias("value"))
        parts.append(metric(gini.join(list_users, gs), "gini", k))
        novelty = top.join(item_users, ITEM, "left").groupBy(*gs).agg(
            F.avg(-F.log2(F.greatest(F.coalesce(F.col("_nu"), F.lit(1)), F.lit(1)) / F.lit(float(n_train_users))))
            .alias("value"))
        parts.append(metric(novelty.join(list_users, gs), "novelty", k))
        if categories is not None:
            per_cat = top.join(categories.select(ITEM, "category"), ITEM, "left").fillna("(none)", ["category"])
            per_cat = per_cat.groupBy(*gs, USER, "category").agg(F.count(F.lit(1)).alias("nc"))
            per_user = per_cat.groupBy(*gs, USER).agg(F.sum("nc").alias("n"), F.sum(F.col("nc") * (F.col("nc") - 1)).alias("same"))
            ild = per_user.where(F.col("n") > 1).groupBy(*gs).agg(
                F.avg(1 - F.col("same") / (F.col("n") * (F.col("n") - 1))).alias("value"), F.count(F.lit(1)).alias("users"))
            parts.append(metric(ild, "ild_category", k))
        if vectors is not None:
            per_list = _list_vector_sums(top, vectors, gs)
            ild_e = per_list.where(F.col("n") > 1).groupBy(*gs).agg(
                F.avg(1 - (F.col("sq") - F.col("n")) / (F.col("n") * (F.col("n") - 1))).alias("value"),
                F.count(F.lit(1)).alias("users"))
            parts.append(metric(ild_e, "ild_embedding", k))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out if groups else out.drop(_G)
