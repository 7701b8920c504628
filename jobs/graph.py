"""Build the social graph, neighbourhoods, social proof and graph statistics: ``python -m jobs.graph [--cutoff ISO]``."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import graph
from socialrec.spark import build_spark


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """The counts of the four gold tables and the degree distribution in power-of-two buckets."""
    console = console or Console()
    console.print(
        f"  {summary['source']}: {summary['edges']:,} edges, {summary['users']:,} users, "
        f"{summary['components']:,} components (largest {summary['largest_component']:,}; stats by "
        f"{summary['stats_engine']})"
    )
    console.print(
        f"  neighbourhoods: {summary['neighbourhood_rows']:,} rows (hop 1: {summary['hop1_rows']:,}, "
        f"hop 2: {summary['hop2_rows']:,}); social proof: {summary['proof_rows']:,} rows as of {summary['cutoff_ts']}"
    )
    table = Table(title="degree distribution (users per degree bucket)")
    for col in ("degree", "users by in-degree", "users by out-degree"):
        table.add_column(col, justify="right")
    for b in summary["degree_buckets"]:
        lo, hi = b["degree_from"], b["degree_to"]
        table.add_row(str(lo) if lo == hi else f"{lo}-{hi}", f"{b['in_users']:,}", f"{b['out_users']:,}")
    console.print(table)
    console.print("  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["timings_s"].items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser("jobs.graph", __doc__ or "")
    parser.add_argument(
        "--cutoff",
        type=datetime.fromisoformat,
        help="build everything as of this time (ISO-8601, naive = UTC); default: all data",
    )
    args = parser.parse_args(main_guard(argv))
    cfg = start_job("graph", args)

    def body() -> int:
        print_summary(graph.run(build_spark(cfg), cfg, cutoff_ts=args.cutoff))
        return 0

    return run_main("graph", body)


if __name__ == "__main__":
    sys.exit(main())
