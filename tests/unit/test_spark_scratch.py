"""A killed local Spark job's scratch space (shuffle files) is removed by the next session, a live one's kept."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from socialrec.config import AppConfig
from socialrec.spark import local_scratch_dir, remove_stale_scratch


def _stopped_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stopped_processes_scratch_is_removed_and_running_ones_kept(tmp_path: Path) -> None:
    dead = local_scratch_dir(tmp_path, _stopped_pid())
    mine = local_scratch_dir(tmp_path)
    parent = local_scratch_dir(tmp_path, os.getppid())
    for d in (dead, mine, parent):
        (d / "blockmgr-1" / "0c").mkdir(parents=True)
        (d / "blockmgr-1" / "0c" / "shuffle_0_1_0.data").write_bytes(b"x" * 10)
    other = tmp_path / "spark-local" / "not-a-process-dir"
    other.mkdir()

    assert remove_stale_scratch(tmp_path) == [dead]
    assert sorted(p.name for p in (tmp_path / "spark-local").iterdir()) == sorted(
        [mine.name, parent.name, other.name])
    assert remove_stale_scratch(tmp_path) == []


def test_the_local_session_writes_its_scratch_under_its_own_process_dir(spark, cfg: AppConfig) -> None:  # type: ignore[no-untyped-def]
    local_dir = spark.sparkContext.getConf().get("spark.local.dir")
    assert Path(local_dir) == local_scratch_dir(Path(cfg.resolve(cfg.paths.tmp_dir())))
