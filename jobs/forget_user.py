"""Forget a user everywhere: ``python -m jobs.forget_user --user-id <raw id> [--source ciao]``."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from socialrec.cli import job_parser, main_guard, run_main, start_job
from socialrec.pipelines.forget import forget_user
from socialrec.spark import build_spark


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser("jobs.forget_user", __doc__ or "")
    parser.add_argument("--user-id", required=True, help="the user's raw id as the source sent it")
    parser.add_argument("--source", help="the source the id belongs to (default: data.dataset's source)")
    parser.add_argument("--no-verify", action="store_true", help="skip scanning every file afterwards")
    args = parser.parse_args(main_guard(argv))
    cfg = start_job("forget_user", args)

    def body() -> int:
        report = forget_user(build_spark(cfg), cfg, args.user_id, args.source, verify=not args.no_verify)
        console = Console(soft_wrap=True)  # long paths stay on one line (scripts grep this output)
        for table, changed in report.tables.items():
            console.print(f"  {table:<22} {'deleted' if changed else '-'}")
        console.print(f"  vacuumed files: {report.vacuumed_files}")
        for cache in report.caches_deleted:
            console.print(f"  derived cache deleted (rebuilt by the next run): {cache}")
        for log, lines in report.logs_redacted.items():
            console.print(f"  log lines removed: {lines} in {log}")
        if report.retrain:
            console.print(f"[yellow]models trained on this user's data, to retrain ({len(report.retrain)}):[/yellow]")
            for m in report.retrain:
                aliases = f" (aliases: {', '.join(m['aliases'])})" if m["aliases"] else ""
                console.print(f"  {m['model']} v{m['version']}{aliases}  run {m['run_id']}")
        if report.input_export:
            console.print(f"  not touched: the source's own export {report.input_export} (delete the user there)")
        if report.remaining:
            console.print(f"[red]files still holding the id: {report.remaining}[/red]")
            return 1
        return 0

    return run_main("forget_user", body)


if __name__ == "__main__":
    sys.exit(main())
