"""Generate the seeded synthetic platform feed: ``python -m jobs.generate_data [--out PATH] [--force] [--set k=v]``.

Parameters come from ``data.synthetic.*`` (e.g. ``--set data.synthetic.events=1000000``); the feed is only
regenerated when they changed, unless ``--force``.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.config import AppConfig
from socialrec.synth import GeneratorReport, ensure_platform, generate_platform

logger = logging.getLogger(__name__)


def run(cfg: AppConfig, out: str, force: bool) -> GeneratorReport:
    """Generate (or reuse) the feed under ``out`` with a progress bar on stderr."""
    make = generate_platform if force else ensure_platform
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("synthetic platform", total=None)
        report = make(
            out,
            cfg.data.synthetic,
            platform_launch=cfg.clean.platform_launch,
            max_text_chars=cfg.clean.max_text_chars,
            progress=lambda stage, done, total: bar.update(task, description=stage, completed=done, total=total),
        )
    logger.info("%s synthetic platform at %s", "generated" if report.generated else "reused", report.out_dir)
    return report


def summary(report: GeneratorReport) -> Table:
    """Rows per stream and dirt counts, for the final console output."""
    table = Table(title=f"synthetic platform: {report.out_dir}")
    table.add_column("stream / dirt kind")
    table.add_column("rows", justify="right")
    for stream, n in report.stream_rows.items():
        table.add_row(stream, f"{n:,}")
    for kind, n in report.dirt.items():
        table.add_row(f"  dirt: {kind}", f"{n:,}")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser("jobs.generate_data", __doc__ or "")
    parser.add_argument("--out", default=None, help="output folder (default <paths.root>/data/synthetic)")
    parser.add_argument("--force", action="store_true", help="regenerate even when the parameters are unchanged")
    args = parser.parse_args(main_guard(argv))
    cfg = start_job("generate_data", args)
    out = cfg.resolve(args.out or cfg.paths.data_dir() + "/synthetic")
    return run_main("generate_data", lambda: Console().print(summary(run(cfg, out, args.force))))


if __name__ == "__main__":
    sys.exit(main())
