"""Top-K recommendations with reasons into gold.recommendations: ``python -m jobs.recommend``."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import recommend
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    args = job_parser("jobs.recommend", __doc__ or "").parse_args(main_guard(argv))
    cfg = start_job("recommend", args)

    def body() -> int:
        recommend.print_examples(recommend.run(build_spark(cfg), cfg), Console())
        return 0

    return run_main("recommend", body)


if __name__ == "__main__":
    sys.exit(main())
