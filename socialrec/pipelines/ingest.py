"""Stage ``ingest``: a source's files -> bronze, one batch at a time (DESIGN §2).

Each stream of a batch replaces that batch's partition (``_source``, ``_batch_id``) in one commit, then a
row in ``bronze.batches`` marks the batch complete. A run killed half-way leaves some streams replaced
and no marker; the rerun replaces them all again and writes the marker, so it converges. Batches that
already have a marker are skipped unless forced (re-ingesting replaces the batch).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.faults import checkpoint
from socialrec.ingest import adapter_for, source_path
from socialrec.ingest.base import SourceAdapter, SourceMissingError
from socialrec.lake import Lake
from socialrec.schema import columns as C
from socialrec.schema.tables import BRONZE_BATCHES, BRONZE_BY_STREAM

logger = logging.getLogger(__name__)


@dataclass
class IngestReport:
    source: str
    path: str
    ingested: dict[str, dict[str, int]] = field(default_factory=dict)  # batch -> stream -> rows
    skipped: list[str] = field(default_factory=list)


def ingested_batches(lake: Lake, source: str) -> dict[str, datetime]:
    """``{batch: ingested_at}`` of the complete batches of ``source`` (a handful of rows per source)."""
    if not lake.exists(BRONZE_BATCHES):
        return {}
    rows = lake.read(BRONZE_BATCHES).where(F.col(C.SOURCE) == source).select(C.BATCH_ID, C.B_INGESTED_AT).collect()
    return {r[C.BATCH_ID]: r[C.B_INGESTED_AT] for r in rows}


def ingest_batch(
    spark: SparkSession, lake: Lake, adapter: SourceAdapter, path: Path, batch: str, label: str | None = None
) -> dict[str, int]:
    """Land the adapter's ``batch`` in bronze under ``label`` (default: the same); returns rows per stream."""
    now = datetime.now(UTC).replace(tzinfo=None)
    frames = adapter.read_batch(spark, path, batch)
    batch = label or batch
    rows: dict[str, int] = {}
    scope = {C.B_SOURCE: adapter.name, C.B_BATCH_ID: batch}
    for stream in C.STREAMS:
        spec = BRONZE_BY_STREAM[stream]
        lake.ensure(spec)
        frame = frames.get(stream)
        if frame is None:
            # A stream this batch no longer has: re-ingesting must not leave the old rows behind.
            lake.overwrite(spark.createDataFrame([], spec.schema), spec, partitions=scope)
            continue
        bronze = frame.withColumns(
            {C.B_SOURCE: F.lit(adapter.name), C.B_BATCH_ID: F.lit(batch), C.B_INGESTED_AT: F.lit(now)}
        )
        lake.overwrite(bronze, spec, partitions=scope)
        rows[stream] = lake.read(spec).where(
            (F.col(C.B_SOURCE) == adapter.name) & (F.col(C.B_BATCH_ID) == batch)
        ).count()
        logger.info("bronze.%s <- %s/%s: %d rows", stream, adapter.name, batch, rows[stream])
        checkpoint("ingest:after-stream")
    marker = spark.createDataFrame(
        [(adapter.name, batch, sorted(rows), json.dumps(rows, sort_keys=True), now)], BRONZE_BATCHES.schema
    )
    lake.ensure(BRONZE_BATCHES)
    lake.merge(marker, BRONZE_BATCHES)
    return rows


def run(
    spark: SparkSession,
    cfg: AppConfig,
    *,
    dataset: str | None = None,
    path: str | None = None,
    batches: list[str] | None = None,
    force: bool = False,
) -> IngestReport:
    """Ingest ``dataset`` (default ``data.dataset``) from ``path`` (default: see :func:`source_path`)."""
    dataset = dataset or cfg.data.dataset
    adapter = adapter_for(dataset, cfg)
    folder = source_path(cfg, dataset, path)
    if dataset == "synthetic":
        from socialrec.synth import ensure_platform

        ensure_platform(
            folder, cfg.data.synthetic,
            platform_launch=cfg.clean.platform_launch, max_text_chars=cfg.clean.max_text_chars,
        )
    available = adapter.batches(folder)
    if dataset not in ("synthetic", "feed") and cfg.data.batch_id and available == ["full"]:
        available = [cfg.data.batch_id]
    wanted = batches or available
    unknown = sorted(set(wanted) - set(available))
    if unknown and not (len(available) == 1 and len(wanted) == 1):
        raise SourceMissingError(f"{dataset}: no batch {unknown} under {folder}; available: {available}")
    lake = Lake(spark, cfg)
    done = ingested_batches(lake, adapter.name)
    report = IngestReport(adapter.name, str(folder))
    for batch in wanted:
        if batch in done and not force and not batches:
            report.skipped.append(batch)
            continue
        # One-shot datasets read their files whatever the label; feeds read the batch folder.
        read_as = batch if batch in available else available[0]
        spark.sparkContext.setJobDescription(f"socialrec: ingest {adapter.name}/{batch}")
        report.ingested[batch] = ingest_batch(spark, lake, adapter, folder, read_as, label=batch)
    if report.skipped:
        logger.info("%s: batches already ingested, skipped: %s (use --force to re-ingest)", adapter.name, report.skipped)
    return report

