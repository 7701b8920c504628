"""Query the lake with SQL: ``python -m jobs.sql "SELECT * FROM silver.events LIMIT 5" [--format table|csv|json]``.

Every table is visible by its ``layer.name`` on both engines.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import sql as sql_stage
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser("jobs.sql", __doc__ or "")
    parser.add_argument("query", help="a SQL query, or @path/to/file.sql")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--limit", type=int, default=1000, help="max rows printed (default 1000)")
    args = parser.parse_args(main_guard(argv))
    cfg = start_job("sql", args)
    return run_main(
        "sql", lambda: sql_stage.run(build_spark(cfg), cfg, args.query, args.format, args.limit, sys.stdout)
    )


if __name__ == "__main__":
    sys.exit(main())
