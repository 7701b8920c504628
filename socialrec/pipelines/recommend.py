"""Stage ``recommend``: the registered model -> top-K recommendations with reasons in gold.recommendations.

1. The model comes from MLflow by registered name and version, or alias (``recommend.model_version`` /
   ``recommend.alias``; default ``tracking.alias``, else the newest version). Its run id and version are stamped
   on every row.
2. On the driver, once: the item vectors (catalogue-sized) and a faiss inner-product index over them
   (``recommend.index``: exact by default; ivf/hnsw for large catalogues, with recall@k against exact measured
   on ``recommend.recall_sample`` users). Model, index and item vectors go to the executors in one broadcast.
3. In Spark: one feature row per user the model can score (their current state: last L events, top-N
   hop-1 neighbours), their exclusions (already bought or rated) and their social candidates (what their
   neighbours bought or liked); ``mapInPandas`` encodes users and searches the index per partition. Users the
   model cannot score (unknown to it, or without history) get the popular items instead (and their social
   candidates). Nothing that grows with the number of users is collected.
4. Blend, rank, explain (:mod:`socialrec.recommend`), and overwrite the partition ``(source, run_date)``:
   rerunning the same run date replaces it, so the stage is idempotent.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.errors import SocialrecError
from socialrec.faults import checkpoint
from socialrec.graph._common import ts_lit
from socialrec.ingest import adapter_for
from socialrec.lake import Lake
from socialrec.recommend.candidates import (
    blend,
    cold_candidates,
    exclusions,
    item_popularity,
    social_candidates,
    social_counts,
    top_categories,
)
from socialrec.recommend.reasons import (
    ReasonSettings,
    TextVectorMatrix,
    anchor_items,
    has_kind,
    most_similar_anchor,
    most_similar_anchor_broadcast,
    with_reasons,
)
from socialrec.recommend.scoring import ScoringPayload, item_lists, model_bytes, model_scores, user_feature_rows
from socialrec.resources import driver_budget_bytes, ensure_fits_on_driver, session_driver_memory
from socialrec.schema import columns as C
from socialrec.schema.tables import (
    GOLD_ITEM_INDEX,
    GOLD_ITEM_TEXT,
    GOLD_NEIGHBOURHOODS,
    GOLD_RECOMMENDATIONS,
    GOLD_TEXT_EMBEDDINGS,
    GOLD_USER_INDEX,
    SILVER_EVENTS,
    SILVER_ITEMS,
)

logger = logging.getLogger(__name__)


class RecommendInputError(SocialrecError):
    """The lake or the model registry cannot feed a recommendation run (e.g. no registered model)."""


@dataclass(frozen=True)
class ModelRef:
    """A registered model version, the MLflow run that produced it, and the store that holds both.

    The store travels with the reference because MLflow's tracking URI is process-global: a process that works on
    several lakes (the quality benchmark: LastFM, then Ciao) would otherwise load a version number from whichever
    store was set last."""

    name: str
    version: str
    run_id: str
    tracking_uri: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def resolve_model(cfg: AppConfig) -> ModelRef:
    """The registered version to score with: ``recommend.model_version``, else ``recommend.alias``, else
    ``tracking.alias``, else the newest registered version."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from socialrec.training.tracking import tracking_uri, use_store

    uri = use_store(tracking_uri(cfg))
    client = MlflowClient(uri)
    rc = cfg.recommend
    name = rc.model_name or cfg.tracking.registered_model
    try:
        if rc.model_version:
            mv = client.get_model_version(name, str(rc.model_version))
        elif rc.alias:
            mv = client.get_model_version_by_alias(name, rc.alias)
        else:
            try:
                mv = client.get_model_version_by_alias(name, cfg.tracking.alias)
            except MlflowException:
                versions = client.search_model_versions(f"name='{name}'")
                if not versions:
                    raise
                mv = max(versions, key=lambda v: int(v.version))
    except MlflowException as exc:
        wanted = f"version {rc.model_version}" if rc.model_version else f"alias {rc.alias or cfg.tracking.alias}"
        raise RecommendInputError(
            f"no registered model {name!r} ({wanted}) in {uri}: run the train stage first (python -m jobs.train)"
        ) from exc
    return ModelRef(name=name, version=str(mv.version), run_id=str(mv.run_id), tracking_uri=uri)


def load_model(ref: ModelRef) -> Any:
    """The :class:`~socialrec.training.model.UserEncoder` of ``ref``, from ``ref``'s store, on CPU, in eval mode."""
    import mlflow.pytorch

    from socialrec.training.tracking import use_store

    use_store(ref.tracking_uri)
    model = mlflow.pytorch.load_model(ref.uri, map_location="cpu")
    model.eval()
    return model


def text_vectors(item_text: DataFrame, text_embeddings: DataFrame, model: str) -> DataFrame:
    """``(item_id, vector)``: each item's cached sentence embedding (what "similar to" compares)."""
    return item_text.select(C.ITEM_ID, "text_hash").join(
        text_embeddings.where(F.col("model") == model).select("text_hash", F.col("embedding").alias("vector")), "text_hash"
    ).select(C.ITEM_ID, "vector")


def similar_anchors(spark: SparkSession, cfg: AppConfig, top: DataFrame, anchors: DataFrame,
                    vectors: DataFrame) -> tuple[DataFrame, Any]:
    """The "similar to" anchors of the lists and the broadcast to release afterwards (None: the Spark join path).

    ``recommend.similar_via``: the broadcast path collects the text vectors (catalogue-sized: one aggregate to
    size them, then the vectors as Arrow) when they fit ``similar_broadcast_max_mb`` and the driver budget; the
    join path works for any catalogue but shuffles vectors.
    """
    import numpy as np

    rc = cfg.recommend
    if rc.similar_via != "join":
        size = vectors.agg(F.count(F.lit(1)).alias("n"), F.max(F.size("vector")).alias("dim")).first()
        n, dim = (int(size["n"]), int(size["dim"] or 0)) if size is not None else (0, 0)
        need = n * (4 * dim + 80)
        cap = min(rc.similar_broadcast_max_mb << 20, driver_budget_bytes(cfg, session_driver_memory(spark)))
        if rc.similar_via == "broadcast" or need <= cap:
            if rc.similar_via == "broadcast":
                ensure_fits_on_driver(spark, cfg, f"the text vectors of {n:,} items ('similar to' reasons)", n,
                                      4 * dim + 80, "use recommend.similar_via=join")
            table = vectors.toArrow()
            ids = np.asarray(table.column(C.ITEM_ID).to_pylist(), dtype=object)
            flat = table.column("vector").combine_chunks()
            lengths = flat.value_lengths().to_numpy(zero_copy_only=False) if n else np.zeros(0)
            if n and (lengths != dim).any():
                raise RecommendInputError(f"text vectors of unequal length (expected {dim} floats each)")
            matrix = flat.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(n, dim)
            broadcast = spark.sparkContext.broadcast(TextVectorMatrix(ids=ids, matrix=matrix))
            logger.info("'similar to': %d text vectors (%.0f MiB) broadcast", n, need / 2**20)
            return most_similar_anchor_broadcast(top, anchors, broadcast, rc.similar_min), broadcast
        logger.info("'similar to': %.0f MiB of text vectors is over the broadcast cap (%.0f MiB): Spark joins",
                    need / 2**20, cap / 2**20)
    return most_similar_anchor(top, anchors, vectors, rc.similar_min), None


def approximate_recall(model: Any, index: Any, item_vectors: Any, user_rows: DataFrame, sample: int, k: int) -> float | None:
    """recall@k of ``index`` against exact search on up to ``sample`` users (a fixed-size sample, collected)."""
    import numpy as np
    import torch

    from socialrec.recommend.index import build_index, recall_at_k

    rows = user_rows.select("features").limit(sample).collect()  # bounded by recommend.recall_sample
    if not rows:
        return None
    feats = torch.tensor(np.array([r["features"] for r in rows], dtype=np.int64))
    with torch.no_grad():
        users = model(feats).float().numpy()
    k = min(k, item_vectors.shape[0])
    _, exact = build_index(item_vectors, "exact").search(users, k)
    _, approx = index.search(users, k)
    return recall_at_k(exact, approx)


def run(spark: SparkSession, cfg: AppConfig, as_of: datetime | None = None) -> dict[str, Any]:
    """Score every indexed user of the configured source and write their run-date partition; returns the figures."""
    import torch

    from socialrec.pipelines.features import default_cutoff
    from socialrec.recommend.index import build_index, serialize

    t0 = time.perf_counter()
    rc = cfg.recommend
    source = adapter_for(cfg.data.dataset, cfg).name
    lake = Lake(spark, cfg)
    lake.ensure(GOLD_RECOMMENDATIONS)
    for spec in (GOLD_USER_INDEX, GOLD_ITEM_INDEX, GOLD_NEIGHBOURHOODS, SILVER_EVENTS, SILVER_ITEMS):
        if not lake.exists(spec):
            raise RecommendInputError(f"{spec.qualified_name} does not exist: run the earlier stages first (make run)")
    ref = resolve_model(cfg)
    model = load_model(ref)
    spec = model.spec
    if as_of is None:
        as_of = rc.as_of or default_cutoff(lake, source)
    # (``recommend.run_date`` arrives as text from files and --set; a malformed one fails here, before any work)
    run_date: date = date.fromisoformat(str(rc.run_date)) if rc.run_date else datetime.now(UTC).date()
    generated_at = datetime.now(UTC)
    logger.info("recommending with %s v%s (run %s) as of %s into run_date=%s, index=%s, k=%d",
                ref.name, ref.version, ref.run_id, as_of, run_date, rc.index, rc.k)

    # Item side: catalogue-sized, built once on the driver and broadcast (vectors, index, serialised copy).
    ensure_fits_on_driver(spark, cfg, f"the item vectors and their {rc.index} index ({spec.n_items:,} items)",
                          spec.n_items, 4 * 4 * spec.dim + 64, "use recommend.index=ivf (or hnsw) on fewer items")
    with torch.no_grad():
        item_vecs = model.item_vectors().float().numpy()
    index = build_index(item_vecs, rc.index, nlist=rc.ivf_nlist, nprobe=rc.ivf_nprobe, hnsw_m=rc.hnsw_m,
                        ef_search=rc.hnsw_ef_search)
    pool = max(rc.candidate_pool, rc.k)
    payload = ScoringPayload(
        index=serialize(index), item_vectors=item_vecs, model=model_bytes(model), k=pool, batch_size=rc.batch_size,
        threads=rc.torch_threads, nprobe=rc.ivf_nprobe, ef_search=rc.hnsw_ef_search,
    )
    broadcast = spark.sparkContext.broadcast(payload)

    mine = F.col(C.SOURCE) == source
    # Everything strictly before the as-of time (naive = UTC, the project's convention).
    events = lake.read(SILVER_EVENTS).where(mine & (F.col(C.TS) < ts_lit(as_of)))
    items = lake.read(SILVER_ITEMS).where(mine)
    user_index = lake.read(GOLD_USER_INDEX).where(mine)
    item_index = lake.read(GOLD_ITEM_INDEX).where(mine)
    hood = lake.read(GOLD_NEIGHBOURHOODS).where(mine & (F.col("hop") == 1))
    indexed_users = user_index.select(C.USER_ID)
    indexed_items = item_index.select(C.ITEM_ID)

    excluded = exclusions(events, rc.exclude_event_types)
    counts = social_counts(hood, events, as_of).join(indexed_users, C.USER_ID, "left_semi").join(
        indexed_items, C.ITEM_ID, "left_semi")
    social = social_candidates(counts, excluded, rc.social_candidates, rc.min_social_count)
    # Persisted (on the executors): scoring, the cold-user split and the reasons all read it.
    warm = user_feature_rows(user_index, item_index, events, hood, spec.seq_len, spec.n_neighbours, spec.n_users,
                             spec.n_items).persist()
    scoring_rows = (
        warm.join(item_lists(excluded, item_index, "exclude"), C.USER_ID, "left")
        .join(item_lists(social.select(C.USER_ID, C.ITEM_ID), item_index, "extra"), C.USER_ID, "left")
        .select(C.USER_ID, "features", "exclude", "extra")
    )
    partitions = rc.partitions or 2 * spark.sparkContext.defaultParallelism
    scores = model_scores(scoring_rows, broadcast, partitions).join(
        item_index.select(C.ITEM_ID, F.col("item_idx").cast("int").alias("item_idx")), "item_idx"
    ).select(C.USER_ID, C.ITEM_ID, "model_score")
    popularity = item_popularity(events, items, as_of, rc.popular_days, rc.positive_event_types).join(
        indexed_items, C.ITEM_ID, "left_semi")
    cold = indexed_users.join(warm.select(C.USER_ID), C.USER_ID, "left_anti")
    popular = cold_candidates(cold, popularity, excluded, rc.popular_top)
    # Persisted: the reasons read the top-k twice, and the model must score each user once.
    top = blend(scores, social, popular, rc.k, rc.social_weight).persist()
    text_broadcast = None
    try:
        trending = item_popularity(events, items, as_of, rc.trending_days, rc.positive_event_types)
        vectors = text_vectors(lake.read(GOLD_ITEM_TEXT).where(mine), lake.read(GOLD_TEXT_EMBEDDINGS),
                               cfg.embeddings.model) if lake.exists(GOLD_ITEM_TEXT) and lake.exists(GOLD_TEXT_EMBEDDINGS) \
            else spark.createDataFrame([], "item_id string, vector array<float>")
        similar, text_broadcast = similar_anchors(
            spark, cfg, top, anchor_items(events, items, rc.anchor_items, rc.anchor_min_rating), vectors)
        seq = F.slice(F.col("features"), 2, spec.seq_len)
        history = warm.select(C.USER_ID, F.size(F.filter(seq, lambda x: x >= 0)).alias("n_history"))
        settings = ReasonSettings(
            min_social_count=rc.min_social_count, category_top=rc.category_top,
            trending_top=rc.trending_top, trending_days=rc.trending_days, popular_top=rc.popular_top,
            popular_days=rc.popular_days,
        )
        recs = with_reasons(top, counts, similar, top_categories(events, items), popularity, trending, history, settings)
        out = recs.select(
            C.USER_ID,
            "rank",
            C.ITEM_ID,
            F.col("score").cast("double").alias("score"),
            C.REASONS,
            F.lit(ref.name).alias("model_name"),
            F.lit(ref.version).alias("model_version"),
            F.lit(ref.run_id).alias("run_id"),
            F.lit(generated_at).cast("timestamp").alias("generated_at"),
            F.lit(source).alias(C.SOURCE),
            F.lit(run_date).cast("date").alias("run_date"),
        )
        commit = lake.overwrite(out, GOLD_RECOMMENDATIONS, partitions={C.SOURCE: source, "run_date": run_date.isoformat()})
        checkpoint("recommend:after-write")  # crash tests: the lists committed, the summary not yet reported
        recall = None
        if rc.index != "exact" and rc.recall_sample:
            recall = approximate_recall(model, index, item_vecs, warm, rc.recall_sample, rc.k)
            logger.info("%s index recall@%d against exact on <= %d users: %.4f", rc.index, rc.k, rc.recall_sample, recall)
    finally:
        top.unpersist()
        warm.unpersist()
        broadcast.unpersist()
        if text_broadcast is not None:
            text_broadcast.unpersist()

    written = lake.read(GOLD_RECOMMENDATIONS).where(
        (F.col(C.SOURCE) == source) & (F.col("run_date") == F.lit(run_date))
    )
    summary = summarise(written, user_index, rc.k)
    summary.update(
        {
            "run_date": run_date.isoformat(),
            "as_of": as_of.isoformat(),
            "model_name": ref.name,
            "model_version": ref.version,
            "run_id": ref.run_id,
            "index": rc.index,
            "k": rc.k,
            "recall_at_k_vs_exact": recall,
            "table_version": commit.version,
            "seconds": time.perf_counter() - t0,
            "examples": example_lists(written, items, rc.examples),
        }
    )
    logger.info("recommendations: %d rows for %d users (%d indexed) in %.1fs", summary["rows"], summary["users"],
                summary["indexed_users"], summary["seconds"])
    return summary


def summarise(written: DataFrame, user_index: DataFrame, k: int) -> dict[str, Any]:
    """Aggregates of one written run (Spark aggregates; one row comes back)."""
    per_user = written.groupBy(C.USER_ID).agg(F.count(F.lit(1)).alias("n"))
    agg = written.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(C.USER_ID).alias("users"),
        F.count_if(F.size(C.REASONS) == 0).alias("rows_without_reason"),
        F.avg(has_kind(F.col(C.REASONS), ["social"]).cast("double")).alias("share_social"),
    ).first()
    short = per_user.where(F.col("n") < k).count()
    indexed = user_index.count()
    assert agg is not None
    return {
        "rows": int(agg["rows"]),
        "users": int(agg["users"]),
        "indexed_users": int(indexed),
        "users_with_fewer_than_k": int(short),
        "rows_without_reason": int(agg["rows_without_reason"]),
        "share_with_social_reason": float(agg["share_social"] or 0.0),
    }


def example_lists(written: DataFrame, items: DataFrame, n: int) -> list[dict[str, Any]]:
    """``n`` users' lists (the users whose lists show the most kinds of reasons), titles resolved: a bounded collect."""
    if n <= 0:
        return []
    kinds = written.select(C.USER_ID, F.explode(F.transform(C.REASONS, lambda r: r["kind"])).alias("_k"))
    chosen = (
        kinds.groupBy(C.USER_ID)
        .agg(F.count_distinct("_k").alias("_kinds"))
        .orderBy(F.desc("_kinds"), F.asc(C.USER_ID))
        .limit(n)
    )
    rows = (
        written.join(chosen, C.USER_ID)
        .join(items.select(C.ITEM_ID, C.TITLE, C.CATEGORY), C.ITEM_ID, "left")
        .select(C.USER_ID, "rank", C.ITEM_ID, C.TITLE, C.CATEGORY, "score",
                F.transform(C.REASONS, lambda r: r["text"]).alias("texts"), "_kinds")
        .orderBy(F.desc("_kinds"), C.USER_ID, "rank")
        .collect()  # n users x k rows
    )
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = out.setdefault(r[C.USER_ID], {"user_id": r[C.USER_ID], "items": []})
        entry["items"].append({"rank": r["rank"], "item_id": r[C.ITEM_ID], "title": r[C.TITLE], "category": r[C.CATEGORY],
                               "score": round(float(r["score"]), 4), "reasons": list(r["texts"])})
    return list(out.values())


def print_examples(summary: dict[str, Any], console: Any) -> None:
    """The run's figures and the example users' lists with their reasons."""
    from rich.table import Table

    recall = summary.get("recall_at_k_vs_exact")
    console.print(
        f"  gold.recommendations run_date={summary['run_date']}: {summary['rows']} rows for {summary['users']} of "
        f"{summary['indexed_users']} users (k={summary['k']}, {summary['index']} index"
        + (f", recall@k vs exact {recall:.3f}" if recall is not None else "")
        + f"), model {summary['model_name']} v{summary['model_version']}; "
        f"{summary['share_with_social_reason']:.0%} with a social reason"
    )
    for ex in summary.get("examples", []):
        table = Table(title=f"user {ex['user_id'][:12]}…", title_justify="left")
        for col in ("rank", "item", "category", "score", "reasons"):
            table.add_column(col, justify="right" if col in ("rank", "score") else "left")
        for it in ex["items"]:
            table.add_row(str(it["rank"]), it["title"] or it["item_id"], it["category"] or "", f"{it['score']:.3f}",
                          "; ".join(it["reasons"]))
        console.print(table)
