"""Analysts' SQL over the lake (``jobs.sql``)."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import TextIO

from pyspark.sql import SparkSession

from socialrec.config import AppConfig
from socialrec.errors import SocialrecError
from socialrec.lake import Lake

logger = logging.getLogger(__name__)


def read_query(query: str) -> str:
    """``@file.sql`` reads the query from a file."""
    return Path(query[1:]).read_text() if query.startswith("@") else query


class ReadOnlyQueryError(SocialrecError):
    """``jobs.sql`` is the analysts' read-only door: a statement that would write or change state is refused."""


# Commands that only read (catalogue listings, descriptions, plans). Every other Catalyst Command (DDL, DML,
# SET, CACHE, ADD JAR, ...) and the two insert statements are refused, wherever they sit in the plan.
READ_ONLY_COMMANDS = frozenset({
    "ShowTables", "ShowTablesExtended", "ShowViews", "ShowNamespaces", "ShowColumns", "ShowCreateTable",
    "ShowTableProperties", "ShowPartitions", "ShowFunctions", "DescribeRelation", "DescribeColumn",
    "DescribeNamespace", "DescribeFunction", "ExplainCommand",
})
WRITE_STATEMENTS = frozenset({"InsertIntoStatement", "InsertIntoDir"})


def statement_kinds(spark: SparkSession, query: str) -> list[tuple[str, bool]]:
    """``(node class, is a Command)`` for every node of the parsed (unresolved) plan of ``query``."""
    jvm = spark._jvm
    assert jvm is not None
    command = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.plans.logical.Command")
    plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(query)
    out: list[tuple[str, bool]] = []
    stack = [plan]
    while stack:  # the plan of one statement: a handful of nodes
        node = stack.pop()
        out.append((str(node.getClass().getSimpleName()), bool(command.isAssignableFrom(node.getClass()))))
        children = node.children()
        stack.extend(children.apply(i) for i in range(children.size()))
    return out


def ensure_read_only(spark: SparkSession, query: str) -> None:
    """Raise :class:`ReadOnlyQueryError` unless ``query`` only reads (SELECT/WITH, SHOW, DESCRIBE, EXPLAIN)."""
    refused = [name for name, is_command in statement_kinds(spark, query)
               if name in WRITE_STATEMENTS or (is_command and name not in READ_ONLY_COMMANDS)]
    if refused:
        raise ReadOnlyQueryError(
            f"jobs.sql is read-only: {', '.join(sorted(set(refused)))} refused. Queries (SELECT, WITH, SHOW, "
            "DESCRIBE, EXPLAIN) only; the lake is written by the pipeline jobs (make run, python -m jobs.<stage>)"
        )


def run(spark: SparkSession, cfg: AppConfig, query: str, fmt: str, limit: int, out: TextIO) -> int:
    """Register the lake's tables, run ``query`` and print at most ``limit`` rows in ``fmt``."""
    lake = Lake(spark, cfg)
    names = lake.register_sql()
    logger.info("tables visible to SQL: %s", ", ".join(names) or "(none: run `make run` first)")
    text = read_query(query)
    ensure_read_only(spark, text)
    df = spark.sql(text)
    rows = df.limit(limit).collect()  # bounded by --limit
    columns = df.columns
    if fmt == "json":
        for r in rows:
            out.write(json.dumps(r.asDict(recursive=True), default=str) + "\n")
    elif fmt == "csv":
        w = csv.writer(out)
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(v) for v in r])
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns, show_lines=False)
        for r in rows:
            table.add_row(*[_cell(v) for v in r])
        Console(file=out, width=200).print(table)
    return 0


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)
