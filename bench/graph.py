"""Graph benchmark: neighbourhood sampling and social proof on synthetic power-law graphs.

For each size E (default 1M and 10M edges) a graph is generated in Spark once, in the gold.social_graph
shape: ``U = E / 20`` users, both endpoints drawn from a power law (``floor(U * x**2)``, degree tail
exponent ~3) and mapped through two different affine permutations, so out-hubs and in-hubs are different
users (as followers vs celebrities); duplicates and self-loops are removed; strengths uniform in [1, 3);
ids are 64-hex strings like the real pseudonyms. With it, ``E`` synthetic events (80% purchases, 10% likes,
10% ratings; active users and popular items power-law, ``U / 2`` items) and ``E / 10`` reviews. All inputs are
written to Parquet first (not timed). Then, per repeat:

* **sampling**: :func:`socialrec.graph.sample_social_neighbourhoods` (k1 = k2 = 20, hub_cap = 200, the
  defaults) written to Parquet;
* **social proof**: :func:`socialrec.graph.social_proof` over the hop-1 rows just written, run to the end
  into Spark's ``noop`` sink: its output is ~15 rows per edge (every item any sampled neighbour touched),
  ~150M rows and tens of GB at 10M edges, so writing it would mostly measure the disk.

Figures: median seconds of the repeats, and the peak RSS of the whole process tree (this driver + the JVM
+ Python workers) sampled every 50 ms during the step, plus the JVM's own peak. The 10M/1M ratios say how
close to linear the steps are (target: <= 12x for 10x the edges). Writes ``bench/results/graph-<date>.json``.

    python -m bench.graph [--edges 1000000,10000000] [--repeats 3] [--driver-memory 6g]
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from bench import bench_date, save_results
from socialrec.config import load_config
from socialrec.graph import hash_uniform, sample_social_neighbourhoods, social_proof
from socialrec.logs import configure_logging
from socialrec.schema.tables import GOLD_SOCIAL_GRAPH, SILVER_EVENTS, SILVER_REVIEWS
from socialrec.spark import build_spark

logger = logging.getLogger("bench.graph")
SEED = 20261123
K1, K2, HUB_CAP, TOP_N = 20, 20, 200, 3
CUTOFF = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


class PeakTreeRss:
    """Peak RSS of this process plus all its descendants (JVM, Python workers), and of the JVM alone."""

    def __init__(self, interval: float = 0.05) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.total = 0
        self.jvm = 0
        self.by_process: dict[str, int] = {}  # "name:pid" -> its peak RSS, to say who the tree's memory is
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        total = self.proc.memory_info().rss
        self._note("self", self.proc.pid, total)
        jvm = 0
        for child in self.proc.children(recursive=True):
            try:
                rss = child.memory_info().rss
                name = child.name()
            except psutil.Error:
                continue
            total += rss
            self._note(name, child.pid, rss)
            if "java" in name:
                jvm += rss
        self.total = max(self.total, total)
        self.jvm = max(self.jvm, jvm)

    def _note(self, name: str, pid: int, rss: int) -> None:
        key = f"{name}:{pid}"
        self.by_process[key] = max(self.by_process.get(key, 0), rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self) -> PeakTreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _coprime_multiplier(n: int, start: int) -> int:
    a = start
    while math.gcd(a, n) != 1:
        a += 1
    return a


def _power_law_index(seed: int, salt: str, row: Column, n: int, exponent: float) -> Column:
    """``floor(n * x**exponent)`` for x uniform from a hash: index 0 is the most frequent."""
    x = hash_uniform(seed, F.lit(salt), row)
    return F.least(F.floor(F.lit(float(n)) * F.pow(x, exponent)).cast("long"), F.lit(n - 1))


def _permuted_id(index: Column, n: int, multiplier: int, offset: int, prefix: str, pseudonym: bool = True) -> Column:
    """The id of ``(index * multiplier + offset) mod n`` (a bijection when gcd(multiplier, n) = 1): a 64-hex
    string like a user pseudonym, or ``<prefix><n>`` like an item id (items are not pseudonymised)."""
    a = _coprime_multiplier(n, multiplier)
    perm = F.concat(F.lit(prefix), F.pmod(index * F.lit(a) + F.lit(offset), F.lit(n)).cast("string"))
    return F.sha2(perm, 256) if pseudonym else perm


def synthetic_graph(spark: SparkSession, edges: int, seed: int = SEED) -> DataFrame:
    """A power-law social graph in the gold.social_graph shape (see the module docstring)."""
    users = max(100, edges // 20)
    row = F.col("id")
    src = _permuted_id(_power_law_index(seed, "src", row, users, 2.0), users, 1_000_003, 17, "u")
    dst = _permuted_id(_power_law_index(seed, "dst", row, users, 2.0), users, 7_000_003, 91, "u")
    return (
        spark.range(edges)
        .select(src.alias("src_user_id"), dst.alias("dst_user_id"),
                (F.lit(1.0) + F.lit(2.0) * hash_uniform(seed, F.lit("w"), row)).alias("strength"))
        .where(F.col("src_user_id") != F.col("dst_user_id"))
        .groupBy("src_user_id", "dst_user_id")
        .agg(F.max("strength").alias("strength"))
        .select("src_user_id", "dst_user_id", "strength", F.array(F.lit("follow")).alias("relations"),
                F.lit("bench").alias("source"))
    )


def synthetic_events(spark: SparkSession, n: int, users: int, seed: int = SEED) -> DataFrame:
    """``n`` silver.events rows: purchases, likes, ratings by power-law users on power-law items."""
    items = max(50, users // 2)
    row = F.col("id")
    kind = hash_uniform(seed, F.lit("type"), row)
    start = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
    return spark.range(n).select(
        F.concat(F.lit("e"), row.cast("string")).alias("event_id"),
        _permuted_id(_power_law_index(seed, "eu", row, users, 1.5), users, 1_000_003, 17, "u").alias("user_id"),
        _permuted_id(_power_law_index(seed, "ei", row, items, 2.0), items, 3_000_017, 5, "bench:i", False).alias("item_id"),
        F.when(kind < 0.8, "purchase").when(kind < 0.9, "like").otherwise("rating").alias("event_type"),
        F.when(kind >= 0.9, F.lit(4.0)).alias("value"),
        F.timestamp_seconds(F.lit(start) + (hash_uniform(seed, F.lit("ts"), row) * 31_536_000).cast("long")).alias("ts"),
        F.lit("bench").alias("source"),
        F.lit("b1").alias("batch_id"),
    )


def synthetic_reviews(spark: SparkSession, n: int, users: int, seed: int = SEED) -> DataFrame:
    """``n`` silver.reviews rows on the same users and items as the events."""
    items = max(50, users // 2)
    row = F.col("id")
    start = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
    return spark.range(n).select(
        F.concat(F.lit("r"), row.cast("string")).alias("review_id"),
        _permuted_id(_power_law_index(seed, "ru", row, users, 1.5), users, 1_000_003, 17, "u").alias("user_id"),
        _permuted_id(_power_law_index(seed, "ri", row, items, 2.0), items, 3_000_017, 5, "bench:i", False).alias("item_id"),
        F.lit(4.0).alias("rating"), F.lit("ok").alias("text"), F.lit(0.0).alias("helpfulness"),
        F.timestamp_seconds(F.lit(start) + (hash_uniform(seed, F.lit("rts"), row) * 31_536_000).cast("long")).alias("ts"),
        F.lit("bench").alias("source"),
        F.lit("b1").alias("batch_id"),
    )


def timed(fn: Callable[[], Any]) -> dict[str, Any]:
    with PeakTreeRss() as peak:
        t0 = time.perf_counter()
        fn()
        secs = time.perf_counter() - t0
    top = sorted(peak.by_process.items(), key=lambda kv: -kv[1])[:6]
    return {"s": secs, "peak_tree_mib": peak.total / 2**20, "peak_jvm_mib": peak.jvm / 2**20,
            "peak_by_process_mib": {k: round(v / 2**20) for k, v in top}}


def bench_size(spark: SparkSession, edges: int, repeats: int, root: Path) -> dict[str, Any]:
    users = max(100, edges // 20)
    d = root / f"e{edges}"
    spark.sparkContext.setJobDescription(f"bench.graph: generate {edges:,} edges")
    t0 = time.perf_counter()
    synthetic_graph(spark, edges).write.mode("overwrite").parquet(str(d / "graph"))
    synthetic_events(spark, edges, users).write.mode("overwrite").parquet(str(d / "events"))
    synthetic_reviews(spark, edges // 10, users).write.mode("overwrite").parquet(str(d / "reviews"))
    graph = spark.read.schema(GOLD_SOCIAL_GRAPH.schema).parquet(str(d / "graph"))
    events = spark.read.schema(SILVER_EVENTS.schema).parquet(str(d / "events"))
    reviews = spark.read.schema(SILVER_REVIEWS.schema).parquet(str(d / "reviews"))
    degrees = graph.groupBy("src_user_id").count().agg(F.count(F.lit(1)), F.max("count")).first()
    in_max = graph.groupBy("dst_user_id").count().agg(F.max("count")).first()
    info: dict[str, Any] = {
        "edges_requested": edges,
        "edges": graph.count(),
        "users_with_out_edges": degrees[0] if degrees else 0,
        "max_out_degree": degrees[1] if degrees else 0,
        "max_in_degree": in_max[0] if in_max else 0,
        "events": events.count(),
        "reviews": reviews.count(),
        "generate_s": round(time.perf_counter() - t0, 1),
    }
    logger.warning("generated %s", info)
    runs: dict[str, list[dict[str, Any]]] = {"sampling": [], "social_proof": []}
    for r in range(repeats):
        out = d / f"run{r}"

        def sample(out: Path = out) -> None:
            spark.sparkContext.setJobDescription(f"bench.graph: sampling {edges:,}")
            sample_social_neighbourhoods(graph, K1, K2, HUB_CAP, SEED).write.mode("overwrite").parquet(str(out / "hoods"))

        def proof(out: Path = out) -> None:
            spark.sparkContext.setJobDescription(f"bench.graph: social proof {edges:,}")
            hop1 = spark.read.parquet(str(out / "hoods")).where("hop = 1")
            social_proof(hop1, events, reviews, CUTOFF, TOP_N).write.format("noop").mode("overwrite").save()

        runs["sampling"].append(timed(sample))
        runs["social_proof"].append(timed(proof))
        if r == 0:
            hoods = spark.read.parquet(str(out / "hoods"))
            by_hop = {row["hop"]: row["count"] for row in hoods.groupBy("hop").count().collect()}
            info["hop1_rows"], info["hop2_rows"] = by_hop.get(1, 0), by_hop.get(2, 0)
            hop1 = spark.read.parquet(str(out / "hoods")).where("hop = 1")
            info["proof_rows"] = social_proof(hop1, events, reviews, CUTOFF, TOP_N).count()
        logger.warning("%d edges, repeat %d: sampling %.1f s, social proof %.1f s", edges, r + 1,
                       runs["sampling"][-1]["s"], runs["social_proof"][-1]["s"])
        shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(d, ignore_errors=True)
    steps = {}
    for step, rs in runs.items():
        steps[step] = {
            "median_s": round(statistics.median(x["s"] for x in rs), 2),
            "runs_s": [round(x["s"], 2) for x in rs],
            "peak_tree_rss_mib": round(max(x["peak_tree_mib"] for x in rs)),
            "peak_jvm_rss_mib": round(max(x["peak_jvm_mib"] for x in rs)),
            # Per process, from the repeat with the highest tree peak (each process's own peak in it).
            "peak_by_process_mib": max(rs, key=lambda x: x["peak_tree_mib"])["peak_by_process_mib"],
        }
    return {"data": info, "steps": steps}


def parse_sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        p = part.strip().lower()
        mult = 1_000_000 if p.endswith("m") else 1_000 if p.endswith("k") else 1
        out.append(int(float(p.rstrip("mk")) * mult))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", default="1000000,10000000", help="comma-separated sizes (100k, 1M allowed)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--driver-memory", default="6g")
    ap.add_argument("--shuffle-partitions", type=int, default=0,
                    help="0 = max(8, edges / 250k) per size (AQE coalesces small ones)")
    ap.add_argument("--event-log", action="store_true",
                    help="Spark event log under var/bench/graph/event-logs (read it with python -m bench.eventlog)")
    args = ap.parse_args()
    sizes = parse_sizes(args.edges)
    configure_logging("WARNING")
    root = Path(tempfile.mkdtemp(prefix="socialrec-bench-graph-"))
    sets: dict[str, Any] = {"paths.root": str(root / "var"), "spark.driver_memory": args.driver_memory}
    if args.event_log:
        logs = Path("var/bench/graph/event-logs").resolve()
        logs.mkdir(parents=True, exist_ok=True)
        sets["spark.conf"] = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file://{logs}"}
    cfg = load_config("local", sets)
    spark = build_spark(cfg)
    results: dict[str, Any] = {
        "benchmark": "graph",
        "date": bench_date(),
        "command": "python -m bench.graph " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "spark": spark.version,
        "cores": psutil.cpu_count(),
        "driver_memory": args.driver_memory,
        "params": {"k1": K1, "k2": K2, "hub_cap": HUB_CAP, "top_n": TOP_N, "seed": SEED},
        "load_avg_before": os.getloadavg()[0],
        "sizes": {},
    }
    try:
        for edges in sizes:
            parts = args.shuffle_partitions or max(8, edges // 250_000)
            spark.conf.set("spark.sql.shuffle.partitions", str(parts))
            res = bench_size(spark, edges, args.repeats, root)
            res["shuffle_partitions"] = parts
            results["sizes"][str(edges)] = res
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    results["load_avg_after"] = os.getloadavg()[0]
    if len(sizes) >= 2:
        small, large = str(min(sizes)), str(max(sizes))
        s, lg = results["sizes"][small]["steps"], results["sizes"][large]["steps"]
        results["ratio"] = {
            "sizes": f"{large}/{small}",
            "edges": round(results["sizes"][large]["data"]["edges"] / results["sizes"][small]["data"]["edges"], 2),
            **{f"{step}_time": round(lg[step]["median_s"] / s[step]["median_s"], 2) for step in s},
            **{f"{step}_peak_rss": round(lg[step]["peak_tree_rss_mib"] / s[step]["peak_tree_rss_mib"], 2) for step in s},
        }

    out = save_results("graph", results)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"graph: sampling and social proof, median of {args.repeats}")
    for col in ("edges", "step", "median s", "runs s", "peak tree MiB", "peak JVM MiB", "output rows"):
        table.add_column(col, justify="right")
    for size, res in results["sizes"].items():
        for step, m in res["steps"].items():
            rows = (res["data"].get("hop1_rows", 0) + res["data"].get("hop2_rows", 0)) if step == "sampling" \
                else res["data"].get("proof_rows", 0)
            table.add_row(f"{int(size):,}", step, f"{m['median_s']:.1f}", " ".join(f"{x:.1f}" for x in m["runs_s"]),
                          str(m["peak_tree_rss_mib"]), str(m["peak_jvm_rss_mib"]), f"{rows:,}")
    console = Console(width=max(120, Console().width))
    console.print(table)
    if "ratio" in results:
        console.print(f"ratios {results['ratio']}")
    console.print(f"written {out}")


if __name__ == "__main__":
    main()
