"""Build gold behaviour/item features and sequences: ``python -m jobs.features [--cutoff 2024-06-01T00:00:00]``."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime

from rich.console import Console

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import features
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser("jobs.features", __doc__ or "")
    parser.add_argument("--cutoff", type=datetime.fromisoformat, help="as-of time (default: after the latest event)")
    args = parser.parse_args(main_guard(argv))
    cfg = start_job("features", args)

    def body() -> int:
        counts = features.run(build_spark(cfg), cfg, args.cutoff)
        for table, n in counts.items():
            Console().print(f"  {table:<22} {n:,} rows")
        return 0

    return run_main("features", body)


if __name__ == "__main__":
    sys.exit(main())
