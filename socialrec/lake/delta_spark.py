"""The cluster engine: native Delta Lake on the JVM (``io.delta:delta-spark``).

Used when ``io.delta.sql.DeltaSparkSessionExtension`` is loadable (Databricks, EMR, or a machine where
``make setup`` resolved the jars). Tables live at the same locations as with delta-rs and are the same
standard Delta tables; deletion vectors stay off so the embedded engine can still read them.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from socialrec.errors import EngineUnavailableError
from socialrec.lake.base import Commit, LakeEngine, MatchHow, PartitionFilter, Txn, partition_predicate
from socialrec.schema.tables import TableSpec
from socialrec.spark import delta_spark_loadable

logger = logging.getLogger(__name__)

TABLE_PROPERTIES = {
    "delta.enableDeletionVectors": "false",
    # Keep personal data out of file statistics in the log (see delta_rs.DeltaRsEngine.create).
}
# Concurrent-commit failures Delta raises; every one means "another writer committed first".
CONFLICT_NAMES = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "ConcurrentWriteException",
)


class DeltaSparkEngine(LakeEngine):
    """Delta Lake through the JVM (``delta.tables.DeltaTable`` and ``format("delta")``)."""

    name = "delta-spark"
    # Session-level txn conf (used for MERGE/DELETE idempotency) is shared by threads of one session.
    _txn_lock = threading.Lock()

    def __init__(self, spark: SparkSession) -> None:
        if not delta_spark_loadable(spark):
            raise EngineUnavailableError(
                "lake.engine=delta-spark, but io.delta.sql.DeltaSparkSessionExtension is not on the JVM "
                "classpath; run `make setup` where Maven Central is reachable (jars go to .jars/) or use "
                "lake.engine=delta-rs"
            )
        super().__init__(spark)
        from delta.tables import DeltaTable  # imported here: only valid when the JVM side is present

        self._delta_table = DeltaTable

    def exists(self, path: str) -> bool:
        return bool(self._delta_table.isDeltaTable(self.spark, path))

    def create(self, path: str, spec: TableSpec) -> None:
        builder = (
            self._delta_table.createIfNotExists(self.spark)
            .location(path)
            .addColumns(spec.schema)
            .comment(spec.description)
        )
        if spec.partition_by:
            builder = builder.partitionedBy(*spec.partition_by)
        props = dict(TABLE_PROPERTIES)
        if spec.pii:
            stats_cols = [c for c in spec.column_names if c not in spec.pii and c not in spec.partition_by]
            if stats_cols:
                props["delta.dataSkippingStatsColumns"] = ",".join(stats_cols)
        for key, value in props.items():
            builder = builder.property(key, value)
        builder.execute()

    def read(self, path: str, spec: TableSpec, version: int | None = None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(path).select(*spec.column_names)

    def row_count(self, path: str) -> int | None:
        # Delta answers an unfiltered count from the log's statistics (a metadata-only query).
        return int(self.spark.read.format("delta").load(path).count())

    def version(self, path: str) -> int:
        row = self._delta_table.forPath(self.spark, path).history(1).select("version").first()
        return int(row[0]) if row else -1

    def history(self, path: str) -> list[dict[str, Any]]:
        rows = self._delta_table.forPath(self.spark, path).history().select(
            "version", "timestamp", "operation", "operationParameters"
        )
        # History is one row per commit: bounded by the log, not by the data.
        return [
            {"version": int(r[0]), "timestamp": r[1], "operation": r[2], "parameters": dict(r[3] or {})}
            for r in rows.collect()
        ]

    def is_conflict(self, exc: BaseException) -> bool:
        text = f"{type(exc).__name__} {exc}"
        return any(name in text for name in CONFLICT_NAMES)

    def _already_applied(self, path: str, txn: Txn | None) -> bool:
        if txn is None or not self.exists(path):
            return False
        jvm = self.spark._jvm  # noqa: SLF001
        assert jvm is not None
        log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(self.spark._jsparkSession, path)  # noqa: SLF001
        applied = log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty()).transactions().get(txn.app_id)
        return bool(applied.isDefined()) and int(applied.get()) >= txn.version

    def append(self, path: str, df: DataFrame, spec: TableSpec, txn: Txn | None) -> Commit:
        before = self.version(path)
        writer = df.write.format("delta").mode("append")
        if txn:
            writer = writer.option("txnAppId", txn.app_id).option("txnVersion", txn.version)
        writer.save(path)
        after = self.version(path)
        return Commit(spec.qualified_name, after, after != before, "append", "jvm")

    def overwrite(
        self, path: str, df: DataFrame, spec: TableSpec, partitions: PartitionFilter | None, txn: Txn | None
    ) -> Commit:
        before = self.version(path)
        writer = df.write.format("delta").mode("overwrite")
        if partitions:
            writer = writer.option("replaceWhere", partition_predicate(partitions))
        if txn:
            writer = writer.option("txnAppId", txn.app_id).option("txnVersion", txn.version)
        writer.save(path)
        after = self.version(path)
        return Commit(spec.qualified_name, after, after != before, "overwrite", "jvm")

    @contextmanager
    def _session_txn(self, txn: Txn | None) -> Iterator[None]:
        """MERGE/DELETE take the idempotency token from session conf, not from writer options."""
        if txn is None:
            yield
            return
        with self._txn_lock:
            self.spark.conf.set("spark.databricks.delta.write.txnAppId", txn.app_id)
            self.spark.conf.set("spark.databricks.delta.write.txnVersion", str(txn.version))
            try:
                yield
            finally:
                self.spark.conf.unset("spark.databricks.delta.write.txnAppId")
                self.spark.conf.unset("spark.databricks.delta.write.txnVersion")

    def merge(
        self, path: str, df: DataFrame, spec: TableSpec, keys: Sequence[str], update: bool, txn: Txn | None
    ) -> Commit:
        if self._already_applied(path, txn):
            return Commit(spec.qualified_name, self.version(path), False, "merge", "jvm")
        condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        with self._session_txn(txn):
            builder = self._delta_table.forPath(self.spark, path).alias("t").merge(df.alias("s"), condition)
            if update:
                builder = builder.whenMatchedUpdateAll()
            builder.whenNotMatchedInsertAll().execute()
        return Commit(spec.qualified_name, self.version(path), True, "merge", "jvm")

    def delete(self, path: str, spec: TableSpec, predicate: str) -> Commit:
        before = self.version(path)
        self._delta_table.forPath(self.spark, path).delete(predicate)
        after = self.version(path)
        return Commit(spec.qualified_name, after, after != before, "delete", "jvm")

    def delete_matching(
        self, path: str, spec: TableSpec, column: str, values: DataFrame, how: MatchHow
    ) -> Commit:
        value_col = values.columns[0]
        cond = f"t.`{column}` = s.`{value_col}`" if how == "equals" else f"t.`{column}` rlike s.`{value_col}`"
        for scope_col in values.columns[1:]:  # extra equality conditions (e.g. the source namespace)
            cond += f" AND t.`{scope_col}` = s.`{scope_col}`"
        before = self.version(path)
        self._delta_table.forPath(self.spark, path).alias("t").merge(values.alias("s"), cond).whenMatchedDelete().execute()
        after = self.version(path)
        return Commit(spec.qualified_name, after, after != before, "delete", "jvm")

    def vacuum(self, path: str, retention_hours: float) -> list[str]:
        # Delta's vacuum returns a one-row frame with the path; the removed files are only logged, so
        # report the files that disappeared by listing before/after (the table folder, not the data).
        import os

        def files() -> set[str]:
            out: set[str] = set()
            for root, dirs, names in os.walk(path.removeprefix("file:")):
                dirs[:] = [d for d in dirs if d != "_delta_log"]
                out.update(os.path.join(root, n) for n in names if n.endswith(".parquet"))
            return out

        before = files()
        self._delta_table.forPath(self.spark, path).vacuum(retention_hours)
        return sorted(before - files())

    def register_sql(self, qualified_name: str, path: str, spec: TableSpec) -> str:
        layer, _, name = qualified_name.partition(".")
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{layer}`")
        self.spark.sql(f"CREATE TABLE IF NOT EXISTS `{layer}`.`{name}` USING DELTA LOCATION '{path}'")
        return qualified_name
