"""The embedded engine: Spark computes, delta-rs (package ``deltalake``) commits.

Two write paths (DESIGN §3):

* ``arrow``: ``df.toArrow()`` on the driver, then ``write_deltalake``. Fast for small frames; the driver
  needs ~2.3x the Arrow size in memory (STACK.md).
* ``staged``: executors write Parquet to a staging folder inside the table (no data reaches the driver),
  the driver renames the files into place and commits their metadata (path, size, partition values,
  row count from the Parquet footer) in one delta-rs transaction. A crash before the commit leaves only
  unreferenced files, which ``vacuum`` removes; the table itself never sees a half write.

Merges stream the staged source through a pyarrow ``RecordBatchReader`` (bounded driver memory) because
delta-rs executes MERGE in this process.

Reads go through Spark (``file_uris`` of the snapshot + ``basePath``): pyarrow 14 cannot read the Parquet
files delta-rs 1.x writes (string_view in the embedded Arrow schema), Spark can.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import to_arrow_schema

from socialrec.errors import LakeError
from socialrec.faults import checkpoint
from socialrec.lake.base import Commit, LakeEngine, MatchHow, PartitionFilter, Txn, partition_predicate
from socialrec.schema.tables import TableSpec

logger = logging.getLogger(__name__)

STAGING_DIR = "_staging"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping"}
WritePath = Literal["auto", "arrow", "staged"]


def arrow_schema(spec: TableSpec) -> pa.Schema:
    """The contract as an Arrow schema (timestamps as UTC micros, Delta's ``timestamp``)."""
    return to_arrow_schema(spec.schema, timestamp_utc=True)


def local_path(uri: str) -> str:
    """A filesystem path for a ``file://`` URI or plain path (delta-rs returns either)."""
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path)
    return uri


class DeltaRsEngine(LakeEngine):
    """delta-rs engine; see the module docstring for the write paths."""

    name = "delta-rs"

    def __init__(self, spark: SparkSession, write_path: WritePath = "auto", arrow_max_bytes: int = 64 << 20) -> None:
        super().__init__(spark)
        self.write_path = write_path
        self.arrow_max_bytes = arrow_max_bytes

    # ------------------------------------------------------------------------------------- basics

    def _table(self, path: str, version: int | None = None) -> DeltaTable:
        try:
            return DeltaTable(path, version=version)
        except TableNotFoundError as exc:
            raise LakeError(f"no Delta table at {path}: run `python -m jobs.init_lake` first") from exc

    def exists(self, path: str) -> bool:
        return DeltaTable.is_deltatable(path)

    def create(self, path: str, spec: TableSpec) -> None:
        configuration: dict[str, str | None] = {}
        if spec.pii:
            # Column stats (min/max) live in the transaction log, which vacuum never rewrites: keep
            # personal data out of them so forgetting a user leaves no trace there either.
            stats_cols = [c for c in spec.column_names if c not in spec.pii and c not in spec.partition_by]
            configuration["delta.dataSkippingStatsColumns"] = ",".join(stats_cols) if stats_cols else None
        DeltaTable.create(
            path,
            schema=arrow_schema(spec),
            mode="ignore",
            partition_by=list(spec.partition_by) or None,
            name=spec.qualified_name,
            description=spec.description,
            configuration={k: v for k, v in configuration.items() if v is not None} or None,
        )

    def read(self, path: str, spec: TableSpec, version: int | None = None) -> DataFrame:
        dt = self._table(path, version)
        protocol = dt.protocol()
        bad = UNSUPPORTED_READER_FEATURES & set(protocol.reader_features or [])
        if bad:
            raise LakeError(
                f"{spec.qualified_name} at {path} uses {sorted(bad)}, which the delta-rs read path cannot honour; "
                "disable them (delta.enableDeletionVectors=false) or use lake.engine=delta-spark"
            )
        uris = dt.file_uris()
        if not uris:
            return self.spark.createDataFrame([], spec.schema)
        if version is not None and "://" not in path:
            gone = [u for u in uris if not os.path.exists(local_path(u))]
            if gone:
                raise LakeError(
                    f"{spec.qualified_name} version {version} references {len(gone)} data file(s) that vacuum "
                    f"removed (e.g. {gone[0]}); time travel reaches only versions inside the vacuum retention"
                )
        return self.spark.read.schema(spec.schema).option("basePath", path).parquet(*uris).select(*spec.column_names)

    def version(self, path: str) -> int:
        v = self._table(path).version()
        return int(v)

    def row_count(self, path: str) -> int | None:
        actions = self._table(path).get_add_actions(flatten=True)
        if "num_records" not in actions.column_names:
            return None
        counts = actions.column("num_records").to_pylist()
        return None if any(c is None for c in counts) else int(sum(counts))

    def history(self, path: str) -> list[dict[str, Any]]:
        out = []
        for h in self._table(path).history():
            out.append(
                {
                    "version": int(h.get("version", -1)),
                    "timestamp": h.get("timestamp"),
                    "operation": h.get("operation"),
                    "parameters": h.get("operationParameters", {}),
                    "app_transactions": h.get("txn"),
                }
            )
        return out

    def is_conflict(self, exc: BaseException) -> bool:
        return isinstance(exc, CommitFailedError)

    # ------------------------------------------------------------------------------------- writes

    def choose_write_path(self, df: DataFrame) -> Literal["arrow", "staged"]:
        """``auto``: the optimizer's size estimate (no Spark action) against ``arrow_max_bytes``.

        Estimates err high for joins and unknown sources, which only sends more work to the staged path.
        """
        if self.write_path != "auto":
            return self.write_path
        try:
            size = int(str(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))  # noqa: SLF001
        except Exception:  # noqa: BLE001 - any failure to estimate means "treat as large"
            return "staged"
        return "arrow" if size <= self.arrow_max_bytes else "staged"

    @staticmethod
    def _commit_properties(txn: Txn | None) -> CommitProperties | None:
        if txn is None:
            return None
        return CommitProperties(app_transactions=[Transaction(app_id=txn.app_id, version=txn.version)])

    def _already_applied(self, path: str, txn: Txn | None) -> bool:
        if txn is None:
            return False
        applied = self._table(path).transaction_version(txn.app_id)
        return applied is not None and applied >= txn.version

    def _to_arrow(self, df: DataFrame, spec: TableSpec) -> pa.Table:
        table = df.toArrow()
        return table.cast(arrow_schema(spec))

    def append(self, path: str, df: DataFrame, spec: TableSpec, txn: Txn | None) -> Commit:
        return self._write(path, df, spec, "append", None, txn)

    def overwrite(
        self, path: str, df: DataFrame, spec: TableSpec, partitions: PartitionFilter | None, txn: Txn | None
    ) -> Commit:
        if partitions:
            not_partition = [c for c in partitions if c not in spec.partition_by]
            if not_partition:
                raise LakeError(
                    f"{spec.qualified_name}: overwrite filter names {not_partition}, "
                    f"which are not partition columns {list(spec.partition_by)}"
                )
        return self._write(path, df, spec, "overwrite", partitions, txn)

    def _write(
        self,
        path: str,
        df: DataFrame,
        spec: TableSpec,
        mode: Literal["append", "overwrite"],
        partitions: PartitionFilter | None,
        txn: Txn | None,
    ) -> Commit:
        if self._already_applied(path, txn):
            return Commit(spec.qualified_name, self.version(path), False, mode)
        route = self.choose_write_path(df)
        props = self._commit_properties(txn)
        if route == "arrow":
            write_deltalake(
                path,
                self._to_arrow(df, spec),
                mode=mode,  # type: ignore[arg-type]  # deltalake's overloads split append/overwrite
                partition_by=list(spec.partition_by) or None,
                predicate=partition_predicate(partitions) if partitions else None,
                commit_properties=props,
            )
        else:
            self._write_staged(path, df, spec, mode, partitions, props)
        return Commit(spec.qualified_name, self.version(path), True, mode, route)

    def _stage(self, path: str, df: DataFrame, partition_by: Sequence[str]) -> Path:
        """Executors write ``df`` as Parquet under ``<table>/_staging/<uuid>``; returns that folder."""
        stage = Path(local_path(path)) / STAGING_DIR / uuid.uuid4().hex
        writer = df.write.mode("errorifexists").option("compression", "snappy")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(str(stage))
        return stage

    def _write_staged(
        self,
        path: str,
        df: DataFrame,
        spec: TableSpec,
        mode: Literal["append", "overwrite"],
        partitions: PartitionFilter | None,
        props: CommitProperties | None,
    ) -> None:
        stage = self._stage(path, df, spec.partition_by)
        table_dir = Path(local_path(path))
        commit_id = stage.name
        actions: list[AddAction | RemoveAction] = []
        try:
            files = sorted(p for p in stage.rglob("*.parquet") if not p.name.startswith("."))
            for i, f in enumerate(files):
                rel_dir = f.parent.relative_to(stage)
                values: dict[str, str | None] = {}
                for part in rel_dir.parts:
                    col, _, raw = part.partition("=")
                    values[col] = None if raw == HIVE_NULL else unquote(raw)
                rows = pq.read_metadata(f).num_rows
                if rows == 0:
                    continue
                target = table_dir / rel_dir / f"part-{i:05d}-{commit_id}.snappy.parquet"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, target)
                st = target.stat()
                actions.append(
                    AddAction(
                        path=str(target.relative_to(table_dir)),
                        size=st.st_size,
                        partition_values=values,
                        modification_time=int(st.st_mtime * 1000),
                        data_change=True,
                        stats=json.dumps({"numRecords": rows}),
                    )
                )
            filters: list[tuple[str, str, Any]] | None = None
            if partitions:
                filters = []
                for col, value in partitions.items():
                    if isinstance(value, (list, tuple, set, frozenset)):
                        filters.append((col, "in", [str(v) for v in value]))
                    else:
                        filters.append((col, "=", str(value)))
            # crash tests: the files moved into the table, the commit not made (vacuum removes such orphans)
            checkpoint("lake:before-staged-commit")
            dt = self._table(path)
            dt.create_write_transaction(
                actions,
                mode=mode,
                schema=arrow_schema(spec),
                partition_by=list(spec.partition_by) or None,
                partition_filters=filters,
                commit_properties=props,
            )
            logger.debug("staged commit of %d files into %s", len(actions), spec.qualified_name)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def merge(
        self, path: str, df: DataFrame, spec: TableSpec, keys: Sequence[str], update: bool, txn: Txn | None
    ) -> Commit:
        if self._already_applied(path, txn):
            return Commit(spec.qualified_name, self.version(path), False, "merge")
        route = self.choose_write_path(df)
        predicate = " AND ".join(f't."{k}" = s."{k}"' for k in keys)
        stage: Path | None = None
        try:
            source: Any
            if route == "arrow":
                source = self._to_arrow(df, spec)
            else:
                # Unpartitioned staging: every column stays in the files, so the reader sees the contract.
                stage = self._stage(path, df, ())
                dataset = pads.dataset(str(stage), format="parquet", schema=arrow_schema(spec))
                source = dataset.scanner(batch_size=64_000).to_reader()
            merger = self._table(path).merge(
                source=source,
                predicate=predicate,
                source_alias="s",
                target_alias="t",
                commit_properties=self._commit_properties(txn),
            )
            if update:
                merger = merger.when_matched_update_all()
            merger.when_not_matched_insert_all().execute()
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
        return Commit(spec.qualified_name, self.version(path), True, "merge", route)

    def delete(self, path: str, spec: TableSpec, predicate: str) -> Commit:
        metrics = self._table(path).delete(predicate)
        deleted = int(metrics.get("num_deleted_rows", 0) or 0)
        return Commit(spec.qualified_name, self.version(path), deleted > 0, "delete")

    def delete_matching(
        self, path: str, spec: TableSpec, column: str, values: DataFrame, how: MatchHow
    ) -> Commit:
        source = values.toArrow()  # the values to forget: a handful of ids, not table data
        value_col = source.column_names[0]
        cond = (
            f't."{column}" = s."{value_col}"'
            if how == "equals"
            else f'regexp_like(t."{column}", s."{value_col}")'  # token_regex patterns
        )
        for scope_col in source.column_names[1:]:  # extra equality conditions (e.g. the source namespace)
            cond += f' AND t."{scope_col}" = s."{scope_col}"'
        metrics = (
            self._table(path)
            .merge(source=source, predicate=cond, source_alias="s", target_alias="t")
            .when_matched_delete()
            .execute()
        )
        deleted = int(metrics.get("num_target_rows_deleted", 0) or 0)
        return Commit(spec.qualified_name, self.version(path), deleted > 0, "delete")

    def vacuum(self, path: str, retention_hours: float) -> list[str]:
        # full=True also removes files no commit references (left by a crash before a staged commit).
        removed = self._table(path).vacuum(
            retention_hours=int(retention_hours), dry_run=False, enforce_retention_duration=False, full=True
        )
        stale_cutoff = time.time() - retention_hours * 3600
        staging = Path(local_path(path)) / STAGING_DIR
        if staging.is_dir():
            for d in staging.iterdir():
                if d.stat().st_mtime <= stale_cutoff:
                    shutil.rmtree(d, ignore_errors=True)
                    removed.append(str(d))
        return list(removed)

    # ---------------------------------------------------------------------------------------- SQL

    def register_sql(self, qualified_name: str, path: str, spec: TableSpec) -> str:
        """Expose the current snapshot as the catalog table ``qualified_name``.

        Spark has no Delta reader without the JVM jars, and a Parquet table over the folder would also see
        files the log has removed. So the snapshot's files are linked into a per-version folder (symlinks,
        keeping partition folders) and a session-catalog Parquet table points there: plain SQL, real
        names, partition pruning, and exactly the files of that version.
        """
        dt = self._table(path)
        version = dt.version()
        layer, _, name = qualified_name.partition(".")
        snap_root = Path(local_path(path)) / STAGING_DIR / "_sql"
        snap = snap_root / f"v{version}"
        if not snap.is_dir():
            tmp = snap_root / f".v{version}-{uuid.uuid4().hex}"
            tmp.mkdir(parents=True)
            table_dir = Path(local_path(path))
            for uri in dt.file_uris():
                src = Path(local_path(uri))
                link = tmp / src.relative_to(table_dir)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(src)
            try:
                tmp.rename(snap)
            except OSError:  # another session linked the same version first
                shutil.rmtree(tmp, ignore_errors=True)
        for old in snap_root.iterdir():
            if old.name != snap.name and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
        cols = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in spec.schema.fields)
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{layer}`")
        self.spark.sql(f"DROP TABLE IF EXISTS `{layer}`.`{name}`")
        partitioned = f" PARTITIONED BY ({', '.join(f'`{c}`' for c in spec.partition_by)})" if spec.partition_by else ""
        self.spark.sql(
            f"CREATE TABLE `{layer}`.`{name}` ({cols}) USING parquet{partitioned} LOCATION '{snap}' "
            f"COMMENT '{spec.description.replace(chr(39), '')} (delta-rs snapshot v{version})'"
        )
        if spec.partition_by:
            self.spark.sql(f"ALTER TABLE `{layer}`.`{name}` RECOVER PARTITIONS")
        return qualified_name
