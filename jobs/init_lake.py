"""Create the lake and all its tables: ``python -m jobs.init_lake [--env ENV] [--set k=v]``."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import lake_init
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    args = job_parser("jobs.init_lake", __doc__ or "").parse_args(main_guard(argv))
    cfg = start_job("init_lake", args)
    return run_main("init_lake", lambda: lake_init.run(build_spark(cfg), cfg) and 0)


if __name__ == "__main__":
    sys.exit(main())
