"""Forget a user (DESIGN §8): delete their rows from every table whose contract lists personal data, then
vacuum, so no data file keeps them.

Tables say how they hold personal data (``TableSpec.pii``): ``raw_id`` columns (bronze) are matched on the
raw id within the user's source; ``pseudonym`` columns on the keyed pseudonym; ``record`` columns (JSON
text) by substring: the pseudonym, and the raw id when it is long enough to be unambiguous (a malformed
line cannot be parsed, so its raw text is kept whole). Deletes run as MERGEs so neither id is written
into a commit log, and vacuum runs with zero retention: time travel to before the deletion is gone, which
is the point. Later stages register their tables with ``pii`` and are covered automatically.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.ingest import adapter_for
from socialrec.lake import Lake
from socialrec.schema import columns as C
from socialrec.schema.tables import all_tables
from socialrec.secrets import pseudonym_key

logger = logging.getLogger(__name__)

MIN_RAW_ID_CHARS_FOR_SUBSTRING = 8


def pseudonym_of(raw_id: str, source: str, key: bytes) -> str:
    """The silver id of ``raw_id`` (same as :func:`socialrec.clean.rules.user_pseudonym` in Spark)."""
    return hmac.new(key, f"{source}:{raw_id.strip()}".encode(), hashlib.sha256).hexdigest()


@dataclass
class ForgetReport:
    source: str
    pseudonym: str
    tables: dict[str, bool] = field(default_factory=dict)  # table -> rows were deleted
    vacuumed_files: int = 0
    remaining: list[str] = field(default_factory=list)  # files still holding an id (verify only)


def forget_user(
    spark: SparkSession, cfg: AppConfig, raw_id: str, source: str | None = None, *, verify: bool = True
) -> ForgetReport:
    """Delete ``raw_id`` of ``source`` (default: the configured dataset's source) everywhere and vacuum."""
    source = source or adapter_for(cfg.data.dataset, cfg).name
    key = pseudonym_key(cfg)
    pseudonym = pseudonym_of(raw_id, source, key)
    lake = Lake(spark, cfg)
    report = ForgetReport(source=source, pseudonym=pseudonym)
    for spec in all_tables():
        if not spec.pii or not lake.exists(spec):
            continue
        changed = False
        for column, form in spec.pii.items():
            if form == "raw_id":
                scope = {C.B_SOURCE: source} if C.B_SOURCE in spec.column_names else None
                changed |= lake.delete_matching(spec, column, [raw_id.strip()], scope=scope).committed
            elif form == "pseudonym":
                changed |= lake.delete_matching(spec, column, [pseudonym]).committed
            else:
                needles = [pseudonym]
                if len(raw_id.strip()) >= MIN_RAW_ID_CHARS_FOR_SUBSTRING:
                    needles.append(raw_id.strip())
                scope = {C.SOURCE: source} if C.SOURCE in spec.column_names else None
                changed |= lake.delete_matching(spec, column, needles, how="contains", scope=scope).committed
        report.tables[spec.qualified_name] = changed
        report.vacuumed_files += len(lake.vacuum(spec, 0))
        logger.info("%s: %s", spec.qualified_name, "rows deleted, vacuumed" if changed else "no rows")
    if verify:
        report.remaining = scan_lake(spark, lake.root, [raw_id.strip(), pseudonym])
    return report


def scan_lake(spark: SparkSession, root: str, needles: list[str]) -> list[str]:
    """Files under ``root`` whose contents hold any of ``needles``: every Parquet file physically present
    (current, old, staged, checkpoints; not just those the log references), read by Spark with the values
    rendered as JSON, and every other file (commit logs) as text. Distributed, so it scales with the lake."""
    parquet: list[str] = []
    hits: list[str] = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if not path.exists():
                continue  # a dangling link to a vacuumed file: no data
            if name.endswith(".parquet"):
                parquet.append(str(path))
            else:
                try:
                    text = path.read_text(errors="replace")
                except OSError:
                    continue
                if any(n in text for n in needles):
                    hits.append(str(path))
    by_folder: dict[str, list[str]] = {}
    for f in parquet:  # one read per folder: files of one table share a schema
        by_folder.setdefault(str(Path(f).parent), []).append(f)
    for files in by_folder.values():
        frame = spark.read.option("mergeSchema", "true").parquet(*files)
        rendered = F.to_json(F.struct(*[F.col(f"`{c}`") for c in frame.columns]))
        found = F.lit(False)
        for n in needles:
            found = found | (F.instr(rendered, n) > 0)
        rows = frame.where(found).select(F.col("_metadata.file_path").alias("f")).distinct().collect()
        hits += [r["f"] for r in rows]
    return sorted(set(hits))
