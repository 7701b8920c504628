"""Train the two-tower model with TorchDistributor on petastorm data; track and register it in MLflow:
``python -m jobs.train``."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import train
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    args = job_parser("jobs.train", __doc__ or "").parse_args(main_guard(argv))
    cfg = start_job("train", args)

    def body() -> int:
        train.print_summary(train.run(build_spark(cfg), cfg), Console())
        return 0

    return run_main("train", body)


if __name__ == "__main__":
    sys.exit(main())
