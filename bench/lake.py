"""Lake benchmark: the two delta-rs write paths side by side on the same data.

For N rows (default 1M) and each write path (arrow = collect to the driver; staged = executors write
Parquet, the driver commits metadata): write, read-back, merge (200k upserts: half updates, half inserts)
and delete, each the median of R runs (default 5), with the growth of the Python driver's RSS over its value at the start of the operation and the peak RSS of
the JVM during the operation. Writes ``bench/results/lake-<date>.json``.

    python -m bench.lake [--rows 1000000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bench import bench_date, save_results
from socialrec.config import load_config
from socialrec.lake import Lake
from socialrec.lake.delta_rs import DeltaRsEngine
from socialrec.logs import configure_logging
from socialrec.schema.tables import SILVER_EVENTS
from socialrec.spark import build_spark

logger = logging.getLogger("bench.lake")


class PeakRss:
    """Samples the RSS of this process and of its children (the JVM) every 20 ms."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.driver_start = self.proc.memory_info().rss
        self.driver = 0
        self.jvm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.driver = max(self.driver, self.proc.memory_info().rss)
            jvm = 0
            for c in self.proc.children(recursive=True):
                # A child can exit between the listing and the read (the 2026-11-25 run lost this thread so).
                try:
                    jvm += c.memory_info().rss if "java" in c.name() else 0
                except psutil.Error:
                    continue
            self.jvm = max(self.jvm, jvm)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def events_frame(spark: SparkSession, start: int, rows: int, batch: str) -> DataFrame:
    """Synthetic silver.events rows (ids ``e<start..start+rows>``), deterministic."""
    return spark.range(start, start + rows).select(
        F.concat(F.lit("e"), F.col("id").cast("string")).alias("event_id"),
        F.concat(F.lit("u"), (F.col("id") % 50_000).cast("string")).alias("user_id"),
        F.concat(F.lit("i"), (F.col("id") % 20_000).cast("string")).alias("item_id"),
        F.element_at(F.array(*[F.lit(t) for t in ("view", "click", "cart", "purchase")]),
                     (F.col("id") % 4 + 1).cast("int")).alias("event_type"),
        (F.col("id") % 5).cast("double").alias("value"),
        F.timestamp_seconds(F.lit(1_700_000_000) + F.col("id")).alias("ts"),
        F.lit("bench").alias("source"),
        F.lit(batch).alias("batch_id"),
    )


def timed(fn: Callable[[], Any]) -> tuple[float, int, int]:
    with PeakRss() as peak:
        t0 = time.perf_counter()
        fn()
        secs = time.perf_counter() - t0
    # Growth of the driver over its RSS when the operation began: what the operation itself needed.
    return secs, max(0, peak.driver - peak.driver_start), peak.jvm


def bench_path(spark: SparkSession, cfg: Any, path: str, rows: int, repeats: int, root: Path) -> dict[str, Any]:
    # Materialise the inputs once, so every path measures the lake, not the generation of the data.
    src = events_frame(spark, 0, rows, "b1").cache()
    upserts = events_frame(spark, rows - 100_000, 200_000, "b2").cache()
    src.count()
    upserts.count()
    out: dict[str, list[tuple[float, int, int]]] = {"write": [], "read": [], "merge": [], "delete": []}
    for r in range(repeats):
        cfg_r = cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"lake": str(root / f"{path}-{r}")})})
        lake = Lake(spark, cfg_r, DeltaRsEngine(spark, write_path=path))  # type: ignore[arg-type]
        lake.ensure(SILVER_EVENTS)
        out["write"].append(timed(lambda lake=lake: lake.append(src, SILVER_EVENTS)))
        out["read"].append(
            timed(lambda lake=lake: lake.read(SILVER_EVENTS).agg(F.sum(F.length("event_id")), F.sum("value")).collect())
        )
        out["merge"].append(timed(lambda lake=lake: lake.merge(upserts, SILVER_EVENTS)))
        out["delete"].append(timed(lambda lake=lake: lake.delete(SILVER_EVENTS, "event_type = 'view'")))
        n = lake.read(SILVER_EVENTS).count()
        expected = rows + 100_000 - (rows + 100_000) // 4
        if n != expected:
            raise AssertionError(f"{path}: {n} rows after the benchmark, expected {expected}")
        shutil.rmtree(root / f"{path}-{r}", ignore_errors=True)
    src.unpersist()
    upserts.unpersist()
    summary: dict[str, Any] = {}
    for op, runs in out.items():
        summary[op] = {
            "median_s": round(statistics.median(s for s, _, _ in runs), 3),
            "runs_s": [round(s, 3) for s, _, _ in runs],
            "peak_driver_growth_mib": round(max(d for _, d, _ in runs) / 2**20),
            "peak_jvm_rss_mib": round(max(j for _, _, j in runs) / 2**20),
        }
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    configure_logging("WARNING")
    root = Path(tempfile.mkdtemp(prefix="socialrec-bench-"))
    cfg = load_config("local", {"paths.root": str(root / "var"), "spark.driver_memory": "6g"})
    spark = build_spark(cfg)
    results = {
        "benchmark": "lake",
        "date": bench_date(),
        "rows": args.rows,
        "repeats": args.repeats,
        "spark": spark.version,
        "cores": psutil.cpu_count(),
        "paths": {},
    }
    for path in ("arrow", "staged"):
        results["paths"][path] = bench_path(spark, cfg, path, args.rows, args.repeats, root)
    a, s = results["paths"]["arrow"], results["paths"]["staged"]
    results["staged_over_arrow_time"] = {op: round(s[op]["median_s"] / a[op]["median_s"], 2) for op in a}
    spark.stop()
    shutil.rmtree(root, ignore_errors=True)

    out = save_results("lake", results)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"delta-rs write paths, {args.rows:,} rows, median of {args.repeats}")
    for col in ("path", "op", "median s", "runs s", "driver growth MiB", "peak JVM MiB"):
        table.add_column(col)
    for path, ops in results["paths"].items():
        for op, m in ops.items():
            table.add_row(path, op, f"{m['median_s']:.2f}", " ".join(f"{x:.2f}" for x in m["runs_s"]),
                          str(m["peak_driver_growth_mib"]), str(m["peak_jvm_rss_mib"]))
    console = Console()
    console.print(table)
    console.print(f"staged / arrow time ratio: {results['staged_over_arrow_time']}")
    console.print(f"written {out}")


if __name__ == "__main__":
    main()
