"""Analysts' SQL over the lake (``jobs.sql``)."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import TextIO

from pyspark.sql import SparkSession

from socialrec.config import AppConfig
from socialrec.lake import Lake

logger = logging.getLogger(__name__)


def read_query(query: str) -> str:
    """``@file.sql`` reads the query from a file."""
    return Path(query[1:]).read_text() if query.startswith("@") else query


def run(spark: SparkSession, cfg: AppConfig, query: str, fmt: str, limit: int, out: TextIO) -> int:
    """Register the lake's tables, run ``query`` and print at most ``limit`` rows in ``fmt``."""
    lake = Lake(spark, cfg)
    names = lake.register_sql()
    logger.info("tables visible to SQL: %s", ", ".join(names) or "(none: run `make run` first)")
    df = spark.sql(read_query(query))
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
