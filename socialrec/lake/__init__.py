"""The lake layer: one interface over two real Delta engines (DESIGN §3).

:class:`Lake` is what pipelines use. It maps a :class:`~socialrec.schema.tables.TableSpec` to a location,
enforces the contract on every write, retries commits that lost a race where that is safe, and delegates
to the engine chosen by ``lake.engine``:

* ``delta-spark`` when ``io.delta.sql.DeltaSparkSessionExtension`` is loadable (or demanded),
* ``delta-rs`` otherwise (the embedded default: Spark computes, delta-rs commits).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from socialrec.config import AppConfig
from socialrec.errors import LakeConflictError
from socialrec.lake.base import (
    Commit,
    LakeEngine,
    MatchHow,
    PartitionFilter,
    Txn,
    sql_in,
    sql_literal,
    token_regex,
)
from socialrec.schema.tables import TableSpec, all_tables
from socialrec.schema.validate import conform
from socialrec.spark import delta_spark_loadable

__all__ = ["Commit", "Lake", "PartitionFilter", "Txn", "choose_engine", "sql_in", "sql_literal"]

logger = logging.getLogger(__name__)


def choose_engine(spark: SparkSession, cfg: AppConfig) -> tuple[LakeEngine, str]:
    """The engine for ``cfg.lake.engine`` and a sentence saying why it was chosen."""
    wanted = cfg.lake.engine
    if wanted == "delta-spark" or (wanted == "auto" and delta_spark_loadable(spark)):
        from socialrec.lake.delta_spark import DeltaSparkEngine

        why = (
            "lake.engine=delta-spark"
            if wanted == "delta-spark"
            else "lake.engine=auto and io.delta.sql.DeltaSparkSessionExtension is loadable"
        )
        return DeltaSparkEngine(spark), why
    from socialrec.lake.delta_rs import DeltaRsEngine

    why = (
        "lake.engine=delta-rs"
        if wanted == "delta-rs"
        else "lake.engine=auto and the Delta JVM classes are not on the classpath (no jars resolved)"
    )
    return DeltaRsEngine(spark, cfg.lake.write_path, cfg.lake.arrow_max_bytes), why


class Lake:
    """Contract-checked access to the Delta tables under ``paths.lake``."""

    def __init__(self, spark: SparkSession, cfg: AppConfig, engine: LakeEngine | None = None) -> None:
        self.spark = spark
        self.cfg = cfg
        self.root = cfg.resolve(cfg.paths.lake_dir())
        if engine is None:
            engine, why = choose_engine(spark, cfg)
            logger.info("Delta engine: %s (%s)", engine.name, why)
        self.engine = engine

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def location(self, spec: TableSpec) -> str:
        """``<lake root>/<layer>/<name>``."""
        return f"{self.root.rstrip('/')}/{spec.layer}/{spec.name}"

    # ------------------------------------------------------------------------------- table lifecycle

    def exists(self, spec: TableSpec) -> bool:
        return self.engine.exists(self.location(spec))

    def ensure(self, spec: TableSpec) -> None:
        """Create the table from its contract if it does not exist yet."""
        if not self.exists(spec):
            if "://" not in self.location(spec):
                from pathlib import Path

                Path(self.location(spec)).mkdir(parents=True, exist_ok=True)
            self.engine.create(self.location(spec), spec)
            logger.info("created %s at %s", spec.qualified_name, self.location(spec))

    def ensure_all(self, specs: Iterable[TableSpec] | None = None) -> list[TableSpec]:
        specs = list(all_tables() if specs is None else specs)
        for spec in specs:
            self.ensure(spec)
        return specs

    # ------------------------------------------------------------------------------------- reads

    def read(self, spec: TableSpec, version: int | None = None) -> DataFrame:
        """The table (or the snapshot at ``version``) as a DataFrame with the contract's columns."""
        return self.engine.read(self.location(spec), spec, version)

    def version(self, spec: TableSpec) -> int:
        return self.engine.version(self.location(spec))

    def row_count(self, spec: TableSpec) -> int | None:
        """Rows of the current version from the log's statistics (None when the engine cannot tell cheaply)."""
        return self.engine.row_count(self.location(spec))

    def history(self, spec: TableSpec) -> list[dict[str, Any]]:
        return self.engine.history(self.location(spec))

    # ------------------------------------------------------------------------------------ writes

    def append(self, df: DataFrame, spec: TableSpec, txn: Txn | None = None) -> Commit:
        """Append rows. With ``txn``, a second commit of the same ``(app_id, version)`` is a no-op."""
        data = conform(df, spec)
        return self._retrying(spec, "append", lambda: self.engine.append(self.location(spec), data, spec, txn))

    def overwrite(
        self, df: DataFrame, spec: TableSpec, partitions: PartitionFilter | None = None, txn: Txn | None = None
    ) -> Commit:
        """Replace the whole table, or only the partitions matching ``partitions`` ({col: value(s)})."""
        data = conform(df, spec)
        # Not retried: an overwrite that lost a race must not silently replace the winner's data.
        return self.engine.overwrite(self.location(spec), data, spec, partitions, txn)

    def replace_source(self, df: DataFrame, spec: TableSpec, source: str) -> Commit:
        """Replace ``spec``'s rows of ``source`` with ``df`` in one commit, keeping every other source's rows.

        For tables not partitioned by source (a lake holds several platforms or datasets side by side): an overwrite
        of (other sources' current rows + the new rows). The replaced snapshot's files stay readable until vacuum, so
        reading them while overwriting is safe, and a crash before the commit leaves the old snapshot whole.
        """
        from pyspark.sql import functions as F

        from socialrec.schema import columns as C

        self.ensure(spec)
        others = self.read(spec).where(F.col(C.SOURCE) != source)
        return self.overwrite(others.unionByName(df.select(*spec.column_names)), spec)

    def merge(
        self,
        df: DataFrame,
        spec: TableSpec,
        keys: Sequence[str] | None = None,
        *,
        update: bool = True,
        txn: Txn | None = None,
    ) -> Commit:
        """Upsert on ``keys`` (default: the contract's keys). ``update=False`` inserts new keys only.

        The source must hold at most one row per key (Delta refuses ambiguous matches).
        """
        data = conform(df, spec)
        on = list(keys or spec.keys)
        return self._retrying(
            spec, "merge", lambda: self.engine.merge(self.location(spec), data, spec, on, update, txn)
        )

    def delete(self, spec: TableSpec, predicate: str) -> Commit:
        """Delete rows matching a SQL ``predicate`` (build it with :func:`sql_in` / :func:`sql_literal`).

        The predicate is written into the commit log, which vacuum never rewrites: never put personal data
        in it. To remove a person's rows use :meth:`delete_matching`.
        """
        return self._retrying(spec, "delete", lambda: self.engine.delete(self.location(spec), spec, predicate))

    def delete_matching(
        self,
        spec: TableSpec,
        column: str,
        values: Sequence[str],
        how: MatchHow = "equals",
        scope: Mapping[str, str] | None = None,
    ) -> Commit:
        """Delete rows whose ``column`` equals (``how="token"``, for JSON/text columns: holds as a whole token)
        one of ``values`` and whose ``scope`` columns equal the given values, leaving no trace of the values in
        the commit log."""
        from pyspark.sql.types import StringType, StructField, StructType

        scope = dict(scope or {})
        if how == "token":  # engines match the patterns (a plain substring would also hit longer ids)
            values = [token_regex(v) for v in values]
        fields = [StructField("value", StringType(), False)] + [StructField(c, StringType(), False) for c in scope]
        frame = self.spark.createDataFrame([(v, *scope.values()) for v in values], StructType(fields))
        return self._retrying(
            spec, "delete", lambda: self.engine.delete_matching(self.location(spec), spec, column, frame, how)
        )

    def vacuum(self, spec: TableSpec, retention_hours: float | None = None) -> list[str]:
        """Physically delete data files older than the retention that no current version references."""
        hours = self.cfg.lake.vacuum_retention_hours if retention_hours is None else retention_hours
        return self.engine.vacuum(self.location(spec), hours)

    def _retrying(self, spec: TableSpec, op: str, attempt: Any) -> Commit:
        retries = self.cfg.lake.commit_retries
        for i in range(retries + 1):
            try:
                result: Commit = attempt()
                return result
            except Exception as exc:
                if not self.engine.is_conflict(exc):
                    raise
                if i == retries:
                    raise LakeConflictError(
                        f"{op} on {spec.qualified_name} lost {retries + 1} commit races to concurrent writers; "
                        f"nothing was written by this attempt. Rerun the job (writes are idempotent). Cause: {exc}"
                    ) from exc
                logger.warning("%s on %s conflicted with a concurrent commit; retrying (%d/%d)",
                               op, spec.qualified_name, i + 1, retries)
                time.sleep(0.2 * (i + 1))
        raise AssertionError("unreachable")

    # --------------------------------------------------------------------------------------- SQL

    def register_sql(self, specs: Iterable[TableSpec] | None = None) -> list[str]:
        """Make every existing table queryable by its ``layer.name`` in ``spark.sql`` (both engines)."""
        names = []
        for spec in all_tables() if specs is None else specs:
            if self.exists(spec):
                names.append(self.engine.register_sql(spec.qualified_name, self.location(spec), spec))
        return names

    def sql(self, query: str) -> DataFrame:
        """Run ``query`` after registering the tables."""
        self.register_sql()
        return self.spark.sql(query)
