"""Stage ``features``: silver -> gold user/item features and user sequences, as of one cutoff.

Rows are keyed by (id, cutoff_ts), so features as of several split points live side by side; rerunning a
cutoff replaces its rows (MERGE), which makes the stage idempotent.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.errors import SocialrecError
from socialrec.faults import checkpoint
from socialrec.features.behaviour import item_features, user_features, user_sequences
from socialrec.ingest import adapter_for
from socialrec.lake import Lake
from socialrec.schema import columns as C
from socialrec.schema.tables import (
    GOLD_ITEM_FEATURES,
    GOLD_USER_FEATURES,
    GOLD_USER_SEQUENCES,
    SILVER_EVENTS,
    SILVER_ITEMS,
    SILVER_REVIEWS,
)

logger = logging.getLogger(__name__)


def default_cutoff(lake: Lake, source: str) -> datetime:
    """Just after the source's latest event: features over everything (one aggregate, no data collected)."""
    latest = lake.read(SILVER_EVENTS).where(F.col(C.SOURCE) == source).agg(F.max(C.TS)).first()
    if latest is None or latest[0] is None:
        raise SocialrecError(f"{source}: silver.events is empty; run the ingest and clean stages first")
    value: datetime = latest[0]
    return value + timedelta(seconds=1)


def run(spark: SparkSession, cfg: AppConfig, cutoff: datetime | None = None) -> dict[str, int]:
    source = adapter_for(cfg.data.dataset, cfg).name
    lake = Lake(spark, cfg)
    if cutoff is None:
        cutoff = datetime.fromisoformat(cfg.features.cutoff) if cfg.features.cutoff else default_cutoff(lake, source)
    mine = F.col(C.SOURCE) == source
    events = lake.read(SILVER_EVENTS).where(mine)
    items = lake.read(SILVER_ITEMS).where(mine)
    reviews = lake.read(SILVER_REVIEWS).where(mine)
    outputs = [  # (spec, frame) pairs: TableSpec holds a dict, so it is not hashable
        (GOLD_USER_FEATURES, user_features(events, items, cutoff, source)),
        (GOLD_ITEM_FEATURES, item_features(events, reviews, cutoff, source, cfg.features.half_life_days)),
        (GOLD_USER_SEQUENCES, user_sequences(events, cutoff, source, cfg.features.sequence_length)),
    ]
    counts = {}
    for spec, frame in outputs:
        lake.ensure(spec)
        lake.merge(frame, spec)
        checkpoint("features:after-table")  # crash tests: some feature tables merged, the rest not yet
        counts[spec.qualified_name] = lake.read(spec).where((F.col("cutoff_ts") == F.lit(cutoff)) & mine).count()
        logger.info("%s as of %s: %d rows", spec.qualified_name, cutoff, counts[spec.qualified_name])
    return counts
