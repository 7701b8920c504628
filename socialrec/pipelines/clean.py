"""Stage ``clean``: bronze -> silver, quarantine and audit, one (source, batch) at a time.

Per batch, streams are cleaned in reference order (users, items, then events, edges, reviews) so the strict
reference policy sees this batch's users and items. Every stream's rows are judged (see
:mod:`socialrec.clean.outcomes`), the counts are checked (``input = kept + duplicates + quarantined``, else
:class:`AccountingError` before anything is written), then kept rows MERGE into silver, quarantined rows
into ``silver.quarantine`` (insert-only, keyed by record hash) and, last, one audit row per stream marks the
batch clean. Every write is keyed, and rows of the batch being cleaned are excluded from the comparison
with silver, so a rerun (after success or after a kill at any point) converges to the same tables.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.clean.outcomes import (
    DUPLICATE,
    KEPT,
    OUTCOME,
    QUARANTINED,
    RECORD,
    RECORD_HASH,
    SUPERSEDED,
    check_references,
    judge,
    keep_raw_fields,
)
from socialrec.clean.rules import REASONS, TYPERS, RuleContext
from socialrec.config import AppConfig
from socialrec.errors import AccountingError
from socialrec.faults import checkpoint
from socialrec.ingest import adapter_for
from socialrec.ingest.base import SourceProfile
from socialrec.lake import Lake
from socialrec.schema import columns as C
from socialrec.schema.tables import (
    BRONZE_BATCHES,
    BRONZE_BY_STREAM,
    BRONZE_EVENTS,
    SILVER_AUDIT,
    SILVER_BY_STREAM,
    SILVER_EVENTS,
    SILVER_ITEMS,
    SILVER_QUARANTINE,
    SILVER_REVIEWS,
    SILVER_SOCIAL_EDGES,
    SILVER_USERS,
)
from socialrec.secrets import pseudonym_key

logger = logging.getLogger(__name__)

STREAM_ORDER = ("users", "items", "events", "social_edges", "reviews")


@dataclass(frozen=True)
class StreamAudit:
    table: str
    source: str
    batch_id: str
    input_rows: int
    kept_rows: int
    duplicate_rows: int
    quarantined_rows: int

    def row(self, at: datetime) -> tuple[object, ...]:
        return (self.table, self.batch_id, self.source, self.input_rows, self.kept_rows,
                self.duplicate_rows, self.quarantined_rows, at)


def pending_batches(lake: Lake, source: str) -> list[tuple[str, list[str]]]:
    """``[(batch, streams)]`` of complete bronze batches of ``source`` not yet cleaned since their ingest.

    Both tables hold one row per batch (and stream), so collecting them is cheap.
    """
    if not lake.exists(BRONZE_BATCHES):
        return []
    batches = lake.read(BRONZE_BATCHES).where(F.col(C.SOURCE) == source).collect()
    audited: dict[tuple[str, str], datetime] = {}
    if lake.exists(SILVER_AUDIT):
        for r in lake.read(SILVER_AUDIT).where(F.col(C.SOURCE) == source).collect():
            audited[(r[C.BATCH_ID], r[C.TABLE])] = r[C.AUDITED_AT]
    out = []
    for b in sorted(batches, key=lambda r: (r[C.B_INGESTED_AT], r[C.BATCH_ID])):
        streams = list(b["streams"])
        done = [audited.get((b[C.BATCH_ID], SILVER_BY_STREAM[s].qualified_name)) for s in streams]
        if not streams or any(at is None or at < b[C.B_INGESTED_AT] for at in done):
            out.append((b[C.BATCH_ID], streams))
    return out


def judge_stream(
    lake: Lake, stream: str, ctx: RuleContext, bronze: DataFrame
) -> DataFrame:
    """The batch's rows of ``stream`` with silver columns, ``_reasons`` and ``_outcome`` (not persisted)."""
    typed = TYPERS[stream](keep_raw_fields(bronze, stream), ctx)
    if ctx.profile.references == "strict" and stream in ("events", "social_edges", "reviews"):
        users = _ids(lake, SILVER_USERS, C.USER_ID, ctx.source)
        items = _ids(lake, SILVER_ITEMS, C.ITEM_ID, ctx.source) if stream != "social_edges" else None
        typed = check_references(typed, stream, users, items)
    spec = SILVER_BY_STREAM[stream]
    existing = (
        lake.read(spec).where((F.col(C.SOURCE) == ctx.source) & (F.col(C.BATCH_ID) != ctx.batch_id))
        if lake.exists(spec)
        else None
    )
    return judge(typed, stream, ctx, existing)


def _ids(lake: Lake, spec, column: str, source: str) -> DataFrame:  # type: ignore[no-untyped-def]
    lake.ensure(spec)
    return lake.read(spec).where(F.col(C.SOURCE) == source).select(column)


def clean_batch(
    spark: SparkSession, lake: Lake, cfg: AppConfig, key: bytes, profile: SourceProfile, batch: str, streams: list[str]
) -> list[StreamAudit]:
    """Clean one batch of one source; returns its audit rows (also written to ``silver.audit``)."""
    ctx = RuleContext(profile=profile, batch_id=batch, clean=cfg.clean, key=key)
    now = datetime.now(UTC).replace(tzinfo=None)
    audits: list[StreamAudit] = []
    for spec in (*SILVER_BY_STREAM.values(), SILVER_QUARANTINE, SILVER_AUDIT):
        lake.ensure(spec)
    for stream in [s for s in STREAM_ORDER if s in streams]:
        spark.sparkContext.setJobDescription(f"socialrec: clean {ctx.source}/{batch}/{stream}")
        bronze_spec = BRONZE_BY_STREAM[stream]
        bronze = lake.read(bronze_spec).where(
            (F.col(C.B_SOURCE) == ctx.source) & (F.col(C.B_BATCH_ID) == batch)
        )
        judged = judge_stream(lake, stream, ctx, bronze).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            audit = _account(judged, bronze, stream, ctx)
            spec = SILVER_BY_STREAM[stream]
            kept = judged.where((F.col(OUTCOME) == KEPT) & ~F.coalesce(F.col(SUPERSEDED), F.lit(False)))
            kept = kept.select(*spec.column_names)
            lake.merge(kept, spec)
            checkpoint("clean:after-silver-merge")
            quarantined = judged.where(F.col(OUTCOME) == QUARANTINED).select(
                F.lit(spec.qualified_name).alias(C.TABLE),
                F.lit(ctx.source).alias(C.SOURCE),
                F.col(RECORD_HASH).alias(C.RECORD_HASH),
                F.col(REASONS).alias(C.REASONS),
                F.col(RECORD).alias(C.RECORD),
                F.lit(batch).alias(C.BATCH_ID),
                F.lit(now).alias(C.QUARANTINED_AT),
            )
            lake.merge(quarantined, SILVER_QUARANTINE, update=False)
            checkpoint("clean:after-quarantine-merge")
        finally:
            judged.unpersist()
        audits.append(audit)
        logger.info(
            "%s %s/%s: input %d = kept %d + duplicates %d + quarantined %d",
            audit.table, ctx.source, batch, audit.input_rows, audit.kept_rows, audit.duplicate_rows,
            audit.quarantined_rows,
        )
    if profile.references == "derive":
        derive_users(spark, lake, ctx)
        derive_items(spark, lake, ctx)
    checkpoint("clean:before-audit")
    # Last: the audit rows are the batch's "clean" marker.
    lake.merge(spark.createDataFrame([a.row(now) for a in audits], SILVER_AUDIT.schema), SILVER_AUDIT)
    return audits


def _account(judged: DataFrame, bronze: DataFrame, stream: str, ctx: RuleContext) -> StreamAudit:
    counts = {r[OUTCOME]: r["count"] for r in judged.groupBy(OUTCOME).count().collect()}
    input_rows = bronze.count()
    audit = StreamAudit(
        table=SILVER_BY_STREAM[stream].qualified_name,
        source=ctx.source,
        batch_id=ctx.batch_id,
        input_rows=input_rows,
        kept_rows=counts.get(KEPT, 0),
        duplicate_rows=counts.get(DUPLICATE, 0),
        quarantined_rows=counts.get(QUARANTINED, 0),
    )
    unexpected = set(counts) - {KEPT, DUPLICATE, QUARANTINED}
    if unexpected or audit.input_rows != audit.kept_rows + audit.duplicate_rows + audit.quarantined_rows:
        raise AccountingError(
            f"{audit.table} {ctx.source}/{ctx.batch_id}: input {audit.input_rows} != kept {audit.kept_rows} + "
            f"duplicates {audit.duplicate_rows} + quarantined {audit.quarantined_rows}"
            + (f" (rows without outcome: {unexpected})" if unexpected else "")
            + "; nothing was written for this stream. This is a bug in a cleaning rule: report it with the batch."
        )
    return audit


def derive_users(spark: SparkSession, lake: Lake, ctx: RuleContext) -> None:
    """Sources without a user list: every user a kept row names, first seen at their earliest row."""
    this_batch = (F.col(C.SOURCE) == ctx.source) & (F.col(C.BATCH_ID) == ctx.batch_id)
    seen = (
        lake.read(SILVER_EVENTS).where(this_batch).select(C.USER_ID, C.TS)
        .unionByName(lake.read(SILVER_REVIEWS).where(this_batch).select(C.USER_ID, C.TS))
        .unionByName(lake.read(SILVER_SOCIAL_EDGES).where(this_batch).select(F.col(C.SRC_USER_ID).alias(C.USER_ID), C.TS))
        .unionByName(lake.read(SILVER_SOCIAL_EDGES).where(this_batch).select(F.col(C.DST_USER_ID).alias(C.USER_ID), C.TS))
        .groupBy(C.USER_ID)
        .agg(F.min(C.TS).alias("_first"))
    )
    old = lake.read(SILVER_USERS).select(
        F.col(C.USER_ID).alias("_uid"), F.col(C.FIRST_SEEN_TS).alias("_old_first"),
        F.col(C.ATTRIBUTES).alias("_old_attrs"), F.col(C.SOURCE).alias("_old_source"),
        F.col(C.BATCH_ID).alias("_old_batch"),
    )
    users = seen.join(old, seen[C.USER_ID] == old["_uid"], "left").select(
        F.col(C.USER_ID),
        F.least(F.col("_first"), F.col("_old_first")).alias(C.FIRST_SEEN_TS),
        F.coalesce(F.col("_old_attrs"), F.lit("{}")).alias(C.ATTRIBUTES),
        F.coalesce(F.col("_old_source"), F.lit(ctx.source)).alias(C.SOURCE),
        F.coalesce(F.col("_old_batch"), F.lit(ctx.batch_id)).alias(C.BATCH_ID),
    )
    lake.merge(users, SILVER_USERS)


def derive_items(spark: SparkSession, lake: Lake, ctx: RuleContext) -> None:
    """Sources without a (complete) catalogue: a stub item for every item a kept row names and the catalogue
    lacks, with the category its events carried most often (ties: the smallest name). Insert-only, so a
    real catalogue row always wins."""
    this_batch = (F.col(C.SOURCE) == ctx.source) & (F.col(C.BATCH_ID) == ctx.batch_id)
    named = (
        lake.read(SILVER_EVENTS).where(this_batch).select(C.ITEM_ID)
        .unionByName(lake.read(SILVER_REVIEWS).where(this_batch).select(C.ITEM_ID))
        .distinct()
    )
    categories = (
        lake.read(BRONZE_EVENTS)
        .where((F.col(C.B_SOURCE) == ctx.source) & (F.col(C.B_BATCH_ID) == ctx.batch_id))
        .where(F.trim(F.col(C.EVENT_CATEGORY)) != "")
        .select(
            F.concat(F.lit(f"{ctx.source}:"), F.trim(F.col(C.ITEM_ID))).alias("_iid"),
            F.trim(F.col(C.EVENT_CATEGORY)).alias("_cat"),
        )
        .groupBy("_iid", "_cat").count()
        .groupBy("_iid")
        .agg(F.min_by(F.col("_cat"), F.struct(-F.col("count"), F.col("_cat"))).alias("_category"))
    )
    stubs = named.join(categories, named[C.ITEM_ID] == categories["_iid"], "left").select(
        C.ITEM_ID,
        *[F.lit(None).cast("string").alias(c) for c in (C.TITLE, C.DESCRIPTION)],
        F.col("_category").alias(C.CATEGORY),
        F.lit(None).cast("string").alias(C.BRAND),
        F.lit(None).cast("double").alias(C.PRICE),
        F.lit(None).cast("string").alias(C.CURRENCY),
        F.lit(None).cast("timestamp").alias(C.UPDATED_TS),
        F.lit(None).cast("array<string>").alias(C.TAGS),
        F.lit(ctx.source).alias(C.SOURCE),
        F.lit(ctx.batch_id).alias(C.BATCH_ID),
    )
    lake.merge(stubs, SILVER_ITEMS, update=False)


def run(
    spark: SparkSession, cfg: AppConfig, *, dataset: str | None = None, force_batches: list[str] | None = None
) -> list[StreamAudit]:
    """Clean every pending batch of ``dataset``'s source (or re-clean ``force_batches``)."""
    dataset = dataset or cfg.data.dataset
    profile = adapter_for(dataset, cfg).profile
    lake = Lake(spark, cfg)
    key = pseudonym_key(cfg)
    todo = pending_batches(lake, profile.name)
    if force_batches:
        marker = {r[C.BATCH_ID]: list(r["streams"]) for r in lake.read(BRONZE_BATCHES).where(F.col(C.SOURCE) == profile.name).collect()}
        todo = [(b, marker[b]) for b in force_batches if b in marker]
    if not todo:
        logger.info("%s: no bronze batch waiting to be cleaned", profile.name)
    audits: list[StreamAudit] = []
    for batch, streams in todo:
        audits += clean_batch(spark, lake, cfg, key, profile, batch, streams)
    return audits
