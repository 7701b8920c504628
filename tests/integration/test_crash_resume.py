"""Kill a real job process at several points; the rerun must converge to the uninterrupted result."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from socialrec.faults import ENV as FAILPOINT_ENV
from socialrec.schema.tables import SILVER_AUDIT, SILVER_BY_STREAM, SILVER_QUARANTINE

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SMALL = [
    "data.synthetic.users=150", "data.synthetic.items=120", "data.synthetic.events=3000",
    "data.synthetic.batches=2", "data.synthetic.seed=11", "data.synthetic.dirt_rate=0.03",
]
VOLATILE = {"quarantined_at", "audited_at"}  # wall-clock columns; everything else must be identical


def run_pipeline(root: Path, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    env.pop(FAILPOINT_ENV, None)
    if failpoint:
        env[FAILPOINT_ENV] = failpoint
    args = [sys.executable, "-m", "jobs.run_all", "--env", "test", "--only", "ingest", "--only", "clean",
            "--set", f"paths.root={root}"]
    for s in SMALL:
        args += ["--set", s]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def silver_state(root: Path) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    for spec in (*SILVER_BY_STREAM.values(), SILVER_QUARANTINE, SILVER_AUDIT):
        # The snapshot's files (from the Delta log) read by DuckDB: independent of Spark and of the Arrow
        # schema delta-rs embeds (which pyarrow 14 cannot read back).
        files = [f.removeprefix("file://") for f in DeltaTable(str(root / "lake" / spec.layer / spec.name)).file_uris()]
        cols = [c for c in spec.column_names if c not in VOLATILE]
        rows = duckdb.sql(f"SELECT {', '.join(cols)} FROM read_parquet({files!r})").fetchall() if files else []
        # Quarantine records name their source file, which lives under each run's own root.
        out[spec.qualified_name] = sorted(tuple(str(v).replace(str(root), "<root>") for v in r) for r in rows)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[object, ...]]]:
    root = tmp_path_factory.mktemp("reference")
    done = run_pipeline(root)
    assert done.returncode == 0, done.stderr[-3000:]
    return silver_state(root)


# Killed again and again, each time resuming from what the previous crash left: bronze half-written with
# no batch marker; then b0001's events merged into silver without their quarantine rows; then a batch fully
# merged but not yet marked clean (the audit is the marker).
FAILPOINTS = ("ingest:after-stream@3", "clean:after-silver-merge@3", "clean:before-audit@1")


def test_repeatedly_killed_run_converges_on_rerun(tmp_path: Path, reference) -> None:  # type: ignore[no-untyped-def]
    for failpoint in FAILPOINTS:
        killed = run_pipeline(tmp_path, failpoint)
        assert killed.returncode == -signal.SIGKILL, (failpoint, killed.stderr[-3000:])
    resumed = run_pipeline(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert silver_state(tmp_path) == reference
    # (that a converged lake's rerun changes nothing is test_synthetic_pipeline's rerun test)
