"""Logging set-up, called once by each job (modules use ``logging.getLogger(__name__)``)."""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


_ACTIVE: list[Progress] = []  # the live display, when one is running (rich allows one live display at a time)


@contextmanager
def progress() -> Iterator[Progress]:
    """The rich progress display on the logging console; nested calls share the outer display.

    rich refuses a second live display, so a stage's own bars (``progress_task``) join the pipeline's display
    instead of opening another one. When stderr is not a terminal rich renders nothing live.
    """
    if _ACTIVE:
        yield _ACTIVE[-1]
        return
    display = Progress(
        SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeElapsedColumn(), console=STDERR, transient=False,
    )
    with display:
        _ACTIVE.append(display)
        try:
            yield display
        finally:
            _ACTIVE.pop()


class ProgressTask:
    """One bar of the shared display: ``advance()``, ``update(completed=..., description=...)``."""

    def __init__(self, display: Progress, task_id: int, description: str) -> None:
        self.display, self.task_id, self.description = display, task_id, description

    def advance(self, steps: float = 1) -> None:
        self.display.advance(self.task_id, steps)  # type: ignore[arg-type]

    def update(self, *, completed: float | None = None, total: float | None = None, description: str | None = None) -> None:
        self.display.update(self.task_id, completed=completed, total=total, description=description)  # type: ignore[arg-type]


@contextmanager
def progress_task(description: str, total: float | None) -> Iterator[ProgressTask]:
    """A bar for one piece of long work inside a stage; removed from the display when the work ends."""
    with progress() as display:
        task = ProgressTask(display, display.add_task(description, total=total), description)
        try:
            yield task
        finally:
            display.remove_task(task.task_id)  # type: ignore[arg-type]


@contextmanager
def poll_progress(description: str, total: float, probe: Callable[[], float], every_s: float = 1.0) -> Iterator[ProgressTask]:
    """A bar fed by polling ``probe()`` from a driver thread: for work that runs in other processes.

    Training runs in TorchDistributor's processes; the driver sees their progress as the checkpoints they write,
    so ``probe`` counts those. A probe that fails is logged once and the bar simply stops moving.
    """
    stop = threading.Event()
    with progress_task(description, total) as task:

        def poll() -> None:
            warned = False
            while not stop.wait(every_s):
                try:
                    task.update(completed=min(float(probe()), total))
                except Exception as exc:  # noqa: BLE001 - a progress bar must never break the work it shows
                    if not warned:
                        logging.getLogger(__name__).debug("progress probe for %r failed: %s", description, exc)
                        warned = True

        thread = threading.Thread(target=poll, name=f"progress: {description}", daemon=True)
        thread.start()
        try:
            yield task
        finally:
            stop.set()
            thread.join(timeout=5)
            with contextlib.suppress(Exception):  # see above: the final reading is best effort
                task.update(completed=min(float(probe()), total))
