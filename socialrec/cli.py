"""What every job shares: ``--env``, ``--set``, logging, config echo, session start-up."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from socialrec.config import ENVIRONMENTS, AppConfig, load_config
from socialrec.errors import SocialrecError
from socialrec.logs import configure_logging

logger = logging.getLogger(__name__)


def job_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every job takes."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--env", choices=ENVIRONMENTS, default=None, help="config environment (default $SOCIALREC_ENV or local)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value (repeatable), e.g. --set lake.engine=delta-rs",
    )
    return parser


def start_job(job: str, args: argparse.Namespace) -> AppConfig:
    """Load config (failing fast with a clear message), configure logging, log the resolved config."""
    try:
        cfg = load_config(args.env, args.overrides)
    except SocialrecError as exc:
        sys.stderr.write(f"{job}: {exc}\n")
        raise SystemExit(2) from None
    log_dir = cfg.resolve(cfg.paths.logs_dir()) if cfg.logging.to_file else None
    log_file = configure_logging(cfg.logging.level, log_dir, job)
    logger.info("%s starting (env=%s); log file: %s", job, cfg.env, log_file or "-")
    logger.debug("resolved configuration:\n%s", cfg.pretty())
    return cfg


def run_main(job: str, body: Callable[[], int | None]) -> int:
    """Run a job body; known errors end with their message and exit code 1, not a traceback."""
    from socialrec.resources import explain_failure

    try:
        return int(body() or 0)
    except SocialrecError as exc:
        logger.error("%s failed: %s", job, exc)
        return 1
    except Exception as exc:
        clear = explain_failure(exc)  # an oversized result or a JVM out-of-memory: say which setting to change
        if clear is None:
            raise
        logger.error("%s failed: %s", job, clear)
        return 1


def main_guard(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)
