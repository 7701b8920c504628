"""Training benchmark: examples/s per process through the real loop, and petastorm vs plain pyarrow loading.

Synthetic training rows in the shape of the real ones (``user_idx, item_idx, seq[20], neighbours[10]``,
power-law item popularity) are generated in Spark and materialised once through petastorm's
``make_spark_converter`` (not timed). Then, per repeat:

* **loader**: one pass over the same Parquet files (i) through petastorm's ``make_torch_dataloader`` with its
  ``BatchedDataLoader`` (what training uses; batch 256, one reader worker, no shuffling), (ii) the same with
  petastorm's default row-by-row ``DataLoader``, and (iii) with plain ``pyarrow.parquet.ParquetFile.iter_batches``
  + ``torch.from_numpy`` in one process. Rows/s each, and the ratio petastorm (batched) / plain.
* **training**: :func:`socialrec.training.loop.train_fn` launched by ``TorchDistributor(local_mode=True)`` with
  1 and with 2 processes, a fixed number of steps, full-ranking validation on 2,000 users: examples/s per process
  as the loop measures it (petastorm reading included) and the wall time including start-up. The 2-process run
  is repeated with dense gradients for the user and item id tables (``sparse_embeddings=False``, the loop before
  2026-11-24), side by side: the before/after of the sparse tables, whose gain grows with ``--users``/``--items``.
* **peer**: what a user would write instead on one machine: the same model, loss, optimiser and steps in a
  plain torch loop in this process (``torch.set_num_threads(2)``, all rows read into tensors with pyarrow
  first, batches sliced from them; no Spark, petastorm or TorchDistributor). Examples/s, and the ratio of
  socialrec's (the better of 1 and 2 processes, all processes together) to it.
* **GPU**: the same with ``use_gpu=True`` and bf16 when CUDA is available; otherwise reported as not measured.

    python -m bench.training [--rows 300000] [--users 100000] [--items 50000] [--steps 150] [--repeats 3]
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bench import bench_date, save_results
from socialrec.config import load_config
from socialrec.logs import configure_logging
from socialrec.spark import build_spark

logger = logging.getLogger("bench.training")
SEQ, NB, BATCH = 20, 10, 256


def _power_law(n: int, seed: int) -> Any:
    return F.floor(F.pow(F.rand(seed), F.lit(2.0)) * n).cast("int")


def synthetic_rows(spark: SparkSession, rows: int, users: int, items: int) -> DataFrame:
    ids = spark.range(rows)
    return ids.select(
        _power_law(users, 1).alias("user_idx"),
        _power_law(items, 2).alias("item_idx"),
        F.array(*[F.when(F.rand(10 + i) < 0.8, _power_law(items, 30 + i)).otherwise(-1) for i in range(SEQ)]).cast("array<int>").alias("seq"),
        F.array(*[F.when(F.rand(60 + i) < 0.6, _power_law(users, 90 + i)).otherwise(-1) for i in range(NB)]).cast("array<int>").alias("neighbours"),
    )


def synthetic_queries(spark: SparkSession, path: Path, n: int, users: int, items: int) -> None:
    rows = synthetic_rows(spark, n, users, items).select(
        "user_idx", "seq", "neighbours",
        F.array(_power_law(items, 7), _power_law(items, 8)).cast("array<int>").alias("truth"),
        F.array(_power_law(items, 9)).cast("array<int>").alias("exclude"),
    )
    rows.repartition(4).write.mode("overwrite").parquet(str(path))


def loader_petastorm(converter: Any, batched: bool) -> float:
    from petastorm.pytorch import BatchedDataLoader, DataLoader

    t0, n = time.perf_counter(), 0
    fn = BatchedDataLoader if batched else DataLoader
    with converter.make_torch_dataloader(batch_size=BATCH, num_epochs=1, workers_count=1, data_loader_fn=fn) as loader:
        for batch in loader:
            n += int(batch["user_idx"].shape[0])
    return n / (time.perf_counter() - t0)


def loader_plain(files: list[str]) -> float:
    import pyarrow.parquet as pq
    import torch

    t0, n = time.perf_counter(), 0
    for f in files:
        for rb in pq.ParquetFile(f).iter_batches(batch_size=BATCH):
            rows = rb.num_rows
            batch = {
                "user_idx": torch.from_numpy(rb.column("user_idx").to_numpy()),
                "item_idx": torch.from_numpy(rb.column("item_idx").to_numpy()),
                "seq": torch.from_numpy(rb.column("seq").flatten().to_numpy().reshape(rows, SEQ)),
                "neighbours": torch.from_numpy(rb.column("neighbours").flatten().to_numpy().reshape(rows, NB)),
            }
            n += int(batch["user_idx"].shape[0])
    return n / (time.perf_counter() - t0)


def run_plain_torch(job: dict[str, Any], files: list[str], threads: int) -> dict[str, float]:
    """The peer: the same model and steps in a plain single-process torch loop (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from socialrec.training.loop import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(job["seed"])
    table = pa.concat_tables([pq.ParquetFile(f).read() for f in files])
    rows = table.num_rows
    data = {
        "user_idx": torch.from_numpy(table.column("user_idx").to_numpy()).long(),
        "item_idx": torch.from_numpy(table.column("item_idx").to_numpy()).long(),
        "seq": torch.from_numpy(table.column("seq").combine_chunks().flatten().to_numpy().reshape(rows, SEQ)).long(),
        "neighbours": torch.from_numpy(
            table.column("neighbours").combine_chunks().flatten().to_numpy().reshape(rows, NB)).long(),
    }
    from socialrec.training.loop import clip_gradients, make_optimizers

    model = build_model(job)
    optimizers = make_optimizers(model, job, job["sparse_embeddings"])
    model.train()
    bs, steps = job["batch_size"], job["steps_per_epoch"]
    t0 = time.perf_counter()
    for step in range(steps):
        lo = (step * bs) % max(1, rows - bs)
        user_idx, item_idx = data["user_idx"][lo:lo + bs], data["item_idx"][lo:lo + bs]
        u, v, v_neg = model(user_idx, data["seq"][lo:lo + bs], data["neighbours"][lo:lo + bs], item_idx, None)
        loss = model.loss(u, v, item_idx, v_neg, None)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model.parameters(), job.get("grad_clip", 5.0))
        for optimizer in optimizers:
            optimizer.step()
    seconds = time.perf_counter() - t0
    return {"examples_per_s": steps * bs / seconds, "seconds": seconds, "threads": float(threads)}


def run_training(job: dict[str, Any], processes: int, use_gpu: bool, **overrides: Any) -> dict[str, float]:
    from pyspark.ml.torch.distributor import TorchDistributor

    from socialrec.training.loop import train_fn

    shutil.rmtree(job["checkpoint_dir"], ignore_errors=True)
    os.makedirs(job["checkpoint_dir"])
    t0 = time.perf_counter()
    result = TorchDistributor(num_processes=processes, local_mode=True, use_gpu=use_gpu).run(train_fn, dict(job, use_gpu=use_gpu, **overrides))
    wall = time.perf_counter() - t0
    return {"examples_per_s_per_process": float(result["history"][0]["examples_per_second_per_process"]), "wall_s": wall,
            "epoch_s": float(result["history"][0]["epoch_seconds"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--steps", type=int, default=150, help="training steps per process per run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configure_logging("INFO", None, "bench.training")
    work = Path(tempfile.mkdtemp(prefix="socialrec-bench-training-"))
    cfg = load_config("local", {"paths.root": str(work), "logging.to_file": False})
    spark = build_spark(cfg)
    from petastorm.spark import SparkDatasetConverter, make_spark_converter

    spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, (work / "petastorm").as_uri())
    converter = make_spark_converter(synthetic_rows(spark, args.rows, args.users, args.items).repartition(4))
    files = sorted(u.removeprefix("file://") for u in converter.file_urls)
    synthetic_queries(spark, work / "valid", 2000, args.users, args.items)
    rng = np.random.default_rng(0)
    counts = rng.zipf(1.5, args.items).astype(np.float64)
    np.savez(work / "catalogue.npz", item_text=rng.standard_normal((args.items, 384)).astype(np.float32),
             item_category=rng.integers(0, 24, args.items), item_brand=rng.integers(0, 50, args.items),
             item_log_q=np.log(counts / counts.sum()).astype(np.float32), item_popularity=counts.astype(np.float32))
    from socialrec.training.model import ModelSpec

    spec = ModelSpec(n_users=args.users, n_items=args.items, seq_len=SEQ, n_neighbours=NB, n_categories=24, n_brands=50, text_dim=384)
    job = {"spec": spec.to_dict(), "catalogue_path": str(work / "catalogue.npz"), "converter": converter,
           "valid_dir": str(work / "valid"), "test_dir": str(work / "valid"), "checkpoint_dir": str(work / "ckpt"),
           "steps_per_epoch": args.steps, "mlflow": None, "epochs": 1, "batch_size": BATCH, "lr": 0.003,
           "weight_decay": 1e-5, "grad_clip": 5.0, "sparse_embeddings": True, "extra_negatives": 0, "patience": 3, "ks": [10, 20],
           "monitor": "ndcg@10", "seed": 42, "bf16": True, "torch_threads": 1, "eval_batch_size": 512,
           "shuffle_capacity": 0}
    os.environ["TMPDIR"] = str(work / "tmp")
    (work / "tmp").mkdir(exist_ok=True)

    import torch

    results: dict[str, Any] = {"date": bench_date(), "rows": args.rows, "users": args.users,
                               "items": args.items, "steps": args.steps, "batch_size": BATCH, "repeats": args.repeats,
                               "cpu_count": os.cpu_count(), "torch": torch.__version__}
    runs: dict[str, list[dict[str, float]]] = {"petastorm": [], "petastorm_rows": [], "plain": [], "train_1": [], "train_2": [],
                                               "train_2_dense": [],
                                               "train_gpu": [], "plain_torch": []}
    gpu = torch.cuda.is_available()
    for r in range(args.repeats):
        runs["petastorm"].append({"rows_per_s": loader_petastorm(converter, batched=True)})
        runs["petastorm_rows"].append({"rows_per_s": loader_petastorm(converter, batched=False)})
        runs["plain"].append({"rows_per_s": loader_plain(files)})
        runs["train_1"].append(run_training(job, 1, False))
        runs["train_2"].append(run_training(job, 2, False))
        # before/after of the sparse id tables, side by side: the same run with dense gradients (the old loop)
        runs["train_2_dense"].append(run_training(job, 2, False, sparse_embeddings=False))
        runs["plain_torch"].append(run_plain_torch(job, files, threads=os.cpu_count() or 1))
        if gpu:
            runs["train_gpu"].append(run_training(job, 1, True))
        logger.info("repeat %d: %s", r, {k: v[-1] for k, v in runs.items() if v})

    def med(name: str, key: str) -> float | None:
        vals = [x[key] for x in runs[name]]
        return statistics.median(vals) if vals else None

    results["runs"] = runs
    results["median"] = {
        "petastorm_rows_per_s": med("petastorm", "rows_per_s"),
        "petastorm_row_loader_rows_per_s": med("petastorm_rows", "rows_per_s"),
        "plain_pyarrow_rows_per_s": med("plain", "rows_per_s"),
        "train_1proc_examples_per_s_per_process": med("train_1", "examples_per_s_per_process"),
        "train_2proc_examples_per_s_per_process": med("train_2", "examples_per_s_per_process"),
        "train_1proc_wall_s": med("train_1", "wall_s"),
        "train_2proc_wall_s": med("train_2", "wall_s"),
        "train_2proc_dense_examples_per_s_per_process": med("train_2_dense", "examples_per_s_per_process"),
        "gpu_examples_per_s": med("train_gpu", "examples_per_s_per_process"),
        "plain_torch_examples_per_s": med("plain_torch", "examples_per_s"),
    }
    m = results["median"]
    results["ratios"] = {
        "petastorm_vs_plain": m["petastorm_rows_per_s"] / m["plain_pyarrow_rows_per_s"],
        "two_procs_total_vs_one": 2 * m["train_2proc_examples_per_s_per_process"] / m["train_1proc_examples_per_s_per_process"],
        "sparse_vs_dense_id_tables_2proc": m["train_2proc_examples_per_s_per_process"]
        / m["train_2proc_dense_examples_per_s_per_process"],
        # the peer comparison: socialrec's best setting (all its processes together) over the plain torch loop
        "socialrec_vs_plain_torch": max(m["train_1proc_examples_per_s_per_process"],
                                        2 * m["train_2proc_examples_per_s_per_process"]) / m["plain_torch_examples_per_s"],
    }
    results["gpu"] = "measured" if gpu else "not measured: no CUDA device on this machine"
    out = save_results("training", results)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"training benchmark (median of {args.repeats}; {args.rows:,} rows, batch {BATCH})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in {**m, **results["ratios"]}.items():
        table.add_row(k, "-" if v is None else f"{v:,.2f}")
    Console().print(table)
    Console().print(f"GPU: {results['gpu']}; results: {out}")
    converter.delete()
    spark.stop()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
