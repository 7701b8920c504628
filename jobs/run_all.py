"""Run the whole pipeline on the configured data in one session: ``python -m jobs.run_all``."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import all as pipeline
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser("jobs.run_all", __doc__ or "")
    parser.add_argument("--only", action="append", help="run only this stage (repeatable)")
    args = parser.parse_args(main_guard(argv))
    cfg = start_job("run_all", args)

    def body() -> int:
        timings = pipeline.run(build_spark(cfg), cfg, args.only)
        console = Console()
        for stage, secs in timings.items():
            console.print(f"  {stage:<14} {secs:7.1f}s")
        for what, where in pipeline.locations(cfg).items():
            console.print(f"  {what:<7} {where}")
        return 0

    return run_main("run_all", body)


if __name__ == "__main__":
    sys.exit(main())
