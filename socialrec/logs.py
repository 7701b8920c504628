"""Logging set-up, called once by each job (modules use ``logging.getLogger(__name__)``)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

_CONFIGURED = False
# One stderr console for log lines and progress bars, so a live bar and the logs above it do not garble.
STDERR = Console(stderr=True)
NOISY = ("py4j", "urllib3", "mlflow.utils", "alembic", "filelock", "numba")


def configure_logging(level: str = "INFO", log_dir: str | None = None, job: str = "socialrec") -> Path | None:
    """Console logging through rich, plus a plain file ``<log_dir>/<job>.log`` when ``log_dir`` is given.

    Returns the log file path (or None). Safe to call more than once: later calls only add nothing.
    """
    global _CONFIGURED
    root = logging.getLogger()
    log_file: Path | None = None
    if not _CONFIGURED:
        root.setLevel(level)
        # stderr: stdout belongs to the job's output (jobs.sql prints CSV/JSON there).
        console = RichHandler(console=STDERR, show_path=False, rich_tracebacks=False, markup=False)
        console.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(console)
        for name in NOISY:
            logging.getLogger(name).setLevel(logging.WARNING)
        _CONFIGURED = True
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        log_file = Path(log_dir) / f"{job}.log"
        if not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(log_file) for h in root.handlers):
            fh = logging.FileHandler(log_file)
            fh.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s"))
            root.addHandler(fh)
    return log_file


def progress() -> Progress:
    """A rich progress display on the logging console (a plain no-op display when stderr is not a terminal)."""
    return Progress(
        SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeElapsedColumn(), console=STDERR, transient=False,
    )
