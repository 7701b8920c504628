"""Stage ``examples``: stable user/item indices and the temporal-split training examples (gold)."""
from __future__ import annotations

import logging

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.faults import checkpoint
from socialrec.features.examples import extend_index, split_points, temporal_examples
from socialrec.ingest import adapter_for
from socialrec.lake import Lake
from socialrec.schema import columns as C
from socialrec.schema.tables import (
    GOLD_EXAMPLES,
    GOLD_ITEM_INDEX,
    GOLD_NEIGHBOURHOODS,
    GOLD_USER_INDEX,
    SILVER_EVENTS,
    SILVER_ITEMS,
    SILVER_USERS,
)

logger = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: AppConfig) -> dict[str, object]:
    source = adapter_for(cfg.data.dataset, cfg).name
    lake = Lake(spark, cfg)
    mine = F.col(C.SOURCE) == source
    for spec in (GOLD_USER_INDEX, GOLD_ITEM_INDEX, GOLD_EXAMPLES, GOLD_NEIGHBOURHOODS):
        lake.ensure(spec)
    # Indices: append new ids only (merge insert-only), so existing indices never move.
    users = lake.read(SILVER_USERS).where(mine).select(C.USER_ID)
    items = lake.read(SILVER_ITEMS).where(mine).select(C.ITEM_ID)
    for ids, spec, id_col, idx_col in ((users, GOLD_USER_INDEX, C.USER_ID, "user_idx"), (items, GOLD_ITEM_INDEX, C.ITEM_ID, "item_idx")):
        existing = lake.read(spec)
        lake.merge(extend_index(spark, ids, existing, id_col, idx_col, source), spec, update=False)
        checkpoint("examples:after-index")  # crash tests: an index extended, the examples not yet rebuilt
    events = lake.read(SILVER_EVENTS).where(mine)
    targets = cfg.examples.target_event_types
    t1, t2 = split_points(events.where(F.col(C.EVENT_TYPE).isin(*targets)), cfg.examples.validation_quantile, cfg.examples.test_quantile)
    examples = temporal_examples(
        events,
        lake.read(GOLD_USER_INDEX).where(mine),
        lake.read(GOLD_ITEM_INDEX).where(mine),
        lake.read(GOLD_NEIGHBOURHOODS).where(mine),
        target_types=targets,
        t1=t1,
        t2=t2,
        sequence_length=cfg.examples.sequence_length,
        neighbours=cfg.examples.neighbours,
        source=source,
    )
    # The lake may hold other sources' examples (gold.examples is partitioned by split only): keep them.
    lake.replace_source(examples, GOLD_EXAMPLES, source)
    per_split = {r["split"]: r["count"] for r in lake.read(GOLD_EXAMPLES).where(mine).groupBy("split").count().collect()}
    logger.info("examples split at t1=%s t2=%s: %s", t1, t2, per_split)
    return {"t1": t1, "t2": t2, **per_split}
