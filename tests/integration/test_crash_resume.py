"""Kill real job processes at points inside every job; the reruns must converge to an uninterrupted run.

One uninterrupted ``jobs.run_all`` (then ``jobs.forget_user``) on a small synthetic platform is the reference.
A second lake is built by a chain of runs, each SIGKILLed (or, for training, its workers) at a fail point and
each resuming what the previous kill left: the tables must be readable after every kill, and once the chain
has run to the end every table's content must equal the reference's (volatile columns aside).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from socialrec.faults import ENV as FAILPOINT_ENV
from socialrec.schema.tables import all_tables

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SMALL = [
    "data.synthetic.users=150", "data.synthetic.items=120", "data.synthetic.events=3000",
    "data.synthetic.batches=2", "data.synthetic.seed=11", "data.synthetic.dirt_rate=0.03",
    # Fixed, so that both lakes write the same partition even across midnight.
    "recommend.run_date=2024-07-01",
    "evaluate.baselines.models=[most_popular,item_knn]",
]
# Wall-clock and run-identity columns; everything else must be identical.
VOLATILE = {"quarantined_at", "audited_at", "_ingested_at", "evaluated_at", "generated_at", "created_at", "run_id"}
# A user whose raw id is in parsed rows and in unparseable bronze lines (kept whole in ``_raw``).
FORGOTTEN = "u10000005"
NAMES_FORGOTTEN = re.compile(rf"(?<![A-Za-z0-9]){FORGOTTEN}(?![A-Za-z0-9])")


def run(root: Path, args: list[str], failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, "COLUMNS": "400"}
    env.pop(FAILPOINT_ENV, None)
    if failpoint:
        env[FAILPOINT_ENV] = failpoint
    cmd = [sys.executable, "-m", *args, "--env", "test", "--set", f"paths.root={root}"]
    for s in SMALL:
        cmd += ["--set", s]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def stages(*names: str, extra: tuple[str, ...] = ()) -> list[str]:
    out = ["jobs.run_all"]
    for n in names:
        out += ["--only", n]
    for s in extra:
        out += ["--set", s]
    return out


def cell(value: object, root: Path) -> str:
    if isinstance(value, float):
        return f"{value:.9g}"  # sums in another order may differ in the last bit
    return str(value).replace(str(root), "<root>")  # paths name each lake's own root


def lake_state(root: Path) -> dict[str, list[tuple[str, ...]]]:
    """Every table's current rows, sorted, read by DuckDB from the files the Delta log lists (independent of
    Spark, and proof that the table is readable)."""
    out = {}
    for spec in all_tables():
        path = root / "lake" / spec.layer / spec.name
        if not (path / "_delta_log").is_dir():
            continue
        files = [f.removeprefix("file://") for f in DeltaTable(str(path)).file_uris()]
        cols = ", ".join(f'"{c}"' for c in spec.column_names if c not in VOLATILE)
        rows = duckdb.sql(f"SELECT {cols} FROM read_parquet({files!r})").fetchall() if files else []
        out[spec.qualified_name] = sorted(tuple(cell(v, root) for v in r) for r in rows)
    return out


@dataclass(frozen=True)
class Kill:
    args: list[str]
    failpoint: str
    killed_in: str  # the stage the fail point is in (run_all logs "stage X done" for the others)


# Each run resumes the stage the previous one killed, then dies in the next. Together: bronze half-written with
# no batch marker; events merged into silver without their quarantine rows; a batch merged but not marked
# clean (the audit is the marker); embeddings cached but no item text; some graph tables rebuilt and the
# rest stale; one feature table merged; an index extended but no examples; training workers killed after
# epoch 1 (the rerun resumes from its checkpoint); recommendations written as files but not committed (the
# distributed write path); evaluation splits written but no model evaluated; an MLflow evaluation run open
# but no figures in the lake.
CHAIN = [
    Kill(stages("ingest", "clean"), "ingest:after-stream@3", "ingest"),
    Kill(stages("ingest", "clean"), "clean:after-silver-merge@3", "clean"),
    Kill(stages("ingest", "clean"), "clean:before-audit@1", "clean"),
    Kill(stages("ingest", "clean", "embeddings"), "embeddings:before-item-text", "embeddings"),
    Kill(stages("embeddings", "graph"), "graph:after-table@2", "graph"),
    Kill(stages("graph", "features"), "features:after-table@1", "features"),
    Kill(stages("features", "examples"), "examples:after-index@1", "examples"),
    Kill(stages("examples", "train"), "train.epoch.1", "train"),
    Kill(stages("train", "recommend", extra=("lake.write_path=staged",)), "lake:before-staged-commit", "recommend"),
    Kill(stages("recommend", "evaluate"), "evaluate:after-splits", "evaluate"),
    Kill(stages("evaluate"), "evaluate:before-append", "evaluate"),
]
FORGET = ["jobs.forget_user", "--user-id", FORGOTTEN]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[tuple[str, ...]]]]:
    root = tmp_path_factory.mktemp("reference")
    done = run(root, ["jobs.run_all"])
    assert done.returncode == 0, done.stderr[-3000:]
    before = lake_state(root)
    forgot = run(root, FORGET)
    assert forgot.returncode == 0, forgot.stdout[-3000:] + forgot.stderr[-3000:]
    return {"pipeline": before, "forget": lake_state(root)}


def test_every_job_killed_mid_way_converges_on_rerun(tmp_path: Path, reference) -> None:  # type: ignore[no-untyped-def]
    for kill in CHAIN:
        killed = run(tmp_path, kill.args, kill.failpoint)
        log = killed.stdout + killed.stderr
        if kill.failpoint.startswith("train."):
            # The training workers die; the job reports the failure (it is not killed itself).
            assert killed.returncode != 0 and "TorchDistributor failed" in log, (kill, log[-3000:])
        else:
            assert killed.returncode == -signal.SIGKILL, (kill, log[-3000:])
        assert f"stage {kill.killed_in} done" not in log, (kill, "the fail point was not reached in that stage")
        assert lake_state(tmp_path)  # every table the kill left is readable from its log
    resumed = run(tmp_path, stages("evaluate"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = lake_state(tmp_path)
    assert set(state) == set(reference["pipeline"])
    for table, rows in reference["pipeline"].items():
        assert state[table] == rows, table

    # Forgetting, killed after its first table's deletes (before that table's vacuum), then rerun.
    killed = run(tmp_path, FORGET, "forget:before-vacuum@1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    forgot = run(tmp_path, FORGET)
    assert forgot.returncode == 0, forgot.stdout[-3000:] + forgot.stderr[-3000:]  # 1: files still hold the user
    state = lake_state(tmp_path)
    for table, rows in reference["forget"].items():
        assert state[table] == rows, table
    # The user's rows, parsed or not, are gone, and only theirs: every other row is still there.
    malformed = [r for r in reference["pipeline"]["bronze.social_edges"] if "malformed JSON" in " ".join(r)]
    assert any(NAMES_FORGOTTEN.search(" ".join(r)) for r in malformed)
    for table, rows in reference["pipeline"].items():
        kept = reference["forget"][table]
        assert not any(NAMES_FORGOTTEN.search(" ".join(r)) for r in kept), table
        assert set(kept) <= set(rows), table
    assert len(reference["forget"]["bronze.users"]) == len(reference["pipeline"]["bronze.users"]) - 1
