"""Land a source in bronze: ``python -m jobs.ingest [--dataset ciao] [--path DIR] [--batch B] [--force]``."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines import ingest
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser("jobs.ingest", __doc__ or "")
    parser.add_argument("--dataset", help="synthetic, feed or a public dataset (default: data.dataset)")
    parser.add_argument("--path", help="input folder (default: see data.path)")
    parser.add_argument("--batch", action="append", help="only this batch (repeatable); re-ingests it")
    parser.add_argument("--force", action="store_true", help="re-ingest batches that are already in bronze")
    args = parser.parse_args(main_guard(argv))
    cfg = start_job("ingest", args)

    def body() -> int:
        report = ingest.run(build_spark(cfg), cfg, dataset=args.dataset, path=args.path, batches=args.batch, force=args.force)
        console = Console()
        for batch, rows in report.ingested.items():
            console.print(f"  {report.source}/{batch}: " + ", ".join(f"{s} {n:,}" for s, n in rows.items()))
        if report.skipped:
            console.print(f"  already in bronze (use --force): {', '.join(report.skipped)}")
        return 0

    return run_main("ingest", body)


if __name__ == "__main__":
    sys.exit(main())
