"""Progress display: stage bars share the pipeline's display, and bars follow work in other processes."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from pyspark.sql import SparkSession

from socialrec.logs import poll_progress, progress, progress_task
from socialrec.pipelines.train import epochs_done
from socialrec.spark import spark_progress, spark_tasks_done


def test_nested_bars_share_one_display_and_leave_no_task_behind() -> None:
    # rich refuses a second live display: a stage's bar must join the pipeline's, not open its own.
    with progress() as outer:
        pipeline = outer.add_task("pipeline", total=2)
        with progress_task("stage bar", 3) as bar, progress() as inner:
            assert inner is outer
            bar.advance()
            bar.advance()
            assert [(t.description, t.completed) for t in outer.tasks] == [("pipeline", 0), ("stage bar", 2)]
        assert [t.id for t in outer.tasks] == [pipeline]


def test_poll_progress_follows_the_probe_and_survives_a_failing_one() -> None:
    seen = {"n": 0}

    def probe() -> float:
        seen["n"] += 1
        return 7.0

    with progress() as display, poll_progress("epochs", 10, probe, every_s=0.05):
        deadline = time.time() + 5
        while seen["n"] < 2 and time.time() < deadline:
            time.sleep(0.02)
        assert [t.completed for t in display.tasks] == [7.0]

    def broken() -> float:
        raise OSError("checkpoint folder is gone")

    with poll_progress("broken", 3, broken, every_s=0.01):
        time.sleep(0.05)  # the work goes on; nothing is raised


def test_epochs_done_counts_checkpoints_by_their_epoch_number(tmp_path: Path) -> None:
    assert epochs_done(tmp_path) == 0
    for name in ("epoch-000.pt", "epoch-004.pt", "best.pt", "epoch-tmp.pt"):
        (tmp_path / name).write_bytes(b"")
    assert epochs_done(tmp_path) == 5


def test_spark_progress_reads_the_running_stage_from_the_status_tracker(spark: SparkSession) -> None:
    assert spark_tasks_done(spark) == (0, 0)

    def slow(batches):  # type: ignore[no-untyped-def]
        for batch in batches:
            time.sleep(0.5)
            yield batch

    seen: list[tuple[int, int]] = []
    job = threading.Thread(target=lambda: spark.range(0, 8, numPartitions=4).mapInPandas(slow, "id long").count())
    with spark_progress(spark, "test", every_s=0.05):
        job.start()
        deadline = time.time() + 60
        while job.is_alive() and time.time() < deadline:
            seen.append(spark_tasks_done(spark))
            time.sleep(0.05)
        job.join()
    running = [s for s in seen if s[1] > 0]
    assert running, "the status tracker never showed the running stage"
    assert all(0 <= done <= total for done, total in running)
    assert max(total for _, total in running) >= 4
