"""Recommendation scoring benchmark: top-K retrieval throughput (users/s), exact vs approximate, Spark vs one process.

Data (generated once per size, not timed): ``--items`` item vectors and U user vectors (``--users``, default 100k
and 1M), dim 64, unit norm, *clustered* like a trained model's embeddings (256 random unit centres, each vector a
centre plus Gaussian noise, renormalised): on structureless uniform vectors an IVF index would look worse than it
does on real embeddings. User vectors go to Parquet (``user_id, user_vector``) in 100k-row files.

Per size and index (``exact`` = :class:`faiss.IndexFlatIP`, ``ivf`` = :class:`faiss.IndexIVFFlat` with
``--nlist``/``--nprobe``), median of ``--repeats``:

* **peer**: plain numpy + faiss in this process (2 faiss threads), batches of 2048 users through
  :func:`socialrec.recommend.index.search_topk` (the function the pipeline's workers call);
* **spark**: the pipeline's scoring path, :func:`socialrec.recommend.scoring.model_scores` (``mapInPandas`` per
  user partition, index + item vectors in one broadcast, 1 faiss thread per task on ``local[2]``), from Parquet
  to Spark's ``noop`` sink (the K rows per user are produced but not written: the benchmark measures scoring).

Exact search costs the same per user whatever the number of users (every user is compared with every item),
so at sizes above ``--exact-max-users`` (default 100k) the exact runs score a sample of that many users and the
figure is per-user throughput measured on the sample (the result says ``users_scored``). Peak RSS of the process
tree (this process + JVM + Python workers, :class:`bench.graph.PeakTreeRss`); the peer runs before Spark starts,
so its peak is this process alone. recall@K of the approximate index against exact on ``--recall-users`` users,
for the configured nprobe and a small sweep, on the clustered vectors and on uniform ones (a pessimistic
bound: no structure for the cells to exploit). Writes ``bench/results/recommend-<date>.json``.

    python -m bench.recommend [--users 100000,1000000] [--items 100000] [--k 10] [--repeats 3]
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
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from bench import bench_date, save_results
from bench.graph import parse_sizes, timed
from socialrec.config import load_config
from socialrec.logs import configure_logging
from socialrec.recommend.index import build_index, random_unit_vectors, recall_at_k, search_topk, serialize
from socialrec.recommend.scoring import ScoringPayload, model_scores

logger = logging.getLogger("bench.recommend")
SEED = 20261123
CENTRES = 256
NOISE = 0.08  # per-dimension std of the noise around a centre (norm ~0.64 at dim 64)
CHUNK = 100_000
BATCH = 2048


def clustered_unit_vectors(n: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """``n`` unit vectors near random ``centres`` (seeded; the same ``seed`` gives the same vectors)."""
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(0, NOISE, (n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def user_chunks(n: int, dim: int, centres: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The user vectors as (first id, vectors) chunks of 100k: the peer and Parquet see the same vectors."""
    return [(s, clustered_unit_vectors(min(CHUNK, n - s), dim, SEED + 1 + s // CHUNK, centres)) for s in range(0, n, CHUNK)]


def write_users(chunks: list[tuple[int, np.ndarray]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for start, vecs in chunks:
        ids = pa.array([f"u{start + i:09d}" for i in range(len(vecs))])
        flat = pa.array(vecs.reshape(-1), type=pa.float32())
        lists = pa.ListArray.from_arrays(pa.array(np.arange(0, vecs.size + 1, vecs.shape[1], dtype=np.int32)), flat)
        pq.write_table(pa.table({"user_id": ids, "user_vector": lists}), out / f"part-{start // CHUNK:05d}.parquet")


def summarise(runs: list[dict[str, float]], users: int) -> dict[str, Any]:
    median = statistics.median(r["s"] for r in runs)
    return {
        "users_scored": users,
        "median_s": round(median, 2),
        "runs_s": [round(r["s"], 2) for r in runs],
        "users_per_s": round(users / median),
        "peak_tree_rss_mib": round(max(r["peak_tree_mib"] for r in runs)),
        "peak_jvm_rss_mib": round(max(r["peak_jvm_mib"] for r in runs)),
    }


def peer(index: Any, items: np.ndarray, chunks: list[tuple[int, np.ndarray]], k: int, limit: int) -> int:
    """Score ``limit`` users in this process; returns the users scored."""
    done = 0
    for _, vecs in chunks:
        for s in range(0, len(vecs), BATCH):
            if done >= limit:
                return done
            batch = vecs[s : min(s + BATCH, len(vecs), s + limit - done)]
            search_topk(index, items, batch, k)
            done += len(batch)
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", default="100000,1000000", help="comma-separated user counts (100k, 1M allowed)")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--exact-max-users", type=int, default=100_000, help="exact runs score at most this many users")
    ap.add_argument("--recall-users", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--driver-memory", default="4g")
    args = ap.parse_args()
    sizes = parse_sizes(args.users)
    configure_logging("WARNING")
    import faiss

    root = Path(tempfile.mkdtemp(prefix="socialrec-bench-recommend-"))
    rng = np.random.default_rng(SEED)
    centres = rng.standard_normal((CENTRES, args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    items = clustered_unit_vectors(args.items, args.dim, SEED, centres)
    t0 = time.perf_counter()
    indexes = {
        "exact": build_index(items, "exact"),
        "ivf": build_index(items, "ivf", nlist=args.nlist, nprobe=args.nprobe),
    }
    build_s = round(time.perf_counter() - t0, 2)
    results: dict[str, Any] = {
        "benchmark": "recommend",
        "date": bench_date(),
        "command": "python -m bench.recommend " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "cores": psutil.cpu_count(),
        "faiss": faiss.__version__,
        "params": {"items": args.items, "dim": args.dim, "k": args.k, "nlist": args.nlist, "nprobe": args.nprobe,
                   "centres": CENTRES, "noise_std": NOISE, "batch": BATCH},
        "index_build_s": build_s,
        "load_avg_before": os.getloadavg()[0],
        "sizes": {},
    }
    # recall of the approximate index against exact (sample of users; same for every size: same distribution)
    sample = clustered_unit_vectors(args.recall_users, args.dim, SEED + 999, centres)
    _, exact_ids = indexes["exact"].search(sample, args.k)
    sweep = {}
    for nprobe in sorted({4, args.nprobe, 64}):
        ivf = indexes["ivf"]
        ivf.nprobe = nprobe
        t1 = time.perf_counter()
        _, approx_ids = ivf.search(sample, args.k)
        sweep[str(nprobe)] = {"recall_at_k": round(recall_at_k(exact_ids, approx_ids), 4),
                              "users_per_s_2_threads": round(len(sample) / (time.perf_counter() - t1))}
    indexes["ivf"].nprobe = args.nprobe
    # The same on structureless uniform vectors (no clusters): a pessimistic bound for IVF.
    uniform_items = random_unit_vectors(args.items, args.dim, SEED + 5)
    uniform_users = random_unit_vectors(args.recall_users, args.dim, SEED + 6)
    _, uniform_exact = build_index(uniform_items, "exact").search(uniform_users, args.k)
    uniform_ivf = build_index(uniform_items, "ivf", nlist=args.nlist, nprobe=args.nprobe)
    uniform = {}
    for nprobe in sorted({4, args.nprobe, 64}):
        uniform_ivf.nprobe = nprobe
        uniform[str(nprobe)] = round(recall_at_k(uniform_exact, uniform_ivf.search(uniform_users, args.k)[1]), 4)
    del uniform_items, uniform_ivf
    results["ivf_recall_vs_exact"] = {"users": args.recall_users, "k": args.k, "by_nprobe": sweep,
                                      "uniform_vectors_by_nprobe": uniform}
    logger.warning("ivf recall@%d vs exact: clustered %s; uniform %s", args.k, sweep, uniform)

    # peer: numpy + faiss in this process, 2 threads, before any JVM exists
    faiss.omp_set_num_threads(2)
    data: dict[int, list[tuple[int, np.ndarray]]] = {}
    for n in sizes:
        t1 = time.perf_counter()
        data[n] = user_chunks(n, args.dim, centres)
        write_users(data[n], root / f"u{n}")
        logger.warning("generated %d users in %.1f s", n, time.perf_counter() - t1)
        res: dict[str, Any] = {"peer": {}, "spark": {}}
        for kind, index in indexes.items():
            limit = min(n, args.exact_max_users) if kind == "exact" else n
            runs = [timed(lambda index=index, limit=limit, n=n: peer(index, items, data[n], args.k, limit))
                    for _ in range(args.repeats)]
            res["peer"][kind] = summarise(runs, limit)
            logger.warning("peer %s %d users: %s", kind, limit, res["peer"][kind])
        results["sizes"][str(n)] = res
    data.clear()

    # spark: the pipeline's per-partition scoring function
    from pyspark.sql import functions as F

    from socialrec.spark import build_spark

    cfg = load_config("local", {"paths.root": str(root / "var"), "spark.driver_memory": args.driver_memory,
                                "logging.to_file": False})
    spark = build_spark(cfg)
    results["spark"] = spark.version
    try:
        partitions = 2 * spark.sparkContext.defaultParallelism
        for kind, index in indexes.items():
            payload = ScoringPayload(index=serialize(index), item_vectors=items, model=None, k=args.k, batch_size=BATCH,
                                     threads=1, nprobe=args.nprobe)
            bc = spark.sparkContext.broadcast(payload)
            for n in sizes:
                limit = min(n, args.exact_max_users) if kind == "exact" else n
                users = spark.read.parquet(str(root / f"u{n}"))
                if limit < n:
                    users = users.where(F.col("user_id") < F.lit(f"u{limit:09d}"))

                def run(users: Any = users, label: str = f"{kind} {n:,}", bc: Any = bc) -> None:
                    spark.sparkContext.setJobDescription(f"bench.recommend: {label}")
                    model_scores(users, bc, partitions).write.format("noop").mode("overwrite").save()

                run()  # warm-up (not timed): Python workers start and load the broadcast once
                runs = [timed(run) for _ in range(args.repeats)]
                results["sizes"][str(n)]["spark"][kind] = {**summarise(runs, limit), "partitions": partitions}
                logger.warning("spark %s %d users: %s", kind, limit, results["sizes"][str(n)]["spark"][kind])
            bc.unpersist()
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    results["load_avg_after"] = os.getloadavg()[0]
    out = save_results("recommend", results)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"recommend: top-{args.k} of {args.items:,} items, dim {args.dim}, median of {args.repeats}")
    for col in ("users", "index", "engine", "users scored", "median s", "users/s", "peak tree MiB"):
        table.add_column(col, justify="right")
    for size, res in results["sizes"].items():
        for engine in ("peer", "spark"):
            for kind, m in res[engine].items():
                table.add_row(f"{int(size):,}", kind, engine, f"{m['users_scored']:,}", f"{m['median_s']:.1f}",
                              f"{m['users_per_s']:,}", str(m["peak_tree_rss_mib"]))
    console = Console(width=max(120, Console().width))
    console.print(table)
    console.print(f"ivf recall@{args.k} vs exact by nprobe: clustered {sweep}; uniform {uniform}")
    console.print(f"written {out}")


if __name__ == "__main__":
    main()
