"""Stage 0: create the lake and every table declared in the contract registry."""
from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from socialrec.config import AppConfig
from socialrec.lake import Lake

logger = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: AppConfig) -> dict[str, int]:
    """Ensure every registered table exists; returns ``{qualified_name: current version}``."""
    lake = Lake(spark, cfg)
    versions = {}
    for spec in lake.ensure_all():
        versions[spec.qualified_name] = lake.version(spec)
    logger.info("lake at %s has %d tables (engine %s)", lake.root, len(versions), lake.engine_name)
    return versions
