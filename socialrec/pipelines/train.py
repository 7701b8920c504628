"""Stage ``train``: gold tables -> petastorm -> TorchDistributor -> MLflow (DESIGN §5).

The driver does Spark and MLflow; the ranks do torch (:func:`socialrec.training.loop.train_fn`):

1. Read ``gold.examples`` and the catalogue tables through Spark, recording each input's Delta version.
2. A *training key* hashes the inputs' versions and every setting that changes the result. Its run folder
   (``<train.runs_dir>/<source>-<key>``) holds the checkpoints and ``state.json`` (the MLflow run id, and
   ``registered`` once done). A rerun of a finished key returns the registered version (idempotent; set
   ``train.retrain=true`` for a new one); a rerun of an interrupted key resumes the same MLflow run from
   the newest checkpoint.
3. Training rows go to petastorm (``make_spark_converter``, cache under ``train.cache_dir``, deleted after
   the run); evaluation users go to Parquet files that each rank splits by file; the catalogue (one row per
   item, the only thing collected) to an ``.npz`` that becomes model buffers.
4. ``TorchDistributor(num_processes, local_mode, use_gpu).run(train_fn, job)``.
5. MLflow: the resolved config as params, input versions and git commit as tags and dataset inputs,
   per-epoch metrics (logged live by rank 0), curves as PNG, the best model logged with a signature and
   registered as a new version with the ``tracking.alias`` alias. A failure marks the run FAILED.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.errors import SocialrecError
from socialrec.faults import checkpoint
from socialrec.ingest import adapter_for
from socialrec.lake import Lake
from socialrec.logs import poll_progress
from socialrec.resources import ensure_fits_on_driver
from socialrec.schema import columns as C
from socialrec.schema.tables import (
    GOLD_EXAMPLES,
    GOLD_ITEM_INDEX,
    GOLD_ITEM_TEXT,
    GOLD_TEXT_EMBEDDINGS,
    GOLD_USER_INDEX,
    SILVER_EVENTS,
    SILVER_ITEMS,
    TableSpec,
    all_tables,
)
from socialrec.training.data import (
    item_catalogue,
    item_positive_counts,
    query_rows,
    split_start,
    training_rows,
    user_item_bags,
)

logger = logging.getLogger(__name__)

INPUTS: tuple[TableSpec, ...] = (
    GOLD_EXAMPLES, GOLD_USER_INDEX, GOLD_ITEM_INDEX, SILVER_EVENTS, SILVER_ITEMS, GOLD_ITEM_TEXT, GOLD_TEXT_EMBEDDINGS,
)


class TrainingInputError(SocialrecError):
    """The gold tables cannot feed a training run (e.g. no training examples)."""


def runs_dir(cfg: AppConfig) -> Path:
    return Path(cfg.resolve(cfg.train.runs_dir or f"{cfg.paths.root}/training"))


def training_key(cfg: AppConfig, versions: dict[str, int], source: str, label: str = "temporal") -> str:
    """A hash of everything that decides the trained model: inputs' versions, protocol and training settings."""
    train = cfg.train.model_dump(mode="json", exclude={"retrain", "cache_dir", "runs_dir"})
    payload: dict[str, Any] = {
        "source": source,
        "versions": versions,
        "train": train,
        "examples": cfg.examples.model_dump(mode="json"),
        "embedding_model": cfg.embeddings.model,
    }
    if label != "temporal":  # the temporal key stays what it was, so existing runs are still found
        payload["protocol"] = label
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def epochs_done(checkpoint_dir: Path) -> int:
    """How many epochs the checkpoints in ``checkpoint_dir`` cover (``epoch-NNN.pt`` counts from 0)."""
    epochs = [int(p.stem.split("-", 1)[1]) for p in checkpoint_dir.glob("epoch-*.pt") if p.stem.split("-", 1)[1].isdigit()]
    return max(epochs) + 1 if epochs else 0


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def build_catalogue(lake: Lake, examples: DataFrame, cfg: AppConfig, source: str, n_items: int, path: Path) -> dict[str, int]:
    """Write the catalogue arrays (one row per item index) to ``path``; returns vocabulary sizes."""
    mine = F.col(C.SOURCE) == source
    # one row per item on the driver: its text embedding (pandas object + float32 array copies) and metadata
    ensure_fits_on_driver(lake.spark, cfg, f"the item catalogue ({n_items:,} items)", n_items, 3 * 4 * 384 + 200,
                          "train on fewer items")
    cat: pd.DataFrame = item_catalogue(
        lake.read(GOLD_ITEM_INDEX).where(mine),
        lake.read(SILVER_ITEMS).where(mine),
        lake.read(GOLD_ITEM_TEXT).where(mine),
        lake.read(GOLD_TEXT_EMBEDDINGS),
        cfg.embeddings.model,
    ).toPandas()
    counts: pd.DataFrame = item_positive_counts(examples).toPandas()
    dims = {len(e) for e in cat["embedding"] if e is not None}
    text_dim = dims.pop() if len(dims) == 1 else 0
    item_text = np.zeros((n_items, text_dim), dtype=np.float32)
    has = cat["embedding"].notna().to_numpy() if text_dim else np.zeros(len(cat), bool)
    if has.any():
        item_text[cat["item_idx"].to_numpy()[has]] = np.stack(cat["embedding"][has].to_numpy())
    category = np.zeros(n_items, dtype=np.int64)
    brand = np.zeros(n_items, dtype=np.int64)
    category[cat["item_idx"].to_numpy()] = cat["category_id"].to_numpy()
    brand[cat["item_idx"].to_numpy()] = cat["brand_id"].to_numpy()
    popularity = np.zeros(n_items, dtype=np.float64)
    popularity[counts["item_idx"].to_numpy()] = counts["n"].to_numpy()
    # Additive smoothing keeps log q finite for items never seen in training.
    q = (popularity + 1.0) / (popularity.sum() + n_items)
    tmp = path.with_name("catalogue.tmp.npz")
    np.savez(
        tmp,
        item_text=item_text,
        item_category=category,
        item_brand=brand,
        item_log_q=np.log(q).astype(np.float32),
        item_popularity=popularity.astype(np.float32),
    )
    os.replace(tmp, path)
    return {"text_dim": int(text_dim), "n_categories": int(category.max()) + 1, "n_brands": int(brand.max()) + 1,
            "items_with_text": int(has.sum())}


def write_user_items(lake: Lake, cfg: AppConfig, history: DataFrame, n_users: int, size: int, path: Path) -> Path:
    """``[n_users, size]`` int32, each user's latest training items (PAD -1), for the social branch's
    ``neighbour_items``; collected to the driver (bounded by the driver budget)."""
    ensure_fits_on_driver(lake.spark, cfg, f"the neighbours' item bags ({n_users:,} users x {size})", n_users,
                          8 * size + 120, "lower train.model.neighbour_items")
    bags = np.full((n_users, size), -1, dtype=np.int32)
    rows: pd.DataFrame = user_item_bags(history, size).toPandas()
    for user, items in zip(rows["user_idx"].to_numpy(), rows["items"], strict=True):
        bags[int(user), : len(items)] = items
    tmp = path.with_name("user_items.tmp.npy")
    np.save(tmp, bags)
    os.replace(tmp, path)
    return path


def _max_index(df: DataFrame, col: str) -> int:
    row = df.agg(F.max(col)).first()
    return -1 if row is None or row[0] is None else int(row[0])


def _write_queries(df: DataFrame, path: Path, files: int) -> int:
    df.repartition(files).write.mode("overwrite").parquet(str(path))
    return int(df.sparkSession.read.parquet(str(path)).count())


@dataclass
class TrainingData:
    """What a training run learns from and is validated on.

    ``examples`` has gold.examples' columns; ``history`` (``user_idx, item_idx, ts, event_id``) is what an
    evaluation query's state (its last items) is built from, cut at the split points ``cutoffs`` (t1, t2), or
    not cut at all when ``cutoffs`` is None (the random protocol: history is the user's training items).
    ``label`` names the protocol in the training key; ``versions`` are the inputs' Delta versions.
    """

    label: str
    examples: DataFrame
    history: DataFrame
    cutoffs: tuple[Any, Any] | None
    versions: dict[str, int]


def temporal_training_data(lake: Lake, source: str) -> TrainingData:
    """gold.examples' global temporal split, queries cut at its split points (the default)."""
    mine = F.col(C.SOURCE) == source
    examples = lake.read(GOLD_EXAMPLES).where(mine)
    history = (
        lake.read(SILVER_EVENTS).where(mine)
        .join(lake.read(GOLD_ITEM_INDEX).where(mine).select(C.ITEM_ID, "item_idx"), C.ITEM_ID)
        .join(lake.read(GOLD_USER_INDEX).where(mine).select(C.USER_ID, "user_idx"), C.USER_ID)
        .select("user_idx", "item_idx", C.TS, C.EVENT_ID)
    )
    t1, t2 = split_start(examples, "validation"), split_start(examples, "test")
    if t1 is None or t2 is None:
        raise TrainingInputError("gold.examples has no validation or no test split: run the examples stage")
    versions = {spec.qualified_name: lake.version(spec) for spec in INPUTS}
    return TrainingData("temporal", examples, history, (t1, t2), versions)


def run(spark: SparkSession, cfg: AppConfig, data: TrainingData | None = None) -> dict[str, Any]:
    """Train (or resume, or return the already registered model) on ``data`` (default: the temporal split of
    gold.examples); returns the run's figures."""
    import mlflow

    from socialrec.training import tracking
    from socialrec.training.model import ModelSpec

    t_start = time.perf_counter()
    source = adapter_for(cfg.data.dataset, cfg).name
    lake = Lake(spark, cfg)
    data = data or temporal_training_data(lake, source)
    versions = data.versions
    key = training_key(cfg, versions, source, data.label)
    run_dir = runs_dir(cfg) / f"{source}-{key}"
    state_file = run_dir / "state.json"
    state: dict[str, Any] = json.loads(state_file.read_text()) if state_file.is_file() else {}
    store = tracking.tracking_uri(cfg)
    stale = False
    if state.get("status") == "registered" and not cfg.train.retrain:
        if tracking.registered_here(store, state["model_name"], state["model_version"], state["run_id"]):
            logger.info("training %s is already registered as %s v%s (train.retrain=true trains again)",
                        key, state["model_name"], state["model_version"])
            return dict(state["summary"], already_registered=True)
        # The state names a version number, not a store: a version registered elsewhere (another store, or a
        # store since wiped) is not this store's, whatever model that number holds here.
        logger.warning("training %s: %s v%s of run %s is not in %s: training again", key, state["model_name"],
                       state["model_version"], state["run_id"], store)
        stale = True
    if (cfg.train.retrain or stale) and run_dir.exists():
        shutil.rmtree(run_dir)
        state = {}
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    mine = F.col(C.SOURCE) == source
    examples = data.examples
    n_users = _max_index(lake.read(GOLD_USER_INDEX).where(mine), "user_idx") + 1
    n_items = _max_index(lake.read(GOLD_ITEM_INDEX).where(mine), "item_idx") + 1
    world = cfg.train.num_processes
    seq_len, n_nb = cfg.examples.sequence_length, cfg.examples.neighbours

    sizes = build_catalogue(lake, examples, cfg, source, n_items, run_dir / "catalogue.npz")
    spec = ModelSpec(n_users=n_users, n_items=n_items, seq_len=seq_len, n_neighbours=n_nb,
                     n_categories=sizes["n_categories"], n_brands=sizes["n_brands"], text_dim=sizes["text_dim"],
                     **cfg.train.model.model_dump())
    train_df = training_rows(examples, seq_len, n_nb)
    n_train = train_df.count()
    steps = cfg.train.steps_per_epoch or n_train // (cfg.train.batch_size * world)
    if n_train == 0 or steps == 0:
        raise TrainingInputError(
            f"{n_train} training examples cannot fill one step of batch_size={cfg.train.batch_size} x "
            f"num_processes={world}: lower train.batch_size or add data"
        )
    history = data.history
    t1, t2 = data.cutoffs or (None, None)
    bags_path = None
    if spec.neighbour_items and spec.use_social:
        # What the model may know of a neighbour: the training period only (before t1 under the temporal split).
        before = history if t1 is None else history.where(F.col(C.TS) < F.lit(t1))
        bags_path = write_user_items(lake, cfg, before, n_users, spec.neighbour_items, run_dir / "user_items.npy")
    n_valid = _write_queries(query_rows(examples, history, "validation", ["train"], t1, seq_len, n_nb), run_dir / "valid", 2 * world)
    n_test = _write_queries(query_rows(examples, history, "test", ["train", "validation"], t2, seq_len, n_nb), run_dir / "test", 2 * world)
    if n_valid == 0:
        raise TrainingInputError("no validation user has a held-out item outside their training items")

    from petastorm.spark import SparkDatasetConverter, make_spark_converter

    cache = Path(cfg.resolve(cfg.train.cache_dir or f"{cfg.paths.tmp_dir()}/petastorm")) / key
    cache.mkdir(parents=True, exist_ok=True)
    spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, cache.as_uri())
    # A multiple of the world size in files: petastorm shards by row group and refuses fewer than ranks.
    parts = world * max(1, math.ceil(n_train / 500_000))
    converter = make_spark_converter(train_df.repartition(parts))

    experiment_id = tracking.ensure_experiment(cfg)
    resumed_run = state.get("run_id")
    if resumed_run and not tracking.run_exists(store, resumed_run):
        logger.warning("training %s: run %s is not in %s: a new run (the checkpoints are kept)", key, resumed_run, store)
        resumed_run = None
    active = mlflow.start_run(run_id=resumed_run) if resumed_run else mlflow.start_run(
        experiment_id=experiment_id, run_name=f"{source}-{key[:8]}")
    run_id = active.info.run_id
    state = {"status": "training", "run_id": run_id, "key": key, "source": source, "versions": versions,
             "protocol": data.label}
    _write_json(state_file, state)
    old_tmp = os.environ.get("TMPDIR")
    try:
        if not resumed_run:
            tracking.log_params(cfg.flat())
            specs = {s.qualified_name: s for s in all_tables()}
            tracking.log_lineage({name: (lake.location(specs[name]), v) for name, v in versions.items()}, source,
                                 tracking.git_commit(cfg.project_root))
            mlflow.log_params({"data.n_train_examples": n_train, "data.n_valid_users": n_valid,
                               "data.n_test_users": n_test, "model.n_users": n_users, "model.n_items": n_items,
                               "model.text_dim": sizes["text_dim"], "train.steps_per_epoch_resolved": steps})
            mlflow.set_tags({"socialrec.training_key": key, "socialrec.protocol": data.label})
        job = {
            "spec": spec.to_dict(),
            "catalogue_path": str(run_dir / "catalogue.npz"),
            "user_items_path": str(bags_path) if bags_path else None,
            "converter": converter,
            "valid_dir": str(run_dir / "valid"),
            "test_dir": str(run_dir / "test"),
            "checkpoint_dir": str(ckpt_dir),
            "steps_per_epoch": steps,
            "n_valid_users": n_valid,
            "n_test_users": n_test,
            "mlflow": {"tracking_uri": store, "run_id": run_id},
            **cfg.train.model_dump(include={"epochs", "batch_size", "lr", "weight_decay", "grad_clip", "sparse_embeddings",
                                            "extra_negatives", "patience", "ks", "monitor", "seed", "use_gpu", "bf16", "torch_threads",
                                            "eval_batch_size", "max_eval_users", "shuffle_capacity"}),
        }
        # torchrun leaves torchelastic_* folders in the temp dir: keep them in the run folder.
        (run_dir / "tmp").mkdir(exist_ok=True)
        os.environ["TMPDIR"] = str(run_dir / "tmp")
        from pyspark.ml.torch.distributor import TorchDistributor

        logger.info("training %s: %d examples, %d steps/epoch x %d processes (local_mode=%s, use_gpu=%s)",
                    key, n_train, steps, world, cfg.train.local_mode, cfg.train.use_gpu)
        t0 = time.perf_counter()
        from socialrec.training.loop import train_fn

        distributor = TorchDistributor(num_processes=world, local_mode=cfg.train.local_mode, use_gpu=cfg.train.use_gpu)
        # The epochs run in the distributor's processes; the driver follows them through the checkpoints rank 0
        # writes after every epoch (early stopping ends the bar before its total).
        with poll_progress(f"train {source}: epochs", cfg.train.epochs, lambda: epochs_done(ckpt_dir)):
            result = distributor.run(train_fn, job)
        train_seconds = time.perf_counter() - t0
        if result is None:
            raise SocialrecError("training returned no result (rank 0 did not finish)")
        tracking.log_curves(result["history"], cfg.train.ks, result["val_mostpop"])
        from socialrec.training.loop import metric_key

        best_row = next((h for h in result["history"] if int(h["epoch"]) == result["best_epoch"]), None)
        finals: dict[str, float] = {"best_epoch": float(result["best_epoch"]), "train_seconds": train_seconds}
        if best_row:
            finals.update({f"best_{k}": v for k, v in best_row.items() if k.startswith("val_")})
        finals.update(result["val_mostpop"])
        mlflow.log_metrics({metric_key(k): v for k, v in finals.items()})
        mlflow.log_dict(result, "training/result.json")
        mlflow.log_text(cfg.pretty(), "config.yaml")

        from socialrec.training.loop import build_model
        from socialrec.training.model import UserEncoder

        model = build_model(job)
        import torch

        model.load_state_dict(torch.load(ckpt_dir / "best.pt", map_location="cpu", weights_only=False)["model"])
        model.eval()
        checkpoint("train:before-register")  # crash tests: trained and logged, no model version registered yet
        version = tracking.log_and_register_model(UserEncoder(model), cfg.tracking.registered_model, cfg.tracking.alias)
        summary = {
            "run_id": run_id,
            "model_name": cfg.tracking.registered_model,
            "model_version": version,
            "training_key": key,
            "epochs_run": result["epochs_run"],
            "best_epoch": result["best_epoch"],
            "monitor": result["monitor"],
            "best_val": {k.removeprefix("val_"): v for k, v in (best_row or {}).items() if k.startswith("val_")},
            "val_mostpop": {k.removeprefix("val_mostpop_"): v for k, v in result["val_mostpop"].items()},
            "test": result["test"],
            "test_mostpop": result["test_mostpop"],
            "examples_per_second_per_process": float(np.median([h["examples_per_second_per_process"] for h in result["history"]])) if result["history"] else None,
            "train_seconds": train_seconds,
            "resumed_from": result.get("resumed_from"),
            "n_train_examples": n_train,
            "n_valid_users": n_valid,
            "n_test_users": n_test,
            "num_processes": world,
            "local_mode": cfg.train.local_mode,
            "device": result.get("device"),
            "tracking_uri": store,
        }
        state.update({"status": "registered", "model_name": cfg.tracking.registered_model, "model_version": version,
                      "summary": summary})
        _write_json(state_file, state)
        mlflow.end_run("FINISHED")
        logger.info("training done in %.1fs (model v%s)", time.perf_counter() - t_start, version)
        return summary
    except BaseException as exc:
        mlflow.end_run("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        logger.error("training run %s failed; rerun resumes from the newest checkpoint in %s", run_id, ckpt_dir)
        raise
    finally:
        if old_tmp is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_tmp
        converter.delete()
        shutil.rmtree(cache, ignore_errors=True)


def print_summary(summary: dict[str, Any], console: Any) -> None:
    """The training figures on one screen: model version, validation vs MostPopular, test, speed."""
    from rich.table import Table

    done = "already registered" if summary.get("already_registered") else "registered"
    console.print(f"  model {summary['model_name']} v{summary['model_version']} {done} (MLflow run {summary['run_id']})")
    table = Table(title=f"full ranking, best epoch {summary['best_epoch']} of {summary['epochs_run']} ({summary['monitor']})")
    for col in ("metric", "validation", "val MostPopular", "test", "test MostPopular"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for metric in sorted(k for k in summary["best_val"] if "@" in k):
        table.add_row(metric, f"{summary['best_val'][metric]:.4f}", f"{summary['val_mostpop'].get(metric, float('nan')):.4f}",
                      f"{summary['test'].get(metric, float('nan')):.4f}", f"{summary['test_mostpop'].get(metric, float('nan')):.4f}")
    console.print(table)
    if summary.get("examples_per_second_per_process"):
        console.print(f"  {summary['examples_per_second_per_process']:.0f} training examples/s per process "
                      f"x {summary['num_processes']} processes (local_mode={summary['local_mode']}, {summary['device']})")
