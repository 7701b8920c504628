"""The one place that builds the SparkSession.

Builder-in / builder-out helpers (like Delta's ``configure_spark_with_delta_pip``) are composed by
:func:`build_spark`; only jobs and the test fixture call it. No session exists at import time.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from socialrec.config import AppConfig

logger = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def delta_jars(cfg: AppConfig) -> list[str]:
    """Delta JVM jars that ``make setup`` resolved into ``spark.jars_dir`` (empty when Maven was unreachable)."""
    if not cfg.spark.jars_dir:
        return []
    d = Path(cfg.resolve(cfg.spark.jars_dir))
    return sorted(str(p) for p in d.glob("delta-*.jar")) if d.is_dir() else []


def wants_delta_extension(cfg: AppConfig) -> bool:
    """Whether to configure the Delta extension and catalog before the session starts.

    Setting them when the classes are absent breaks the session catalog, so ``auto`` only does so when the
    jars are present or the delta-spark engine is demanded explicitly (a cluster image that ships Delta).
    """
    mode = cfg.spark.delta_extension
    if mode != "auto":
        return mode == "on"
    return bool(delta_jars(cfg)) or cfg.lake.engine == "delta-spark"


def configure_python(builder: SparkSession.Builder) -> SparkSession.Builder:
    """Python workers must run this interpreter (the venv's), or executors miss our packages."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return builder.config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"]).config(
        "spark.pyspark.driver.python", os.environ["PYSPARK_DRIVER_PYTHON"]
    )


def configure_delta(builder: SparkSession.Builder, cfg: AppConfig) -> SparkSession.Builder:
    """Add the Delta jars, extension and catalog when :func:`wants_delta_extension` says so."""
    if not wants_delta_extension(cfg):
        return builder
    jars = delta_jars(cfg)
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    return (
        builder.config("spark.sql.extensions", DELTA_EXTENSION)
        .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        # Tables are shared with the delta-rs engine, which cannot read deletion vectors (STACK.md).
        .config("spark.databricks.delta.properties.defaults.enableDeletionVectors", "false")
        .config("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    )


def local_scratch_dir(tmp: Path, pid: int | None = None) -> Path:
    """``<tmp>/spark-local/pid-<pid>``: the local JVM's scratch space (shuffle and spill files) for process ``pid``
    (this one by default)."""
    return tmp / "spark-local" / f"pid-{os.getpid() if pid is None else pid}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_scratch(tmp: Path) -> list[Path]:
    """Remove the scratch directories of local Spark processes that no longer run; returns them.

    Spark deletes its ``blockmgr-*`` and ``spark-*`` directories only when it stops cleanly. A killed local job
    leaves its shuffle files behind: the 10M-event graph stage stopped with a session left 24 GB, and its rerun
    ran out of disk (2026-11-25). Directories of running processes, this one included, are kept.
    """
    removed = []
    for d in sorted((tmp / "spark-local").glob("pid-*")):
        pid = d.name.removeprefix("pid-")
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    if removed:
        logger.info("removed the Spark scratch space of %d stopped process(es) under %s", len(removed),
                    tmp / "spark-local")
    return removed


def configure_defaults(builder: SparkSession.Builder, cfg: AppConfig) -> SparkSession.Builder:
    """Settings every socialrec session shares, then ``spark.conf`` overrides from config."""
    tmp = Path(cfg.resolve(cfg.paths.tmp_dir()))
    builder = (
        builder.appName(cfg.spark.app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(cfg.spark.shuffle_partitions))
        .config("spark.ui.enabled", str(cfg.spark.ui_enabled).lower())
        # Spark's own "[Stage n: ===> (1 + 1) / 2]" lines garble the log; spark_progress shows the same counts
        # on the shared rich display.
        .config("spark.ui.showConsoleProgress", "false")
        # Delta requires INT64 micros timestamps; Spark's default INT96 is not valid in a Delta table.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.warehouse.dir", str(tmp / "spark-warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={tmp / 'derby'}")
        # Iterative jobs (MLlib ALS) checkpoint to cut their lineage; their files go once nothing refers to them.
        .config("spark.cleaner.referenceTracking.cleanCheckpoints", "true")
    )
    if cfg.env != "cluster":
        # Local runs own the JVM: keep its scratch space under our tmp dir, not /tmp of the whole machine, one
        # directory per process so that a killed run's leftovers can be told from a live one's.
        builder = builder.config("spark.local.dir", str(local_scratch_dir(tmp)))
    if cfg.spark.master:
        builder = builder.master(cfg.spark.master)
    if cfg.spark.driver_memory:
        builder = builder.config("spark.driver.memory", cfg.spark.driver_memory)
    from socialrec.resources import max_result_size

    # An oversized collect is then refused by Spark with its size, not an OutOfMemoryError (socialrec.resources).
    if max_result_size(cfg):
        builder = builder.config("spark.driver.maxResultSize", max_result_size(cfg))
    for key, value in cfg.spark.conf.items():
        builder = builder.config(key, value)
    return builder


def build_spark(cfg: AppConfig) -> SparkSession:
    """Create (or return the running) SparkSession for ``cfg``.

    local/test: ``local[2]`` by default; cluster: the master and resources come from spark-submit.
    """
    tmp = Path(cfg.resolve(cfg.paths.tmp_dir()))
    tmp.mkdir(parents=True, exist_ok=True)
    if cfg.env != "cluster":
        remove_stale_scratch(tmp)
    builder = configure_defaults(SparkSession.builder, cfg)
    builder = configure_python(builder)
    builder = configure_delta(builder, cfg)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN" if cfg.logging.level != "DEBUG" else "INFO")
    logger.info("Spark %s session up (master=%s)", spark.version, spark.sparkContext.master)
    return spark


def delta_spark_loadable(spark: SparkSession) -> bool:
    """True when the Delta session extension class is on this JVM's classpath.

    ``Utils.classIsLoadable`` uses the context class loader that ``spark.jars`` extends; a plain
    ``Class.forName`` gives false negatives, and the ``spark.sql.extensions`` setting proves nothing.
    """
    jvm = spark._jvm  # noqa: SLF001 - py4j is the only route to the JVM classpath
    if jvm is None:  # Spark Connect: no JVM in this process
        return False
    return bool(jvm.org.apache.spark.util.Utils.classIsLoadable(DELTA_EXTENSION))


def spark_tasks_done(spark: SparkSession) -> tuple[int, int]:
    """(completed, total) tasks of the Spark stages running now, from the status tracker (no job is started)."""
    tracker = spark.sparkContext.statusTracker()
    done = total = 0
    for stage_id in tracker.getActiveStageIds():
        info = tracker.getStageInfo(stage_id)
        if info is not None:
            done, total = done + info.numCompletedTasks, total + info.numTasks
    return done, total


@contextmanager
def spark_progress(spark: SparkSession, description: str, every_s: float = 1.0) -> Iterator[None]:
    """A bar of the running Spark stages' tasks while the block runs (for work that is one long Spark action).

    Spark's own console bar is off because it garbles the logs; this one shares the rich display instead.
    """
    from socialrec.logs import progress_task

    stop = threading.Event()
    with progress_task(f"{description}: spark tasks", None) as bar:

        def poll() -> None:
            while not stop.wait(every_s):
                try:
                    done, total = spark_tasks_done(spark)
                except Exception:  # noqa: BLE001 - the session may be stopping; a bar never breaks the work
                    return
                bar.update(completed=done, total=total or None)

        thread = threading.Thread(target=poll, name=f"spark progress: {description}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
