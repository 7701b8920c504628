"""Small summaries for the notebooks: a lake table in, a small pandas frame out, ready to show or plot.

The notebooks in ``notebooks/`` hold no logic of their own: every number they show comes from a function here
(or from the pipelines and ``socialrec.evaluation.report``). Each function takes Spark DataFrames as read by
``Lake.read`` (or, for the evaluation figures, the pandas frame :func:`latest_evaluation` returns) and collects
only an aggregate to the driver. Nothing here reads, writes or builds a session, except :func:`stage_tables`,
which asks the lake for row counts and versions (from the Delta log, no data read).

Privacy: user-facing summaries of other people (:func:`friends_activity`, :func:`friends_items`) return counts
only, never a neighbour's id, as the reasons in ``gold.recommendations`` do.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from socialrec.lake import Lake
from socialrec.schema import columns as C
from socialrec.schema import tables as T

__all__ = [
    "STAGE_OUTPUTS",
    "degree_distribution",
    "evaluation_runs",
    "event_funnel",
    "friends_activity",
    "friends_items",
    "item_popularity",
    "latest_evaluation",
    "metric_by_k",
    "metric_by_slice",
    "neighbourhood_size",
    "pick_user",
    "quarantine_reasons",
    "reason_evidence",
    "stage_tables",
    "user_history",
    "user_recommendations",
]

POPULARITY_BUCKETS: tuple[str, ...] = ("bucket:head", "bucket:mid", "bucket:tail")
# The purchase funnel: each step's users over the previous step's. Other event types are not steps of it.
FUNNEL_STEPS: tuple[str, ...] = ("view", "click", "cart", "purchase")

# What each stage of ``socialrec.pipelines.all.STAGES`` writes to the lake (docs/architecture.md, "Stages").
# ``train`` writes to MLflow only.
STAGE_OUTPUTS: dict[str, tuple[T.TableSpec, ...]] = {
    "init_lake": (),
    "ingest": (*T.BRONZE_BY_STREAM.values(), T.BRONZE_BATCHES),
    "clean": (*T.SILVER_BY_STREAM.values(), T.SILVER_QUARANTINE, T.SILVER_AUDIT),
    "embeddings": (T.GOLD_TEXT_EMBEDDINGS, T.GOLD_ITEM_TEXT),
    "graph": (T.GOLD_SOCIAL_GRAPH, T.GOLD_NEIGHBOURHOODS, T.GOLD_SOCIAL_PROOF, T.GOLD_USER_GRAPH_FEATURES),
    "features": (T.GOLD_USER_FEATURES, T.GOLD_ITEM_FEATURES, T.GOLD_USER_SEQUENCES),
    "examples": (T.GOLD_USER_INDEX, T.GOLD_ITEM_INDEX, T.GOLD_EXAMPLES),
    "train": (),
    "recommend": (T.GOLD_RECOMMENDATIONS,),
    "evaluate": (T.GOLD_EVAL_SPLITS, T.GOLD_EVALUATION),
}


def _pandas(df: DataFrame) -> pd.DataFrame:
    """Collect a small, aggregated DataFrame to the driver."""
    return cast(pd.DataFrame, df.toPandas())


def _type_order(types: Sequence[str], order: Sequence[str]) -> list[str]:
    """``types`` in ``order``, then any others alphabetically."""
    known = [t for t in order if t in types]
    return known + sorted(set(types) - set(known))


# ------------------------------------------------------------------------------------------- the lake


def stage_tables(lake: Lake, stage: str) -> pd.DataFrame:
    """The tables a stage writes, with their current row count and version (from the Delta log).

    Args:
        lake: the lake to look at.
        stage: a stage name of ``socialrec.pipelines.all.STAGES`` (a key of :data:`STAGE_OUTPUTS`).

    Returns:
        Columns ``table, rows, version``; one row per table of the stage that exists (rows may be null when the
        log does not say).
    """
    if stage not in STAGE_OUTPUTS:
        raise KeyError(f"unknown stage {stage!r}; the stages are {list(STAGE_OUTPUTS)}")
    rows = [
        {"table": spec.qualified_name, "rows": lake.row_count(spec), "version": lake.version(spec)}
        for spec in STAGE_OUTPUTS[stage]
        if lake.exists(spec)
    ]
    return pd.DataFrame(rows, columns=["table", "rows", "version"])


def quarantine_reasons(quarantine: DataFrame) -> pd.DataFrame:
    """Quarantined rows per table and reason (a row with several reasons counts under each), without the rows.

    Args:
        quarantine: rows of ``silver.quarantine`` (their ``record`` is the row as it arrived, raw ids included).

    Returns:
        Columns ``table_name, reason, rows``, by table then most rows first.
    """
    reasons = quarantine.select(C.TABLE, F.explode(C.REASONS).alias("reason"))
    counts = reasons.groupBy(C.TABLE, "reason").agg(F.count(F.lit(1)).alias("rows"))
    out = _pandas(counts.orderBy(C.TABLE, F.col("rows").desc(), "reason"))
    return out.astype({"rows": "int64"})


# ------------------------------------------------------------------------------------- the data set


def event_funnel(
    events: DataFrame,
    order: Sequence[str] = C.EVENT_TYPES,
    steps: Sequence[str] = FUNNEL_STEPS,
    *,
    col_user: str = C.USER_ID,
    col_item: str = C.ITEM_ID,
    col_type: str = C.EVENT_TYPE,
) -> pd.DataFrame:
    """Events, users and items per event type, in funnel order (view, click, cart, purchase, ...).

    Args:
        events: rows of ``silver.events`` (any subset).
        order: the row order; types not in it follow, alphabetically.
        steps: the steps of the purchase funnel, in order.

    Returns:
        Columns ``event_type, events, users, items, share_of_users`` (users with at least one event of the type
        over users with any event) and ``step_conversion``: for a funnel step, its users over the users of the
        previous step present (null for the first step and for types that are not steps).
    """
    per_type = events.groupBy(col_type).agg(
        F.count(F.lit(1)).alias("events"),
        F.countDistinct(col_user).alias("users"),
        F.countDistinct(col_item).alias("items"),
    )
    counts = _pandas(per_type).set_index(col_type)
    total = events.select(col_user).distinct().count()
    out = counts.loc[_type_order(list(counts.index), order)].reset_index().rename(columns={col_type: "event_type"})
    out = out.astype({"events": "int64", "users": "int64", "items": "int64"})
    out["share_of_users"] = out["users"] / total if total else float("nan")
    in_funnel = [t for t in steps if t in set(out["event_type"])]
    step_users = out.set_index("event_type").loc[in_funnel, "users"]
    conversion = (step_users / step_users.shift(1)).to_dict()
    out["step_conversion"] = out["event_type"].map(conversion).astype("float64")
    return out


def degree_distribution(edges: DataFrame, *, col_node: str = C.SRC_USER_ID) -> pd.DataFrame:
    """How many users have each degree, for a log-log plot.

    Args:
        edges: one row per directed edge (``gold.social_graph``, which holds undirected relations in both
            directions, or ``silver.social_edges``).
        col_node: ``src_user_id`` for out-degrees, ``dst_user_id`` for in-degrees.

    Returns:
        Columns ``degree, users``, by degree. Users without an edge (degree 0) are not in ``edges``, so not
        counted.
    """
    per_node = edges.groupBy(col_node).agg(F.count(F.lit(1)).alias("degree"))
    dist = _pandas(per_node.groupBy("degree").agg(F.count(F.lit(1)).alias("users")))
    return dist.sort_values("degree").reset_index(drop=True).astype("int64")


def item_popularity(
    events: DataFrame,
    event_types: Sequence[str] | None = None,
    *,
    col_user: str = C.USER_ID,
    col_item: str = C.ITEM_ID,
    col_type: str = C.EVENT_TYPE,
) -> pd.DataFrame:
    """Items ranked by how many distinct users acted on them: the popularity long tail.

    Args:
        events: rows of ``silver.events``.
        event_types: count only these event types (default: all).

    Returns:
        One row per item with at least one event (catalogue-sized): ``rank`` (1 = most users; ties by item id),
        ``item_id``, ``users``, ``events``, ``catalogue_share`` (rank over the number of items) and
        ``cumulative_share`` (share of all (user, item) pairs held by the items ranked up to here).
    """
    if event_types is not None:
        events = events.where(F.col(col_type).isin(list(event_types)))
    per_item = events.groupBy(col_item).agg(
        F.countDistinct(col_user).alias("users"), F.count(F.lit(1)).alias("events")
    )
    pop = _pandas(per_item).rename(columns={col_item: "item_id"})
    pop = pop.sort_values(["users", "item_id"], ascending=[False, True]).reset_index(drop=True)
    pop = pop.astype({"users": "int64", "events": "int64"})
    pop.insert(0, "rank", range(1, len(pop) + 1))
    pop["catalogue_share"] = pop["rank"] / max(len(pop), 1)
    pop["cumulative_share"] = pop["users"].cumsum() / max(int(pop["users"].sum()), 1)
    return pop


# --------------------------------------------------------------------------- one user's recommendations


def _latest_run(recommendations: DataFrame) -> DataFrame:
    latest = recommendations.agg(F.max("run_date").alias("run_date"))
    return recommendations.join(latest, "run_date")


def pick_user(recommendations: DataFrame, prefer_kind: str = "social", *, col_user: str = C.USER_ID) -> str | None:
    """A user worth looking at, from the latest run date: one whose list has a ``prefer_kind`` reason if anyone's
    has, and among those the one whose list has the most kinds of reasons (ties: the smallest pseudonym).

    Args:
        recommendations: rows of ``gold.recommendations``.
        prefer_kind: a reason kind (``social``, ``similar``, ``category``, ``trending``, ``popular``, ``for_you``).

    Returns:
        The user's pseudonym; None when there are no recommendations.
    """
    kinds = F.array_distinct(F.flatten(F.collect_list(F.transform(C.REASONS, lambda r: r["kind"]))))
    per_user = _latest_run(recommendations).groupBy(col_user).agg(kinds.alias("_kinds"))
    ranked = per_user.orderBy(
        F.array_contains("_kinds", prefer_kind).desc(), F.size("_kinds").desc(), F.col(col_user)
    )
    row = ranked.select(col_user).first()
    return None if row is None else str(row[0])


def _with_items(df: DataFrame, items: DataFrame | None, col_item: str) -> DataFrame:
    if items is None:
        return df
    return df.join(items.select(col_item, C.TITLE, C.CATEGORY), col_item, "left")


def user_recommendations(
    recommendations: DataFrame,
    user_id: str,
    items: DataFrame | None = None,
    *,
    col_user: str = C.USER_ID,
    col_item: str = C.ITEM_ID,
) -> pd.DataFrame:
    """One user's list of their latest run date, best first.

    Args:
        recommendations: rows of ``gold.recommendations``.
        user_id: the user's pseudonym.
        items: ``silver.items``, to add each item's title and category (optional).

    Returns:
        Columns ``rank, item_id, [title, category,] score, kinds`` (the reasons' kinds, comma-joined) and
        ``reasons`` (their texts, joined by "; ").
    """
    mine = _latest_run(recommendations.where(F.col(col_user) == user_id))
    listed = mine.select(
        "rank",
        col_item,
        "score",
        F.array_join(F.transform(C.REASONS, lambda r: r["kind"]), ", ").alias("kinds"),
        F.array_join(F.transform(C.REASONS, lambda r: r["text"]), "; ").alias("reasons"),
    )
    listed = _with_items(listed, items, col_item)
    cols = ["rank", col_item, *([C.TITLE, C.CATEGORY] if items is not None else []), "score", "kinds", "reasons"]
    return _pandas(listed.select(*cols).orderBy("rank"))


def reason_evidence(recommendations: DataFrame, user_id: str, *, col_user: str = C.USER_ID) -> pd.DataFrame:
    """The typed evidence behind each reason of one user's latest list: one row per (rank, reason).

    Args:
        recommendations: rows of ``gold.recommendations``.
        user_id: the user's pseudonym.

    Returns:
        Columns ``rank, kind, text`` and the evidence fields that are set for at least one reason (``count``,
        ``action``, ``item_id`` and ``title`` of the user's own item, ``similarity``, ``category``, ...). Evidence
        holds counts of other people, never who they are.
    """
    mine = _latest_run(recommendations.where(F.col(col_user) == user_id))
    exploded = mine.select("rank", F.posexplode(C.REASONS).alias("position", "reason"))
    flat = exploded.select("rank", "position", "reason.kind", "reason.text", "reason.evidence.*")
    out = _pandas(flat.orderBy("rank", "position")).drop(columns=["position"])
    return out.dropna(axis=1, how="all")


def user_history(
    events: DataFrame,
    user_id: str,
    limit: int = 20,
    items: DataFrame | None = None,
    *,
    col_user: str = C.USER_ID,
    col_item: str = C.ITEM_ID,
) -> pd.DataFrame:
    """The user's latest events, newest first.

    Args:
        events: rows of ``silver.events``.
        user_id: the user's pseudonym.
        limit: how many events.
        items: ``silver.items``, to add each item's title and category (optional).

    Returns:
        Columns ``ts, event_type, item_id, [title, category,] value`` (no event ids).
    """
    mine = events.where(F.col(col_user) == user_id).orderBy(F.col(C.TS).desc(), F.col(C.EVENT_ID)).limit(limit)
    mine = _with_items(mine.select(C.TS, C.EVENT_TYPE, col_item, C.VALUE), items, col_item)
    cols = [C.TS, C.EVENT_TYPE, col_item, *([C.TITLE, C.CATEGORY] if items is not None else []), C.VALUE]
    return _pandas(mine.select(*cols).orderBy(F.col(C.TS).desc(), col_item))


def _neighbour_events(
    neighbourhoods: DataFrame, events: DataFrame, user_id: str, hop: int, col_user: str
) -> DataFrame:
    """The events of the user's sampled neighbours at ``hop``, each tagged with an opaque neighbour column."""
    mine = neighbourhoods.where((F.col(col_user) == user_id) & (F.col("hop") == hop))
    friends = mine.select(F.col("neighbour_id").alias("_neighbour")).distinct()
    return events.join(friends, events[col_user] == friends["_neighbour"]).drop(col_user)


def neighbourhood_size(neighbourhoods: DataFrame, user_id: str, *, col_user: str = C.USER_ID) -> pd.DataFrame:
    """How many sampled neighbours the user has per hop, and their mean tie strength (counts only).

    Returns:
        Columns ``hop, neighbours, mean_strength``, by hop.
    """
    mine = neighbourhoods.where(F.col(col_user) == user_id)
    agg = mine.groupBy("hop").agg(
        F.countDistinct("neighbour_id").alias("neighbours"), F.avg("strength").alias("mean_strength")
    )
    return _pandas(agg.orderBy("hop"))


def friends_activity(
    neighbourhoods: DataFrame,
    events: DataFrame,
    user_id: str,
    hop: int = 1,
    order: Sequence[str] = C.EVENT_TYPES,
    *,
    col_user: str = C.USER_ID,
    col_item: str = C.ITEM_ID,
) -> pd.DataFrame:
    """What the user's sampled neighbours (``gold.neighbourhoods`` at ``hop``) did, per event type.

    Returns:
        Columns ``event_type, neighbours`` (how many of them have such an event), ``events, items``; in funnel
        ``order``. Counts only: no neighbour's id.
    """
    theirs = _neighbour_events(neighbourhoods, events, user_id, hop, col_user)
    agg = theirs.groupBy(C.EVENT_TYPE).agg(
        F.countDistinct("_neighbour").alias("neighbours"),
        F.count(F.lit(1)).alias("events"),
        F.countDistinct(col_item).alias("items"),
    )
    counts = _pandas(agg).set_index(C.EVENT_TYPE)
    out = counts.loc[_type_order(list(counts.index), order)].reset_index()
    return out.astype({"neighbours": "int64", "events": "int64", "items": "int64"})


def friends_items(
    neighbourhoods: DataFrame,
    events: DataFrame,
    user_id: str,
    hop: int = 1,
    event_types: Sequence[str] | None = None,
    limit: int = 10,
    items: DataFrame | None = None,
    *,
    col_user: str = C.USER_ID,
    col_item: str = C.ITEM_ID,
) -> pd.DataFrame:
    """The items most of the user's sampled neighbours acted on.

    Args:
        neighbourhoods: rows of ``gold.neighbourhoods``.
        events: rows of ``silver.events``.
        user_id: the user's pseudonym.
        hop: 1 (direct) or 2.
        event_types: count only these event types (default: all).
        limit: how many items.
        items: ``silver.items``, to add each item's title and category (optional).

    Returns:
        Columns ``item_id, [title, category,] neighbours, events, event_types`` (comma-joined, sorted), by
        neighbours then events (descending), then item id. Counts only: no neighbour's id.
    """
    theirs = _neighbour_events(neighbourhoods, events, user_id, hop, col_user)
    if event_types is not None:
        theirs = theirs.where(F.col(C.EVENT_TYPE).isin(list(event_types)))
    agg = theirs.groupBy(col_item).agg(
        F.countDistinct("_neighbour").alias("neighbours"),
        F.count(F.lit(1)).alias("events"),
        F.array_join(F.array_sort(F.collect_set(C.EVENT_TYPE)), ", ").alias("event_types"),
    )
    order: list[Column] = [F.col("neighbours").desc(), F.col("events").desc(), F.col(col_item)]
    top = _with_items(agg.orderBy(*order).limit(limit), items, col_item)
    cols = [col_item, *([C.TITLE, C.CATEGORY] if items is not None else []), "neighbours", "events", "event_types"]
    return _pandas(top.select(*cols).orderBy(*order))


# ----------------------------------------------------------------------------------------- evaluation


def _runs(evaluation: DataFrame) -> DataFrame:
    runs = evaluation.groupBy("dataset", "protocol", "run_id").agg(
        F.max("evaluated_at").alias("evaluated_at"),
        F.array_join(F.array_sort(F.collect_set("model")), ", ").alias("models"),
        F.count(F.lit(1)).alias("rows"),
    )
    newest = Window.partitionBy("dataset", "protocol").orderBy(F.col("evaluated_at").desc(), F.col("run_id").desc())
    return runs.withColumn("latest", F.row_number().over(newest) == 1)


def evaluation_runs(evaluation: DataFrame) -> pd.DataFrame:
    """One row per evaluation run in ``gold.evaluation``.

    Returns:
        Columns ``dataset, protocol, run_id, evaluated_at, models`` (comma-joined), ``rows`` and ``latest`` (the
        newest run of its dataset and protocol), newest first within each (dataset, protocol).
    """
    runs = _runs(evaluation)
    return _pandas(runs.orderBy("dataset", "protocol", F.col("evaluated_at").desc(), F.col("run_id").desc()))


def latest_evaluation(
    evaluation: DataFrame, dataset: str | None = None, protocol: str | None = None
) -> pd.DataFrame:
    """The rows of the newest evaluation run per (dataset, protocol), as ``report.headline_table`` takes them.

    Args:
        evaluation: rows of ``gold.evaluation``.
        dataset: keep only this dataset (default: all).
        protocol: keep only this protocol (default: all).

    Returns:
        Every column of ``gold.evaluation`` for the newest run of each (dataset, protocol) kept (a few thousand
        rows at most), ordered by dataset, protocol, model, seed, split, metric, k, slice.
    """
    if dataset is not None:
        evaluation = evaluation.where(F.col("dataset") == dataset)
    if protocol is not None:
        evaluation = evaluation.where(F.col("protocol") == protocol)
    newest = _runs(evaluation).where("latest").select("run_id")
    rows = evaluation.join(newest, "run_id").select(*T.GOLD_EVALUATION.column_names)
    order = ["dataset", "protocol", "model", "seed", "split", "metric", "k", "slice"]
    return _pandas(rows.orderBy(*order))


def _models(table: pd.DataFrame) -> list[str]:
    """socialrec and its ablations first, then the baselines, each group alphabetically."""
    names = list(dict.fromkeys(table["model"]))
    return sorted(names, key=lambda m: (not m.startswith("socialrec"), m))


def metric_by_k(table: pd.DataFrame, split: str, metric: str, slice_: str = "all") -> pd.DataFrame:
    """One metric of one evaluation run, per model (rows) and cut-off (columns ``@k``), mean over seeds.

    Args:
        table: rows of one evaluation run (:func:`latest_evaluation` for one dataset and protocol).
        split: ``validation`` or ``test``.
        metric: ``recall``, ``ndcg``, ``coverage``, ... (``socialrec.evaluation.metrics``).
        slice_: ``all``, ``cold``, ``warm``, ``social``, ``no_social`` or ``bucket:head|mid|tail``.
    """
    t = table[(table["split"] == split) & (table["metric"] == metric) & (table["slice"] == slice_)]
    wide = t.groupby(["model", "k"])["value"].mean().unstack("k")
    wide = wide.reindex(index=[m for m in _models(table) if m in wide.index])
    wide.columns = [f"@{k}" for k in wide.columns]
    wide.columns.name = metric
    return wide


def metric_by_slice(
    table: pd.DataFrame, split: str, metric: str, k: int, slices: Sequence[str] = POPULARITY_BUCKETS
) -> pd.DataFrame:
    """One metric at one cut-off, per model (rows) and slice (columns), mean over seeds.

    Args:
        table: rows of one evaluation run (:func:`latest_evaluation` for one dataset and protocol).
        split: ``validation`` or ``test``.
        metric: e.g. ``recall``.
        k: the cut-off.
        slices: the slices, in column order (default: recall by item popularity, head / mid / tail).
    """
    t = table[(table["split"] == split) & (table["metric"] == metric) & (table["k"] == k)
              & (table["slice"].isin(list(slices)))]
    wide = t.groupby(["model", "slice"])["value"].mean().unstack("slice")
    wide = wide.reindex(index=[m for m in _models(table) if m in wide.index], columns=list(slices))
    wide.columns.name = f"{metric}@{k}"
    return wide
