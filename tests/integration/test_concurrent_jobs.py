"""Two real job processes writing the same tables at once never lose a write (issue 9, DESIGN §8).

Two ``jobs.ingest`` processes land different batches of one feed into the same bronze tables and the same
``bronze ingest log`` at the same moment: Delta's optimistic concurrency makes one of each pair of commits lose the
race; the lake retries the idempotent write, so both jobs succeed and every row of both batches is there once.
(Thread-level races on one table, including a MERGE that fails clearly, are in tests/contract.)
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from socialrec.lake import Lake
from socialrec.schema import columns as C
from socialrec.schema.tables import BRONZE_BY_STREAM
from tests.conftest import REPO, job_env, lake_cfg

pytestmark = pytest.mark.slow


def write_batch(feed: Path, batch: str, n: int) -> None:
    folder = feed / batch
    folder.mkdir(parents=True)
    events = [{"event_id": f"{batch}-e{i}", "user_id": f"u{i % 7}", "item_id": f"i{i % 5}", "event_type": "view",
               "ts": "2024-03-01T10:00:00Z"} for i in range(n)]
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    users = [{"user_id": f"u{i}"} for i in range(7)]
    (folder / "users.jsonl").write_text("".join(json.dumps(u) + "\n" for u in users))


def test_two_ingest_jobs_at_once_both_land_every_row(spark, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "feed"
    write_batch(feed, "b1", 30)
    write_batch(feed, "b2", 40)
    env = job_env()
    base = [sys.executable, "-m", "jobs.ingest", "--env", "test", "--set", f"paths.root={tmp_path}",
            "--dataset", "feed", "--path", str(feed)]
    procs = [subprocess.Popen([*base, "--batch", b], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for b in ("b1", "b2")]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    lake = Lake(spark, lake_cfg(cfg, tmp_path))
    events = lake.read(BRONZE_BY_STREAM["events"])
    got = {r["batch"]: (r["n"], r["ids"]) for r in events.groupBy(F.col(C.B_BATCH_ID).alias("batch")).agg(
        F.count(F.lit(1)).alias("n"), F.countDistinct(C.EVENT_ID).alias("ids")).collect()}
    assert got == {"b1": (30, 30), "b2": (40, 40)}
    users = lake.read(BRONZE_BY_STREAM["users"]).groupBy(C.B_BATCH_ID).count()
    assert {r[C.B_BATCH_ID]: r["count"] for r in users.collect()} == {"b1": 7, "b2": 7}
