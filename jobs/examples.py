"""Build stable user/item indices and the temporal-split examples: ``python -m jobs.examples``."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import examples
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    args = job_parser("jobs.examples", __doc__ or "").parse_args(main_guard(argv))
    cfg = start_job("examples", args)

    def body() -> int:
        for key, value in examples.run(build_spark(cfg), cfg).items():
            Console().print(f"  {key:<12} {value}")
        return 0

    return run_main("examples", body)


if __name__ == "__main__":
    sys.exit(main())
