"""Stage ``evaluate``: one protocol, every model, full-ranking metrics -> ``gold.evaluation``, MLflow, a report.

1. **Protocol** (:mod:`socialrec.evaluation.protocols`): the distinct positive pairs of ``gold.examples`` split
   by the global temporal split or the seeded per-user random split, stored in ``gold.eval_splits`` (one
   partition per source and protocol, replaced on rerun).
2. **socialrec's model** and its ablations (``evaluate.ablations``: a branch switched off) for each seed in
   ``evaluate.seeds``, trained by the train stage on the protocol's training split with early stopping on its
   validation split (:func:`socialrec.pipelines.train.run`; an already trained key is reused, so the temporal
   model ``make run`` trained is not trained again). Evaluation models are registered under
   ``evaluate.registered_model``, never under the serving name.
3. **Baselines** (``evaluate.baselines.models``): fitted on the same training pairs; LightGCN stops early on
   the same validation monitor as socialrec (``train.monitor``).
4. Every model ranks **all** items minus each user's earlier items, for the same users
   (:mod:`socialrec.evaluation.predict`); Spark computes the metrics (:mod:`socialrec.evaluation.metrics`),
   overall and per slice (cold users, users with and without social ties, item popularity buckets).
5. One MLflow run (experiment ``evaluate.experiment``) gets the parameters, the headline metrics and the
   report; ``gold.evaluation`` gets every figure in one append, keyed by that run id; the report (Markdown and
   PNG plots) goes to ``<evaluate.reports_dir>/<dataset>-<protocol>-<time>/``.

The single-machine parts (baselines, top-K) hold the training pairs and catalogue-wide score blocks in memory:
they refuse training splits above ``evaluate.max_train_pairs`` before any work.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.errors import SocialrecError
from socialrec.evaluation import baselines as B
from socialrec.evaluation import metrics as M
from socialrec.evaluation.predict import ProtocolData, monitor_fn, protocol_data, rank_users, recs_frame
from socialrec.evaluation.protocols import protocol_examples, protocol_pairs
from socialrec.faults import checkpoint
from socialrec.ingest import adapter_for
from socialrec.lake import Lake
from socialrec.logs import progress_task
from socialrec.resources import ensure_fits_on_driver
from socialrec.schema import columns as C
from socialrec.schema.tables import (
    GOLD_EVAL_SPLITS,
    GOLD_EVALUATION,
    GOLD_EXAMPLES,
    GOLD_ITEM_INDEX,
    GOLD_ITEM_TEXT,
    GOLD_NEIGHBOURHOODS,
    GOLD_TEXT_EMBEDDINGS,
    GOLD_USER_INDEX,
    SILVER_ITEMS,
)

logger = logging.getLogger(__name__)
DRIVER_BYTES_PER_PAIR = 200
DRIVER_BYTES_PER_ITEM_VECTOR = 2 * 8 * 384 + 100  # float64 copies of a MiniLM vector

ABLATION_FLAG = {"social": "use_social", "text": "use_text", "sequence": "use_sequence"}
DEFAULT_RATIOS = {"ciao": (0.7, 0.1, 0.2)}


class EvaluationInputError(SocialrecError):
    """The lake cannot feed an evaluation (missing tables, empty splits, data too large for the driver)."""


@dataclass
class ModelLists:
    """One evaluated model (and seed): its top-K lists per split, and what produced them."""

    model: str
    seed: int
    recs: dict[str, pd.DataFrame]
    info: dict[str, Any]


def ratios_for(cfg: AppConfig, source: str) -> tuple[float, float, float]:
    if cfg.evaluate.random_ratios:
        r = cfg.evaluate.random_ratios
        return (r[0], r[1], r[2])
    return DEFAULT_RATIOS.get(source, (0.8, 0.1, 0.1))


def write_splits(lake: Lake, examples: DataFrame, cfg: AppConfig, source: str) -> int:
    """Build and store the protocol's split in its (source, protocol) partition; returns the table version."""
    ev = cfg.evaluate
    pairs = protocol_pairs(examples, ev.protocol, ratios_for(cfg, source), ev.split_seed)
    out = pairs.select(
        F.lit(ev.protocol).alias("protocol"),
        F.lit(ev.split_seed if ev.protocol == "random" else 0).cast("int").alias("split_seed"),
        "split", C.USER_ID, F.col("user_idx").cast("int"), F.col("item_idx").cast("int"), F.lit(source).alias(C.SOURCE),
    )
    lake.ensure(GOLD_EVAL_SPLITS)
    lake.overwrite(out, GOLD_EVAL_SPLITS, partitions={C.SOURCE: source, "protocol": ev.protocol})
    return lake.version(GOLD_EVAL_SPLITS)


def variant_config(cfg: AppConfig, ablation: str | None, seed: int) -> AppConfig:
    """The training config of one socialrec variant: a branch off (or none), a seed, the evaluation registry."""
    v = cfg.model_copy(deep=True)
    v.train.seed = seed
    if ablation:
        setattr(v.train.model, ABLATION_FLAG[ablation], False)
    v.tracking.registered_model = cfg.evaluate.registered_model
    v.train.retrain = False
    return v


def train_variant(spark: SparkSession, cfg: AppConfig, lake: Lake, source: str, ablation: str | None, seed: int) -> dict[str, Any]:
    """Train (or find) one socialrec variant on the protocol's training split; returns the train summary."""
    from socialrec.pipelines import train

    vcfg = variant_config(cfg, ablation, seed)
    if cfg.evaluate.protocol == "temporal":
        data = train.temporal_training_data(lake, source)
    else:
        mine = F.col(C.SOURCE) == source
        splits = lake.read(GOLD_EVAL_SPLITS).where(mine & (F.col("protocol") == "random"))
        bag = cfg.evaluate.random_sequences == "bag"
        examples = protocol_examples(lake.read(GOLD_EXAMPLES).where(mine), splits, cfg.examples.sequence_length,
                                     bag=bag, seed=cfg.evaluate.split_seed)
        history = examples.where(F.col("split") == "train").select("user_idx", "item_idx", C.TS, C.EVENT_ID)
        # The split is a function of gold.examples (its version is in the key) and of the ratios and seed (in
        # the label), not of gold.eval_splits' version: rewriting the same split does not retrain. The inputs'
        # reading is in the label too ("earlier" keeps the label models trained before the option had).
        versions = {s.qualified_name: lake.version(s) for s in train.INPUTS}
        label = f"random-{ratios_for(cfg, source)}-{cfg.evaluate.split_seed}" + ("-bag" if bag else "")
        data = train.TrainingData(label, examples, history, None, versions)
    return train.run(spark, vcfg, data)


def socialrec_lists(cfg: AppConfig, summary: dict[str, Any], source: str, pd_data: ProtocolData, k: int) -> dict[str, pd.DataFrame]:
    """Top-K lists of a trained variant: its registered model on the queries the train stage wrote."""
    import torch

    from socialrec.pipelines.recommend import ModelRef, load_model
    from socialrec.pipelines.train import runs_dir
    from socialrec.training.model import pack_user_features
    from socialrec.training.tracking import tracking_uri

    # The variant may have been reused without touching MLflow in this process: name the store explicitly.
    model = load_model(ModelRef(name=summary["model_name"], version=str(summary["model_version"]),
                                run_id=summary["run_id"], tracking_uri=tracking_uri(cfg)))
    run_dir = runs_dir(cfg) / f"{source}-{summary['training_key']}"
    with torch.no_grad():
        items = model.item_vectors().float()
    out: dict[str, pd.DataFrame] = {}
    for split, folder in (("validation", "valid"), ("test", "test")):
        if split not in pd_data.held_out:
            continue
        held = pd_data.held_out[split]
        queries = pd.read_parquet(run_dir / folder, columns=["user_idx", "seq", "neighbours"]).set_index("user_idx")
        missing = np.setdiff1d(held.users, queries.index.to_numpy())
        if len(missing):
            raise EvaluationInputError(f"{len(missing)} {split} users have no query row in {run_dir / folder}")
        q = queries.loc[held.users]
        feats = pack_user_features(torch.from_numpy(held.users), torch.tensor(np.stack(q["seq"].to_numpy())),
                                   torch.tensor(np.stack(q["neighbours"].to_numpy())))
        with torch.no_grad():
            user_vecs = model(feats).float()
        row_of = {int(u): i for i, u in enumerate(held.users)}

        def scorer(users: np.ndarray, uv: Any = user_vecs, rows: dict[int, int] = row_of) -> np.ndarray:
            idx = torch.tensor([rows[int(u)] for u in users])
            with torch.no_grad():
                return (uv[idx] @ items.T).numpy()

        out[split] = recs_frame(held.users, rank_users(scorer, held.users, held.exclude, k))
    return out


def baselines_cache_dir(cfg: AppConfig) -> Path:
    """Where fitted baselines' top-K lists are cached (per-user rows: forgetting a user deletes it)."""
    return Path(cfg.resolve(cfg.paths.root)) / "evaluation" / "baselines"


def baseline_key(name: str, cfg: AppConfig, pd_data: ProtocolData, k: int) -> str:
    """What decides a baseline's lists: its settings, seed, K, and the exact pairs of every split."""
    h = hashlib.sha256()
    settings = {"name": name, "baselines": cfg.evaluate.baselines.model_dump(mode="json"), "seed": cfg.evaluate.seeds[0],
                "k": k, "monitor": cfg.train.monitor, "shape": [pd_data.n_users, pd_data.n_items]}
    h.update(json.dumps(settings, sort_keys=True).encode())
    for m in [pd_data.train, *[x for held in pd_data.held_out.values() for x in (held.truth, held.exclude)]]:
        h.update(m.indptr.tobytes())
        h.update(m.indices.tobytes())
    return h.hexdigest()[:20]


def cached_baseline_lists(spark: SparkSession, name: str, cfg: AppConfig, pd_data: ProtocolData, train_df: DataFrame,
                          k: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """:func:`baseline_lists`, kept under ``<paths.root>/evaluation/baselines/<key>/``: re-evaluating the same
    split with the same settings (e.g. after retraining socialrec) reuses the fitted baselines' lists."""
    folder = baselines_cache_dir(cfg) / f"{name}-{baseline_key(name, cfg, pd_data, k)}"
    done = folder / "info.json"
    if done.is_file():
        info = json.loads(done.read_text())
        logger.info("baseline %s: lists reused from %s", name, folder)
        return {split: pd.read_parquet(folder / f"{split}.parquet") for split in pd_data.held_out}, dict(info, cached=True)
    t0 = time.perf_counter()
    recs, info = baseline_lists(spark, name, cfg, pd_data, train_df, k)
    info["fit_seconds"] = time.perf_counter() - t0
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for split, frame in recs.items():
        frame.to_parquet(tmp / f"{split}.parquet", index=False)
    (tmp / "info.json").write_text(json.dumps(info, default=float))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)  # complete or absent: a killed run leaves only a .tmp folder
    return recs, info


def baseline_lists(spark: SparkSession, name: str, cfg: AppConfig, pd_data: ProtocolData, train_df: DataFrame,
                   k: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Fit one baseline on the training pairs and rank every held-out split's users."""
    bc = cfg.evaluate.baselines
    x = pd_data.train
    info: dict[str, Any] = {}
    model: Any
    if name == "most_popular":
        model = B.MostPopular().fit(x)
    elif name == "item_knn":
        model = B.ItemKNN(neighbours=bc.item_knn_neighbours, shrink=bc.item_knn_shrink).fit(x)
    elif name == "ease":
        model = B.EASE(l2=bc.ease_l2, max_items=bc.ease_max_items).fit(x)
    elif name == "als":
        model = B.fit_als(train_df, pd_data.n_users, pd_data.n_items, rank=bc.als_rank, reg=bc.als_reg,
                          alpha=bc.als_alpha, iterations=bc.als_iterations, seed=cfg.evaluate.seeds[0],
                          checkpoint_dir=f"{cfg.resolve(cfg.paths.tmp_dir())}/spark-checkpoints")
    elif name == "lightgcn":
        lg = bc.lightgcn
        model = B.LightGCN(dim=lg.dim, layers=lg.layers, lr=lg.lr, reg=lg.reg, batch_size=lg.batch_size,
                           epochs=lg.epochs, patience=lg.patience, eval_every=lg.eval_every, seed=cfg.evaluate.seeds[0])
        monitor = monitor_fn(cfg.train.monitor)
        held = pd_data.held_out.get("validation")
        mk = int(cfg.train.monitor.split("@")[1])

        def validate(m: Any) -> float:
            assert held is not None
            return monitor(rank_users(m.score, held.users, held.exclude, mk), held.users, held.truth)

        model.fit(x, validate=validate if held is not None and len(held.users) else None)
        info["best_validation"] = model.best_validation
    else:
        raise ValueError(f"unknown baseline {name!r}")
    out = {}
    for split, held in pd_data.held_out.items():
        if hasattr(model, "x"):  # history-based (ItemKNN, EASE): read the items known at this split point
            model.x = held.history
        out[split] = recs_frame(held.users, rank_users(model.score, held.users, held.exclude, k))
    if hasattr(model, "x"):
        model.x = x
    return out, info


def user_slices(spark: SparkSession, lake: Lake, source: str, splits: DataFrame, cold_max: int) -> DataFrame:
    """``user, slice``: ``cold`` / ``warm`` by training items, ``social`` / ``no_social`` by 1-hop neighbours."""
    mine = F.col(C.SOURCE) == source
    users = splits.select("user_idx", C.USER_ID).distinct()
    n_train = splits.where(F.col("split") == "train").groupBy("user_idx").agg(F.count(F.lit(1)).alias("_n"))
    tied = lake.read(GOLD_NEIGHBOURHOODS).where(mine & (F.col("hop") == 1)).select(C.USER_ID).distinct() \
        .withColumn("_tied", F.lit(True))
    u = users.join(n_train, "user_idx", "left").join(tied, C.USER_ID, "left")
    return u.select(
        F.col("user_idx").cast("long").alias(M.USER),
        F.explode(F.array(
            F.when(F.coalesce(F.col("_n"), F.lit(0)) <= cold_max, "cold").otherwise("warm"),
            F.when(F.col("_tied").isNotNull(), "social").otherwise("no_social"),
        )).alias("slice"),
    )


GROUPS = ["model", "seed", "split"]


def all_metrics(spark: SparkSession, lists: list[ModelLists], truth: DataFrame, slices: DataFrame, buckets: DataFrame,
                train_pairs: DataFrame, catalogue: DataFrame, categories: DataFrame, embeddings: DataFrame | None,
                ks: list[int], scratch: Path) -> pd.DataFrame:
    """Every metric of every model, seed and split in one Spark plan, long format
    (``model, seed, split, slice, metric, k, value, users``).

    The lists go through a Parquet file in ``scratch``: a DataFrame made from pandas would embed them in every
    task of the plan (megabytes per task, for each of its ~100 stages).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    frames = [r.assign(model=ml.model, seed=ml.seed, split=split) for ml in lists for split, r in ml.recs.items()]
    recs_pdf = pd.concat(frames, ignore_index=True)[[*GROUPS, M.USER, M.ITEM, M.RANK]]
    recs_pdf = recs_pdf.astype({"seed": "int32", M.USER: "int64", M.ITEM: "int64", M.RANK: "int32"})
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / "lists.parquet"
    pq.write_table(pa.Table.from_pandas(recs_pdf, preserve_index=False), path)
    recs = spark.read.parquet(str(path)).persist()
    try:
        acc = M.accuracy(recs, truth, ks, slices, groups=GROUPS)
        by_bucket = M.recall_by_bucket(recs, truth, buckets, ks, groups=GROUPS)
        beyond = M.beyond_accuracy(recs, train_pairs, catalogue, ks, categories, embeddings, groups=GROUPS)
        out: pd.DataFrame = acc.unionByName(by_bucket).unionByName(beyond).toPandas()
    finally:
        recs.unpersist()
        shutil.rmtree(scratch, ignore_errors=True)
    order = {(ml.model, ml.seed): i for i, ml in enumerate(lists)}
    out["_o"] = [order[(m, s)] for m, s in zip(out["model"], out["seed"], strict=True)]
    return out.sort_values(["_o", "split", "slice", "metric", "k"]).drop(columns="_o").reset_index(drop=True)


def run(spark: SparkSession, cfg: AppConfig) -> dict[str, Any]:
    """Evaluate every configured model under ``evaluate.protocol``; returns the figures and where they went."""
    import mlflow

    from socialrec.training import tracking
    from socialrec.training.loop import metric_key

    t0 = time.perf_counter()
    ev = cfg.evaluate
    tracking.use_store(tracking.tracking_uri(cfg))
    source = adapter_for(cfg.data.dataset, cfg).name
    lake = Lake(spark, cfg)
    for spec in (GOLD_EXAMPLES, GOLD_USER_INDEX, GOLD_ITEM_INDEX):
        if not lake.exists(spec):
            raise EvaluationInputError(f"{spec.qualified_name} does not exist: run the earlier stages first (make run)")
    lake.ensure(GOLD_EVALUATION)
    mine = F.col(C.SOURCE) == source
    examples = lake.read(GOLD_EXAMPLES).where(mine)
    # Before anything is written or trained: the pairs become pandas frames and sparse matrices on the driver
    # (about 200 B a pair across the copies).
    n_pairs = examples.count()
    ensure_fits_on_driver(spark, cfg, f"evaluating {source}/{ev.protocol} ({n_pairs:,} interaction pairs)", n_pairs,
                          DRIVER_BYTES_PER_PAIR, "sample users (evaluate.max_train_pairs bounds the pairs)")
    splits_version = write_splits(lake, examples, cfg, source)
    checkpoint("evaluate:after-splits")  # crash tests: the splits written, no model evaluated yet
    splits = lake.read(GOLD_EVAL_SPLITS).where(mine & (F.col("protocol") == ev.protocol))
    n_train = splits.where(F.col("split") == "train").count()
    if n_train == 0:
        raise EvaluationInputError(f"the {ev.protocol} protocol leaves no training pairs for {source}")
    if n_train > ev.max_train_pairs:
        raise EvaluationInputError(
            f"{n_train:,} training pairs exceed evaluate.max_train_pairs={ev.max_train_pairs:,}: the baselines and "
            "top-K lists run on the driver; sample users (or raise the limit with enough driver memory)"
        )
    n_users = int(lake.read(GOLD_USER_INDEX).where(mine).agg(F.max("user_idx")).first()[0]) + 1  # type: ignore[index]
    n_items = int(lake.read(GOLD_ITEM_INDEX).where(mine).agg(F.max("item_idx")).first()[0]) + 1  # type: ignore[index]
    ensure_fits_on_driver(spark, cfg, f"the diversity metrics' item vectors ({n_items:,} items)", n_items,
                          DRIVER_BYTES_PER_ITEM_VECTOR, "evaluate fewer items")
    # Bounded by evaluate.max_train_pairs (checked above): the pairs become sparse matrices on the driver.
    pairs_pdf = splits.select("user_idx", "item_idx", "split").toPandas()
    pd_data = protocol_data(pairs_pdf, n_users, n_items, ev.splits)
    for name, held in pd_data.held_out.items():
        if len(held.users) == 0:
            raise EvaluationInputError(f"the {ev.protocol} protocol leaves no {name} users with a held-out item")
    k_max = max(ev.ks)
    logger.info("evaluate %s/%s: %d users, %d items, %d training pairs, %s", source, ev.protocol, n_users, n_items,
                n_train, {n: len(h.users) for n, h in pd_data.held_out.items()})

    # socialrec and its ablations first: each trains in its own MLflow run.
    lists: list[ModelLists] = []
    variants = [(a, seed) for a in [None, *ev.ablations] for seed in ev.seeds] if ev.socialrec else []
    train_df = splits.where(F.col("split") == "train").select(F.col("user_idx").alias("user"), F.col("item_idx").alias("item"))
    skipped: dict[str, str] = {}
    with progress_task(f"evaluate {source}/{ev.protocol}: models", len(variants) + len(ev.baselines.models)) as bar:
        for ablation, seed in variants:
            name = "socialrec" if ablation is None else f"socialrec-no_{ablation}"
            bar.update(description=f"evaluate {source}/{ev.protocol}: {name} (seed {seed})")
            summary = train_variant(spark, cfg, lake, source, ablation, seed)
            recs = socialrec_lists(cfg, summary, source, pd_data, k_max)
            lists.append(ModelLists(name, seed, recs, {
                "model_name": summary["model_name"], "model_version": summary["model_version"],
                "training_run_id": summary["run_id"], "best_epoch": summary["best_epoch"],
                "epochs_run": summary["epochs_run"], "train_seconds": summary["train_seconds"]}))
            bar.advance()
        for name in ev.baselines.models:
            bar.update(description=f"evaluate {source}/{ev.protocol}: {name}")
            tb = time.perf_counter()
            try:
                recs, info = cached_baseline_lists(spark, name, cfg, pd_data, train_df, k_max)
            except ValueError as exc:  # e.g. EASE above its dense-matrix limit: reported, not fatal
                logger.warning("baseline %s skipped: %s", name, exc)
                skipped[name] = str(exc)
                continue
            finally:
                bar.advance()
            lists.append(ModelLists(name, ev.seeds[0], recs, info))
            logger.info("baseline %s ranked in %.1fs", name, time.perf_counter() - tb)

    # Metric inputs, shared by every model (Spark).
    truth = splits.where(F.col("split").isin(*ev.splits)).select(
        "split", F.col("user_idx").cast("long").alias(M.USER), F.col("item_idx").cast("long").alias(M.ITEM)).persist()
    train_pairs = train_df.select(F.col("user").cast("long").alias(M.USER), F.col("item").cast("long").alias(M.ITEM)).persist()
    catalogue = spark.range(n_items).select(F.col("id").alias(M.ITEM))
    from socialrec.training.data import item_catalogue

    cat = item_catalogue(lake.read(GOLD_ITEM_INDEX).where(mine), lake.read(SILVER_ITEMS).where(mine),
                         lake.read(GOLD_ITEM_TEXT).where(mine), lake.read(GOLD_TEXT_EMBEDDINGS), cfg.embeddings.model).persist()
    categories = cat.select(F.col("item_idx").cast("long").alias(M.ITEM), F.col("category_id").cast("string").alias("category"))
    embeddings = cat.where(F.col("embedding").isNotNull()).select(F.col("item_idx").cast("long").alias(M.ITEM), "embedding")
    slices = user_slices(spark, lake, source, splits, ev.cold_user_max).persist()
    buckets = M.popularity_buckets(train_pairs, catalogue).persist()

    evaluated_at = datetime.now(UTC).replace(tzinfo=None)
    tm = time.perf_counter()
    scratch = Path(cfg.resolve(cfg.paths.tmp_dir())) / f"evaluate-{uuid.uuid4().hex[:12]}"
    table = all_metrics(spark, lists, truth, slices, buckets, train_pairs, catalogue, categories, embeddings, ev.ks,
                        scratch)
    logger.info("metrics of %d models x %d splits in %.1fs", len(lists), len(ev.splits), time.perf_counter() - tm)
    for df in (truth, train_pairs, cat, slices, buckets):
        df.unpersist()

    # One MLflow run and one append: the figures land together or not at all.
    experiment_id = tracking.ensure_experiment(cfg, ev.experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{source}-{ev.protocol}") as active:
        run_id = active.info.run_id
        mlflow.log_params({"dataset": source, "protocol": ev.protocol, "ks": ev.ks, "seeds": ev.seeds,
                           "ratios": ratios_for(cfg, source) if ev.protocol == "random" else "temporal",
                           "split_seed": ev.split_seed, "models": [m.model for m in lists], "n_users": n_users,
                           "n_items": n_items, "n_train_pairs": n_train,
                           "eval_splits_version": splits_version})
        mlflow.set_tags({"socialrec.stage": "evaluate", "git_commit": tracking.git_commit(cfg.project_root)})
        headline = table[(table["slice"] == M.ALL) & table["metric"].isin(["recall", "ndcg"])]
        mlflow.log_metrics({
            metric_key(f"{r.model}.s{r.seed}.{r.split}.{r.metric}@{r.k}"): float(r.value)
            for r in headline.itertuples()
        })
        out = table.assign(dataset=source, protocol=ev.protocol, run_id=run_id, evaluated_at=evaluated_at)
        out["k"] = out["k"].astype("int32")
        out["seed"] = out["seed"].astype("int32")
        out["users"] = out["users"].astype("int64")
        rows = spark.createDataFrame(out[list(GOLD_EVALUATION.column_names)], GOLD_EVALUATION.schema)
        checkpoint("evaluate:before-append")  # crash tests: an MLflow run open, the figures not yet in the lake
        lake.append(rows, GOLD_EVALUATION)
        from socialrec.evaluation.report import write_report

        report_dir = Path(cfg.resolve(ev.reports_dir or f"{cfg.paths.root}/reports")) / \
            f"{source}-{ev.protocol}-{evaluated_at:%Y%m%d-%H%M%S}"
        info = {m.model if m.seed == ev.seeds[0] else f"{m.model} (seed {m.seed})": m.info for m in lists}
        report = write_report(table, report_dir, dataset=source, protocol=ev.protocol, ks=ev.ks, run_id=run_id,
                              info=info, skipped=skipped, sizes={"users": n_users, "items": n_items,
                                                                 "train pairs": n_train,
                                                                 **{f"{n} users": len(h.users) for n, h in pd_data.held_out.items()}})
        mlflow.log_artifacts(str(report_dir), "report")
    seconds = time.perf_counter() - t0
    logger.info("evaluation %s done in %.1fs: %d rows in %s, report %s", run_id, seconds, len(out),
                GOLD_EVALUATION.qualified_name, report)
    return {"run_id": run_id, "dataset": source, "protocol": ev.protocol, "rows": len(out), "report": str(report),
            "models": [m.model for m in lists], "skipped": skipped, "seconds": seconds, "table": table}


def print_summary(summary: dict[str, Any], console: Any) -> None:
    """Test-split NDCG/Recall per model (mean over seeds), one screen."""
    from rich.table import Table

    from socialrec.evaluation.report import headline_table

    t = headline_table(summary["table"], "test" if "test" in set(summary["table"]["split"]) else "validation")
    table = Table(title=f"{summary['dataset']} / {summary['protocol']} protocol, full ranking (MLflow run {summary['run_id']})")
    for col in t.columns:
        table.add_column(str(col), justify="left" if col == "model" else "right")
    for row in t.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    # wide enough for every metric column even when stdout is not a terminal (rich's default is then 80)
    from rich.console import Console

    Console(file=console.file, width=max(console.width, 16 + 11 * len(t.columns))).print(table)
    if summary["skipped"]:
        console.print(f"  skipped: {summary['skipped']}")
    console.print(f"  report: {summary['report']}")
