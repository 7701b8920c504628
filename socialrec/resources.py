"""Driver-memory limits (DESIGN §8, issue 9): work that gathers data on the driver is sized before it starts.

Most of the pipeline runs on the executors and scales with the cluster; a few steps deliberately hold data on the
driver (the evaluation's interaction matrices, catalogue-sized item vectors, igraph's edge list, Arrow writes of
small frames). Each one estimates its bytes first and either takes the distributed path instead (igraph → Spark,
Arrow → staged writes) or fails before any work with a message that names the setting to change — never an
opaque ``java.lang.OutOfMemoryError`` half-way through. ``spark.driver.maxResultSize`` is set from the same
budget, so a collect that slips past an estimate is refused by Spark with a size, and :func:`explain_failure`
turns that refusal (and a JVM out-of-memory) into the same kind of message.
"""
from __future__ import annotations

import logging
import re

from pyspark.sql import SparkSession

from socialrec.config import AppConfig
from socialrec.errors import SocialrecError

logger = logging.getLogger(__name__)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
SPARK_DEFAULT_DRIVER_MEMORY = "1g"


class ResourceLimitError(SocialrecError):
    """The work would not fit in the configured memory: raise the setting the message names, or use less input."""


def parse_size(text: str) -> int:
    """Bytes of a JVM-style size: ``"4g"``, ``"512m"``, ``"1.5g"``, ``"2048"`` (bytes)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a memory size: {text!r} (expected e.g. 512m, 4g)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # unreachable


def driver_budget_bytes(cfg: AppConfig, driver_memory: str | None = None) -> int:
    """The bytes one driver-side step may hold: ``spark.driver_collect_fraction`` of the driver's memory."""
    memory = parse_size(driver_memory or cfg.spark.driver_memory or SPARK_DEFAULT_DRIVER_MEMORY)
    return int(memory * cfg.spark.driver_collect_fraction)


def session_driver_memory(spark: SparkSession) -> str:
    """The running driver's ``spark.driver.memory`` (what the JVM got, whoever started it)."""
    return spark.sparkContext.getConf().get("spark.driver.memory", SPARK_DEFAULT_DRIVER_MEMORY) or SPARK_DEFAULT_DRIVER_MEMORY


def fits_on_driver(spark: SparkSession, cfg: AppConfig, rows: int, bytes_per_row: int) -> bool:
    return rows * bytes_per_row <= driver_budget_bytes(cfg, session_driver_memory(spark))


def ensure_fits_on_driver(spark: SparkSession, cfg: AppConfig, what: str, rows: int, bytes_per_row: int, hint: str) -> None:
    """Raise :class:`ResourceLimitError` before ``what`` starts when ``rows × bytes_per_row`` exceeds the budget."""
    memory = session_driver_memory(spark)
    budget = driver_budget_bytes(cfg, memory)
    need = rows * bytes_per_row
    if need > budget:
        raise ResourceLimitError(
            f"{what} needs about {human(need)} on the driver ({rows:,} rows x ~{bytes_per_row} B), more than its "
            f"budget of {human(budget)} (spark.driver.memory={memory} x spark.driver_collect_fraction="
            f"{cfg.spark.driver_collect_fraction}). Raise spark.driver_memory (spark-submit --driver-memory on a "
            f"cluster) or {hint}."
        )
    logger.debug("%s: about %s on the driver, within its budget of %s", what, human(need), human(budget))


def max_result_size(cfg: AppConfig) -> str | None:
    """``spark.driver.maxResultSize``: the configured value, else the driver budget when this process sizes the
    driver (``spark.driver_memory`` set); None on a cluster, whose driver size spark-submit decides."""
    if cfg.spark.max_result_size:
        return cfg.spark.max_result_size
    if not cfg.spark.driver_memory:
        return None
    return f"{max(driver_budget_bytes(cfg) >> 20, 1)}m"  # Spark's smallest useful value is 1m


def explain_failure(exc: BaseException) -> ResourceLimitError | None:
    """A clear error for Spark's refusal of an oversized result or a JVM out-of-memory; None for anything else."""
    text = str(exc)
    if "spark.driver.maxResultSize" in text:
        found = re.search(r"Total size of serialized results[^\n]*?maxResultSize \([^)]*\)", text)
        return ResourceLimitError(
            f"a result gathered on the driver exceeded spark.driver.maxResultSize ({found.group(0) if found else 'too large'}). "
            "Raise spark.max_result_size and spark.driver_memory together, or narrow the input (fewer rows, a "
            "smaller --limit)."
        )
    if "java.lang.OutOfMemoryError" in text:
        return ResourceLimitError(
            "the JVM ran out of memory (java.lang.OutOfMemoryError). Raise spark.driver_memory (or the executors' "
            "memory on a cluster), or process less input per run."
        )
    return None
