"""The crash chain of ``test_crash_resume``: real job processes, killed at fail points, run in a background thread.

It is a sequence of subprocesses, so ``conftest`` starts it at collection (like ``default_run``) and it runs
while the in-process tests run; the test waits for it and asserts on what it recorded.

The platform is notebook 02's tiny one (``socialrec.config.tiny_platform``), and the uninterrupted reference is
that notebook's own run of every stage when ``test_notebooks`` runs in the same session (it hands its lake's
state over: a data engineer's stage-by-stage run and the chain of killed jobs must end with the same tables);
otherwise the chain first runs one uninterrupted ``jobs.run_all`` itself.
A second lake is built by a chain of runs, each SIGKILLed (or, for training, its workers) at a fail point and
each resuming what the previous kill left; after every kill the lake's state is read back from the Delta logs.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from socialrec.config import as_set_args, tiny_platform
from tests.conftest import job_env

REPO = Path(__file__).resolve().parents[2]
# Wall-clock and run-identity columns; everything else must be identical.
VOLATILE = {"quarantined_at", "audited_at", "_ingested_at", "evaluated_at", "generated_at", "created_at", "run_id"}
# A user whose raw id is in parsed rows and in unparseable bronze lines (kept whole in ``_raw``).
FORGOTTEN = "u10000005"
NAMES_FORGOTTEN = re.compile(rf"(?<![A-Za-z0-9]){FORGOTTEN}(?![A-Za-z0-9])")
FORGET = ["jobs.forget_user", "--user-id", FORGOTTEN]
State = dict[str, list[tuple[str, ...]]]


def stages(*names: str, extra: tuple[str, ...] = ()) -> list[str]:
    out = ["jobs.run_all"]
    for n in names:
        out += ["--only", n]
    for s in extra:
        out += ["--set", s]
    return out


@dataclass(frozen=True)
class Kill:
    args: list[str]
    failpoint: str
    killed_in: str  # the stage the fail point is in (run_all logs "stage X done" for the others)


# Each run resumes the stage the previous one killed, then dies in the next. Together: bronze half-written with
# no batch marker; a batch merged into silver but not marked clean (the audit is the marker); embeddings
# cached but no item text; some graph tables rebuilt and the rest stale; one feature table merged; an index
# extended but no examples; training workers killed after epoch 1 (the rerun resumes from its checkpoint);
# recommendations written as files but not committed (the distributed write path); evaluation splits
# written and an MLflow evaluation run open, but no figures in the lake. ``make test`` kills every job at one
# point (each point is a whole job process: within the test budget; tests/integration/test_training.py kills
# training's ranks at another point); ``make test-full`` (SOCIALREC_TEST_FULL=1) at every fail point there is,
# the ``FULL_ONLY`` ones too.
FULL = os.environ.get("SOCIALREC_TEST_FULL", "") not in ("", "0")
FULL_ONLY = {
    "ingest:after-stream@1", "clean:after-silver-merge@1", "clean:after-quarantine-merge@1", "graph:after-table@1",
    "features:after-table@2", "examples:after-index@2", "train:before-register", "recommend:after-write",
    "evaluate:after-splits", "forget:before-vacuum@2",
}
ALL_KILLS = [
    Kill(stages("ingest", "clean"), "ingest:after-stream@1", "ingest"),
    Kill(stages("ingest", "clean"), "ingest:after-stream@3", "ingest"),
    Kill(stages("ingest", "clean"), "clean:after-silver-merge@1", "clean"),
    Kill(stages("ingest", "clean"), "clean:after-quarantine-merge@1", "clean"),
    Kill(stages("ingest", "clean"), "clean:before-audit@1", "clean"),
    Kill(stages("ingest", "clean", "embeddings"), "embeddings:before-item-text", "embeddings"),
    Kill(stages("embeddings", "graph"), "graph:after-table@1", "graph"),
    Kill(stages("embeddings", "graph"), "graph:after-table@2", "graph"),
    Kill(stages("graph", "features"), "features:after-table@1", "features"),
    Kill(stages("graph", "features"), "features:after-table@2", "features"),
    Kill(stages("features", "examples"), "examples:after-index@1", "examples"),
    Kill(stages("features", "examples"), "examples:after-index@2", "examples"),
    Kill(stages("examples", "train"), "train.epoch.1", "train"),
    Kill(stages("examples", "train"), "train:before-register", "train"),
    Kill(stages("train", "recommend", extra=("lake.write_path=staged",)), "lake:before-staged-commit", "recommend"),
    Kill(stages("train", "recommend"), "recommend:after-write", "recommend"),
    Kill(stages("recommend", "evaluate"), "evaluate:after-splits", "evaluate"),
    Kill(stages("recommend", "evaluate"), "evaluate:before-append", "evaluate"),
    # then a run that finishes the chain, then forgetting: killed after a table's deletes (before that table's
    # vacuum), then rerun
]
CHAIN = [k for k in ALL_KILLS if FULL or k.failpoint not in FULL_ONLY]
RESUME = stages("evaluate")
FORGET_KILLS = [Kill(FORGET, f"forget:before-vacuum@{i}", "forget") for i in (1, 2)
                if FULL or f"forget:before-vacuum@{i}" not in FULL_ONLY]


def cell(value: object, root: Path) -> str:
    if isinstance(value, float):
        return f"{value:.9g}"  # sums in another order may differ in the last bit
    return str(value).replace(str(root), "<root>")  # paths name each lake's own root


def lake_state(root: Path) -> State:
    """Every table's current rows, sorted, read by DuckDB from the files the Delta log lists (independent of
    Spark, and proof that the table is readable)."""
    import duckdb
    from deltalake import DeltaTable

    from socialrec.schema.tables import all_tables

    out = {}
    for spec in all_tables():
        path = root / "lake" / spec.layer / spec.name
        if not (path / "_delta_log").is_dir():
            continue
        files = [f.removeprefix("file://") for f in DeltaTable(str(path)).file_uris()]
        cols = ", ".join(f'"{c}"' for c in spec.column_names if c not in VOLATILE)
        rows = duckdb.connect().sql(f"SELECT {cols} FROM read_parquet({files!r})").fetchall() if files else []
        out[spec.qualified_name] = sorted(tuple(cell(v, root) for v in r) for r in rows)
    return out


@dataclass
class Step:
    kill: Kill | None  # None: a run that must finish
    returncode: int
    log: str
    state: State | None = None  # read after the run
    unreadable: str | None = None  # why the state could not be read


@dataclass
class Results:
    reference: list[Step] = field(default_factory=list)  # run_all, when the chain ran its own reference
    chain: list[Step] = field(default_factory=list)  # the kills, the finishing run, the killed and rerun forget
    error: BaseException | None = None
    reference_state: State | None = None  # the uninterrupted run's tables
    reference_by: str = ""  # who ran it


class CrashChain:
    """Runs the reference and the chain in a daemon thread; :meth:`wait` returns what they recorded."""

    def __init__(self, base: Path | None, *, own_reference: bool) -> None:
        """``own_reference``: run the uninterrupted reference here, else wait for :meth:`provide_reference`."""
        self.root = Path(tempfile.mkdtemp(prefix="socialrec-crash-chain-", dir=base))
        self.own_reference = own_reference
        self.results = Results()
        self._reference_given = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run_all, name="crash-chain", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def provide_reference(self, state: State, by: str) -> None:
        """The state of an uninterrupted run of every stage on ``tiny_platform`` (notebook 02's)."""
        self.results.reference_state, self.results.reference_by = state, by
        self._reference_given.set()

    def wait(self, timeout: float) -> Results:
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.stop()
            raise TimeoutError(f"the crash chain did not finish in {timeout:.0f} s")
        if not self._reference_given.is_set():
            raise RuntimeError("no reference: the chain was told that test_notebooks would provide it, and it did not")
        return self.results

    def stop(self) -> None:
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._thread.join(30)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, root: Path, args: list[str], failpoint: str | None = None) -> tuple[int, str]:
        from socialrec.faults import ENV as FAILPOINT_ENV

        if self._stopping:
            raise RuntimeError("stopped")
        env = job_env(COLUMNS="400")  # unwrapped log lines
        env.pop(FAILPOINT_ENV, None)
        if failpoint:
            env[FAILPOINT_ENV] = failpoint
        cmd = [sys.executable, "-m", *args, "--env", "local", *as_set_args(tiny_platform(root))]
        # Output to a file, not a pipe: nobody reads a pipe while it runs.
        with tempfile.TemporaryFile("w+") as out:
            self._proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
            try:
                code = self._proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                raise
            out.seek(0)
            return code, out.read()

    def _step(self, root: Path, args: list[str], kill: Kill | None) -> Step:
        code, log = self._run(root, args, kill.failpoint if kill else None)
        step = Step(kill, code, log)
        try:
            step.state = lake_state(root)
        except Exception as exc:  # noqa: BLE001 - recorded: the test reports it
            step.unreadable = f"{type(exc).__name__}: {exc}"
        return step

    def _run_all(self) -> None:
        try:
            reference, chained = self.root / "reference", self.root / "chain"
            if self.own_reference:
                ref = self._step(reference, ["jobs.run_all"], None)
                self.results.reference.append(ref)
                if ref.returncode != 0 or ref.state is None:
                    raise RuntimeError(f"the reference run failed ({ref.returncode}, {ref.unreadable}): {ref.log[-3000:]}")
                self.provide_reference(ref.state, "jobs.run_all")
            for kill in CHAIN:
                self.results.chain.append(self._step(chained, kill.args, kill))
            self.results.chain.append(self._step(chained, RESUME, None))
            for kill in FORGET_KILLS:
                self.results.chain.append(self._step(chained, kill.args, kill))
            self.results.chain.append(self._step(chained, FORGET, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.results.error = exc
