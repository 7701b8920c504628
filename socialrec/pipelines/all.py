"""The whole pipeline in one Spark session (``make run``): every stage that exists, in order."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql import SparkSession
from rich.console import Console
from rich.table import Table

from socialrec.config import AppConfig
from socialrec.errors import SocialrecError
from socialrec.lake import Lake
from socialrec.logs import progress
from socialrec.pipelines import (
    clean,
    embeddings,
    evaluate,
    examples,
    features,
    graph,
    ingest,
    lake_init,
    recommend,
    train,
)
from socialrec.pipelines.report import print_audit
from socialrec.schema.tables import all_tables
from socialrec.spark import spark_progress

logger = logging.getLogger(__name__)

Stage = tuple[str, Callable[[SparkSession, AppConfig], Any]]

def _clean_and_report(spark: SparkSession, cfg: AppConfig) -> Any:
    audits = clean.run(spark, cfg)
    print_audit(audits)
    return audits


def _train_and_report(spark: SparkSession, cfg: AppConfig) -> Any:
    summary = train.run(spark, cfg)
    train.print_summary(summary, Console())
    return summary


def _recommend_and_report(spark: SparkSession, cfg: AppConfig) -> Any:
    summary = recommend.run(spark, cfg)
    recommend.print_examples(summary, Console())
    return summary


def _evaluate_and_report(spark: SparkSession, cfg: AppConfig) -> Any:
    summary = evaluate.run(spark, cfg)
    evaluate.print_summary(summary, Console())
    return summary


STAGES: list[Stage] = [
    ("init_lake", lake_init.run),
    ("ingest", ingest.run),
    ("clean", _clean_and_report),
    ("embeddings", embeddings.run),
    ("graph", graph.run),
    ("features", features.run),
    ("examples", examples.run),
    ("train", _train_and_report),
    ("recommend", _recommend_and_report),
    ("evaluate", _evaluate_and_report),
]


def run(spark: SparkSession, cfg: AppConfig, only: list[str] | None = None,
        results: dict[str, Any] | None = None) -> dict[str, float]:
    """Run the stages (or ``only`` those named); returns seconds per stage (``results`` gets what each returned).

    A failing stage is logged with what to do next: every stage is idempotent and resumes, so rerunning the same
    command after fixing the cause finishes the run.
    """
    timings: dict[str, float] = {}
    names = [name for name, _ in STAGES]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise SocialrecError(f"unknown stage(s) {unknown}: the stages are {names}")
    selected = [(name, stage) for name, stage in STAGES if not only or name in only]
    with progress() as bar:
        task = bar.add_task("pipeline", total=len(selected))
        for name, stage in selected:
            bar.update(task, description=f"stage {name}")
            _run_stage(spark, cfg, name, stage, timings, results)
            bar.advance(task)
    return timings


def _run_stage(spark: SparkSession, cfg: AppConfig, name: str, stage: Callable[[SparkSession, AppConfig], Any],
               timings: dict[str, float], results: dict[str, Any] | None) -> None:
    """One stage, timed, named in the Spark UI; a failure says how to resume."""
    logger.info("stage %s ...", name)
    spark.sparkContext.setJobDescription(f"socialrec: {name}")
    t0 = time.perf_counter()
    try:
        with spark_progress(spark, f"stage {name}"):
            out = stage(spark, cfg)
    except Exception:
        logger.error("stage %s failed after %.1fs. Fix the cause above, then rerun the same command: finished "
                     "stages are idempotent and this one resumes (or run it alone: --only %s)",
                     name, time.perf_counter() - t0, name)
        raise
    finally:
        spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]
    timings[name] = time.perf_counter() - t0
    if results is not None:
        results[name] = out
    logger.info("stage %s done in %.1fs", name, timings[name])


def table_versions(lake: Lake) -> dict[str, int]:
    """Current version of every existing table (from the logs: no data read)."""
    return {spec.qualified_name: lake.version(spec) for spec in all_tables() if lake.exists(spec)}


def print_run_summary(console: Console, cfg: AppConfig, lake: Lake, before: dict[str, int], timings: dict[str, float],
                      results: dict[str, Any]) -> None:
    """One screen at the end of a run: tables written (rows, version), MLflow runs, time per stage, where."""
    table = Table(title="tables written by this run", title_justify="left")
    for col in ("table", "rows", "version"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for spec in all_tables():
        name = spec.qualified_name
        if not lake.exists(spec):
            continue
        version = lake.version(spec)
        if before.get(name, -1) == version:
            continue
        rows = lake.row_count(spec)
        table.add_row(name, "?" if rows is None else f"{rows:,}", f"v{before.get(name, -1) + 1}..v{version}"
                      if before.get(name, -1) + 1 < version else f"v{version}")
    console.print(table)
    stages = Table(title="time per stage", title_justify="left")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    for stage, secs in timings.items():
        stages.add_row(stage, f"{secs:.1f}")
    stages.add_row("total", f"{sum(timings.values()):.1f}")
    console.print(stages)
    from socialrec.training.tracking import tracking_uri

    for stage in ("train", "evaluate"):
        run_id = (results.get(stage) or {}).get("run_id") if isinstance(results.get(stage), dict) else None
        if run_id:
            console.print(f"  MLflow {stage} run: {run_id} (store {tracking_uri(cfg)}; browse with `make mlflow-ui`)")
    report = (results.get("evaluate") or {}).get("report") if isinstance(results.get("evaluate"), dict) else None
    if report:
        console.print(f"  evaluation report: {report}")
    for what, where in locations(cfg).items():
        console.print(f"  {what:<7} {where}")


def locations(cfg: AppConfig) -> dict[str, str]:
    """Where this run's outputs live."""
    return {
        "lake": cfg.resolve(cfg.paths.lake_dir()),
        "mlflow": cfg.resolve(cfg.paths.mlflow_dir()),
        "logs": cfg.resolve(cfg.paths.logs_dir()),
    }
