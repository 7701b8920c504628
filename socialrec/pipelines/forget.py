"""Forget a user (DESIGN §8): delete their rows from every table whose contract lists personal data, then
vacuum, so no data file keeps them.

Tables say how they hold personal data (``TableSpec.pii``): ``raw_id`` columns (bronze) are matched on the
raw id within the user's source; ``pseudonym`` columns on the keyed pseudonym; ``record`` columns (JSON
text) by whole token (never inside a longer id): the pseudonym, and the raw id when it is long enough to be unambiguous (a malformed
line cannot be parsed, so its raw text is kept whole). Deletes run as MERGEs so neither id is written
into a commit log, and vacuum runs with zero retention: time travel to before the deletion is gone, which
is the point. Later stages register their tables with ``pii`` and are covered automatically.

Beyond the lake (issue 9): derived caches that hold per-user rows (the petastorm training cache, the evaluation
baselines' top-K lists) are deleted, since they are rebuilt on the next run; log lines that name the user are
removed; then every file under ``paths.root``, the MLflow store, the logs and the scratch space is scanned for
either id. Model weights hold users only as row numbers of ``gold.user_index`` (whose row is deleted), but a
model trained on the user's data still carries what it learned from them: every registered model version
trained on the user's source before the deletion is listed as needing retraining.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.clean.text import ID_WHITESPACE, strip_ws
from socialrec.config import AppConfig
from socialrec.errors import SocialrecError
from socialrec.faults import checkpoint
from socialrec.ingest import adapter_for
from socialrec.lake import Lake
from socialrec.lake.base import token_regex, token_regex_bytes
from socialrec.schema import columns as C
from socialrec.schema.tables import all_tables
from socialrec.secrets import pseudonym_key

logger = logging.getLogger(__name__)

MIN_RAW_ID_CHARS_FOR_TOKEN_MATCH = 8


def pseudonym_of(raw_id: str, source: str, key: bytes) -> str:
    """The silver id of ``raw_id`` (same as :func:`socialrec.clean.rules.user_pseudonym` in Spark)."""
    return hmac.new(key, f"{source}:{raw_id.strip(ID_WHITESPACE)}".encode(), hashlib.sha256).hexdigest()


@dataclass
class ForgetReport:
    source: str
    pseudonym: str
    tables: dict[str, bool] = field(default_factory=dict)  # table -> rows were deleted
    vacuumed_files: int = 0
    caches_deleted: list[str] = field(default_factory=list)  # derived caches removed (rebuilt by the next run)
    logs_redacted: dict[str, int] = field(default_factory=dict)  # log file -> lines removed
    retrain: list[dict[str, Any]] = field(default_factory=list)  # registered model versions trained on the user
    remaining: list[str] = field(default_factory=list)  # files still holding an id (verify only)
    input_export: str | None = None  # the source's own export (not scanned: the source system deletes there)


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
                changed |= lake.delete_matching(spec, column, [raw_id.strip(ID_WHITESPACE)], scope=scope).committed
            elif form == "pseudonym":
                changed |= lake.delete_matching(spec, column, [pseudonym]).committed
            else:
                needles = [pseudonym]
                if len(raw_id.strip(ID_WHITESPACE)) >= MIN_RAW_ID_CHARS_FOR_TOKEN_MATCH:
                    needles.append(raw_id.strip(ID_WHITESPACE))
                source_col = next((c for c in (C.SOURCE, C.B_SOURCE) if c in spec.column_names), None)
                scope = {source_col: source} if source_col else None
                changed |= lake.delete_matching(spec, column, needles, how="token", scope=scope).committed
        report.tables[spec.qualified_name] = changed
        checkpoint("forget:before-vacuum")  # crash tests: rows deleted from this table, old files still there
        report.vacuumed_files += len(lake.vacuum(spec, 0))
        logger.info("%s: %s", spec.qualified_name, "rows deleted, vacuumed" if changed else "no rows")
    needles = [raw_id.strip(ID_WHITESPACE), pseudonym] if len(raw_id.strip(ID_WHITESPACE)) >= MIN_RAW_ID_CHARS_FOR_TOKEN_MATCH else [pseudonym]
    report.caches_deleted = delete_derived_caches(cfg)
    report.logs_redacted = redact_logs(Path(cfg.resolve(cfg.paths.logs_dir())), needles)
    report.retrain = models_trained_on(cfg, source, before=time.time())
    if verify:
        # The lake is scanned for both ids whatever their length (whole-value matches are exact there); files
        # outside it for the ids a token match cannot confuse with other text. The input export is the
        # source system's file, not the pipeline's: it is reported, not scanned (delete the user there too).
        from socialrec.ingest import source_path

        try:
            report.input_export = str(source_path(cfg))
        except SocialrecError:
            report.input_export = None
        # Spark's live scratch space (shuffle files of this very job's deletes) is removed when the session stops.
        spark_local = spark.sparkContext.getConf().get("spark.local.dir")
        skip = [lake.root, *([report.input_export] if report.input_export else []), *([spark_local] if spark_local else [])]
        # A short raw id ("17") is a token of countless values, so it is only searched for as a whole value
        # in the raw-id columns; every longer one, and the pseudonym, as a token of every file.
        report.remaining = sorted(set(scan_lake(spark, lake.root, needles))
                                  | set(tables_still_holding(lake, raw_id.strip(ID_WHITESPACE), source))
                                  | set(scan_paths(spark, outside_lake_roots(cfg), needles, skip=skip)))
    return report


def tables_still_holding(lake: Lake, raw_id: str, source: str) -> list[str]:
    """Tables whose current snapshot still has ``raw_id`` as a whole value of a raw-id column."""
    out = []
    for spec in all_tables():
        raw_columns = [c for c, form in (spec.pii or {}).items() if form == "raw_id"]
        if not raw_columns or not lake.exists(spec):
            continue
        df = lake.read(spec)
        if C.B_SOURCE in spec.column_names:
            df = df.where(F.col(C.B_SOURCE) == source)
        match = F.lit(False)
        for c in raw_columns:
            match = match | (strip_ws(F.col(c)) == raw_id)
        if df.where(match).limit(1).count():
            out.append(f"{lake.location(spec)} (table {spec.qualified_name})")
    return out


def outside_lake_roots(cfg: AppConfig) -> list[str]:
    """Every folder the pipeline writes besides the lake: ``paths.root`` and the configured stores."""
    roots = [cfg.paths.root, cfg.paths.mlflow_dir(), cfg.paths.logs_dir(), cfg.paths.tmp_dir()]
    if cfg.train.cache_dir:
        roots.append(cfg.train.cache_dir)
    if cfg.train.runs_dir:
        roots.append(cfg.train.runs_dir)
    resolved = sorted({str(Path(cfg.resolve(r)).resolve()) for r in roots})
    # Drop folders inside another one in the list, so no file is scanned twice.
    return [r for r in resolved if Path(r).exists() and not any(r != o and Path(r).is_relative_to(o) for o in resolved)]


def delete_derived_caches(cfg: AppConfig) -> list[str]:
    """Delete the caches that hold per-user rows and are rebuilt on demand; returns what was deleted."""
    from socialrec.pipelines.evaluate import baselines_cache_dir

    folders = [Path(cfg.resolve(cfg.train.cache_dir or f"{cfg.paths.tmp_dir()}/petastorm")), baselines_cache_dir(cfg)]
    deleted = []
    for folder in folders:
        if folder.exists():
            shutil.rmtree(folder)
            deleted.append(str(folder))
            logger.info("deleted the derived cache %s (rebuilt by the next run)", folder)
    return deleted


def redact_logs(logs_dir: Path, needles: list[str]) -> dict[str, int]:
    """Remove every log line that holds one of ``needles`` (the jobs log pseudonyms only in exceptional cases)."""
    removed: dict[str, int] = {}
    if not logs_dir.is_dir():
        return removed
    patterns = [token_regex_bytes(n) for n in needles]
    for path in sorted(logs_dir.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if not any(p.search(data) for p in patterns):
            continue
        lines = data.splitlines(keepends=True)
        kept = [ln for ln in lines if not any(p.search(ln) for p in patterns)]
        tmp = path.with_name(path.name + ".redacting")
        tmp.write_bytes(b"".join(kept))
        os.replace(tmp, path)  # atomic: a crash leaves the old or the redacted file, never half of one
        removed[str(path)] = len(lines) - len(kept)
        logger.info("removed %d line(s) naming the user from %s", len(lines) - len(kept), path)
    return removed


def models_trained_on(cfg: AppConfig, source: str, before: float) -> list[dict[str, Any]]:
    """Registered model versions whose training run read ``source`` and started before ``before`` (epoch s)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from socialrec.training import tracking

    if not Path(cfg.resolve(cfg.paths.mlflow_dir())).exists() and tracking.tracking_uri(cfg).startswith("sqlite"):
        return []  # nothing was ever trained here
    client = MlflowClient(tracking.use_store(tracking.tracking_uri(cfg)))
    out: list[dict[str, Any]] = []
    for name in dict.fromkeys([cfg.tracking.registered_model, cfg.evaluate.registered_model]):
        try:
            versions = client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            continue
        for mv in versions:
            if mv.creation_timestamp / 1000 >= before or not mv.run_id:
                continue
            run = client.get_run(mv.run_id)
            if run.data.tags.get("socialrec.source", source) != source:
                continue
            # search results do not carry aliases in every MLflow version: read the version itself.
            aliases = list(client.get_model_version(name, mv.version).aliases or [])
            out.append({"model": name, "version": int(mv.version), "run_id": mv.run_id, "aliases": sorted(aliases)})
    return sorted(out, key=lambda m: (m["model"], m["version"]))


def scan_paths(spark: SparkSession, roots: list[str], needles: list[str], skip: list[str] | None = None) -> list[str]:
    """Files under ``roots`` (except under ``skip``) holding any of ``needles``: Parquet through Spark (values
    are compressed on disk), everything else as bytes (text, sqlite, torch checkpoints, numpy archives)."""
    hits: list[str] = []
    for root in roots:
        hits += scan_lake(spark, root, needles, skip=skip)
    return sorted(set(hits))


def scan_lake(spark: SparkSession, root: str, needles: list[str], skip: list[str] | None = None) -> list[str]:
    """Files under ``root`` whose contents hold any of ``needles``: every Parquet file physically present
    (current, old, staged, checkpoints; not just those the log references), read by Spark with the values
    rendered as JSON, and every other file (commit logs) as text. Distributed, so it scales with the lake."""
    parquet: list[str] = []
    hits: list[str] = []
    skip_dirs = {Path(s).resolve() for s in skip or []}
    raw = [token_regex_bytes(n) for n in needles]
    for dirpath, dirs, files in os.walk(root):
        if Path(dirpath).resolve() in skip_dirs:
            dirs.clear()
            continue
        for name in files:
            path = Path(dirpath) / name
            if not path.exists():
                continue  # a dangling link to a vacuumed file: no data
            if name.endswith(".parquet"):
                parquet.append(str(path))
            else:
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                if any(p.search(data) for p in raw):
                    hits.append(str(path))
    by_folder: dict[str, list[str]] = {}
    for f in parquet:  # one read per folder: files of one table share a schema
        by_folder.setdefault(str(Path(f).parent), []).append(f)
    for files in by_folder.values():
        frame = spark.read.option("mergeSchema", "true").parquet(*files)
        rendered = F.to_json(F.struct(*[F.col(f"`{c}`") for c in frame.columns]))
        found = F.lit(False)
        for n in needles:
            found = found | rendered.rlike(token_regex(n))
        rows = frame.where(found).select(F.col("_metadata.file_path").alias("f")).distinct().collect()
        hits += [r["f"] for r in rows]
    return sorted(set(hits))
