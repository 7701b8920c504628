"""Evaluate socialrec's model, its ablations and the baselines under one protocol (full ranking); write
gold.evaluation, an MLflow run and a report: ``python -m jobs.evaluate [--set evaluate.protocol=random]``."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import evaluate
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    args = job_parser("jobs.evaluate", __doc__ or "").parse_args(main_guard(argv))
    cfg = start_job("evaluate", args)

    def body() -> int:
        evaluate.print_summary(evaluate.run(build_spark(cfg), cfg), Console())
        return 0

    return run_main("evaluate", body)


if __name__ == "__main__":
    sys.exit(main())
