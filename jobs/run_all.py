"""Run the whole pipeline on the configured data in one session: ``python -m jobs.run_all``."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.lake import Lake
from socialrec.pipelines import all as pipeline
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser("jobs.run_all", __doc__ or "")
    parser.add_argument("--only", action="append", metavar="STAGE",
                        help="run only this stage (repeatable): " + ", ".join(n for n, _ in pipeline.STAGES))
    args = parser.parse_args(main_guard(argv))
    cfg = start_job("run_all", args)

    def body() -> int:
        spark = build_spark(cfg)
        lake = Lake(spark, cfg)
        before = pipeline.table_versions(lake)
        results: dict[str, Any] = {}
        timings = pipeline.run(spark, cfg, args.only, results)
        pipeline.print_run_summary(Console(), cfg, lake, before, timings, results)
        return 0

    return run_main("run_all", body)


if __name__ == "__main__":
    sys.exit(main())
