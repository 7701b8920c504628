"""The whole pipeline in one Spark session (``make run``): every stage that exists, in order."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql import SparkSession
from rich.console import Console

from socialrec.config import AppConfig
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


def run(spark: SparkSession, cfg: AppConfig, only: list[str] | None = None) -> dict[str, float]:
    """Run the stages (or ``only`` those named); returns seconds per stage."""
    timings: dict[str, float] = {}
    for name, stage in STAGES:
        if only and name not in only:
            continue
        logger.info("stage %s ...", name)
        spark.sparkContext.setJobDescription(f"socialrec: {name}")
        t0 = time.perf_counter()
        stage(spark, cfg)
        timings[name] = time.perf_counter() - t0
        logger.info("stage %s done in %.1fs", name, timings[name])
    return timings


def locations(cfg: AppConfig) -> dict[str, str]:
    """Where this run's outputs live."""
    return {
        "lake": cfg.resolve(cfg.paths.lake_dir()),
        "mlflow": cfg.resolve(cfg.paths.mlflow_dir()),
        "logs": cfg.resolve(cfg.paths.logs_dir()),
    }
