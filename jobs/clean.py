"""Clean pending bronze batches into silver: ``python -m jobs.clean [--dataset ciao] [--batch B]``."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import clean
from socialrec.pipelines.report import print_audit
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser("jobs.clean", __doc__ or "")
    parser.add_argument("--dataset", help="whose source to clean (default: data.dataset)")
    parser.add_argument("--batch", action="append", help="re-clean this batch even if already clean (repeatable)")
    args = parser.parse_args(main_guard(argv))
    cfg = start_job("clean", args)

    def body() -> int:
        print_audit(clean.run(build_spark(cfg), cfg, dataset=args.dataset, force_batches=args.batch))
        return 0

    return run_main("clean", body)


if __name__ == "__main__":
    sys.exit(main())
