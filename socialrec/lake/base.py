"""The engine interface of the lake layer. Engines know paths; the :class:`~socialrec.lake.Lake` facade
knows contracts, validation and retries."""
from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pyspark.sql import DataFrame, SparkSession

from socialrec.schema.tables import TableSpec

# Partition filter for overwrite: column -> value or list of values (equality / IN on partition columns).
PartitionFilter = Mapping[str, Any]
MatchHow = Literal["equals", "token"]

# Characters that can be part of an id: a value matches as a *token* only where neither neighbour is one of
# these, so forgetting "u10000005" leaves "u100000051" (and "x.u10000005") alone.
ID_CHARS = "A-Za-z0-9_.@+\\-"


def token_regex(value: str) -> str:
    """A regex (Java and Rust syntax: Spark's ``rlike``, DataFusion's ``regexp_like``) matching ``value`` as a
    whole token. Every character but ASCII letters and digits is written as ``\\x{HEX}``, which both dialects
    read literally; neither has look-behind, so the neighbours are matched (or a string end)."""
    body = "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):X}}}" for c in value)
    return f"(^|[^{ID_CHARS}]){body}($|[^{ID_CHARS}])"


def token_regex_bytes(value: str) -> re.Pattern[bytes]:
    """:func:`token_regex` for Python over raw bytes (log lines, commit logs, checkpoints)."""
    ids = ID_CHARS.encode()
    return re.compile(rb"(?<![" + ids + rb"])" + re.escape(value.encode()) + rb"(?![" + ids + rb"])")


@dataclass(frozen=True)
class Txn:
    """An idempotency token: committing the same ``(app_id, version)`` twice changes nothing.

    ``version`` must grow for each new batch of the same ``app_id`` (Delta's SetTransaction semantics).
    """

    app_id: str
    version: int


@dataclass(frozen=True)
class Commit:
    """What a write did: ``committed`` is False when the txn had already been applied."""

    table: str
    version: int
    committed: bool
    operation: str
    write_path: str = ""


def sql_literal(value: Any) -> str:
    """A SQL literal both engines parse (strings quoted with '' escaping)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def sql_in(column: str, values: Sequence[Any]) -> str:
    """``column IN (...)`` (``= v`` for one value) with properly quoted literals."""
    if not values:
        return "false"
    if len(values) == 1:
        return f"{column} = {sql_literal(values[0])}"
    return f"{column} IN ({', '.join(sql_literal(v) for v in values)})"


def partition_predicate(partitions: PartitionFilter) -> str:
    """SQL predicate for a partition filter mapping."""
    parts = []
    for col, value in partitions.items():
        vals = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        parts.append(sql_in(col, vals))
    return " AND ".join(parts) if parts else "true"


class LakeEngine(abc.ABC):
    """A Delta engine. All paths are table locations; all DataFrames already match the contract."""

    name: str

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def create(self, path: str, spec: TableSpec) -> None:
        """Create an empty table with the contract's schema and partitioning (no-op if it exists)."""

    @abc.abstractmethod
    def read(self, path: str, spec: TableSpec, version: int | None = None) -> DataFrame: ...

    @abc.abstractmethod
    def append(self, path: str, df: DataFrame, spec: TableSpec, txn: Txn | None) -> Commit: ...

    @abc.abstractmethod
    def overwrite(
        self, path: str, df: DataFrame, spec: TableSpec, partitions: PartitionFilter | None, txn: Txn | None
    ) -> Commit: ...

    @abc.abstractmethod
    def merge(
        self, path: str, df: DataFrame, spec: TableSpec, keys: Sequence[str], update: bool, txn: Txn | None
    ) -> Commit: ...

    @abc.abstractmethod
    def delete(self, path: str, spec: TableSpec, predicate: str) -> Commit: ...

    @abc.abstractmethod
    def delete_matching(
        self, path: str, spec: TableSpec, column: str, values: DataFrame, how: MatchHow
    ) -> Commit:
        """Delete rows whose ``column`` equals a value of the one-column frame ``values`` (``how="token"``: holds
        it as a whole token, the frame then holding :func:`token_regex` patterns); any further columns of ``values`` must equal the target's columns of the same name
        (a scope such as ``_source``). Done as a MERGE so the values never appear in the commit log (a DELETE records
        its predicate there, which vacuum never rewrites)."""

    @abc.abstractmethod
    def vacuum(self, path: str, retention_hours: float) -> list[str]:
        """Physically remove files no longer in the table; returns the removed files."""

    @abc.abstractmethod
    def history(self, path: str) -> list[dict[str, Any]]:
        """Commits, newest first: at least ``version``, ``timestamp``, ``operation``."""

    @abc.abstractmethod
    def version(self, path: str) -> int: ...

    def row_count(self, path: str) -> int | None:
        """Rows of the current version from the transaction log's file statistics (no data scan), or None when
        the engine cannot tell without one."""
        return None

    @abc.abstractmethod
    def register_sql(self, qualified_name: str, path: str, spec: TableSpec) -> str:
        """Make the table queryable as ``qualified_name`` in ``spark.sql``; returns the name to use."""

    def is_conflict(self, exc: BaseException) -> bool:
        """True when ``exc`` means another writer committed first (safe to retry idempotent writes)."""
        return False
