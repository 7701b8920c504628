"""A job as a cluster runs it: ``spark-submit jobs/<name>.py`` (docs/cluster.md), with the spark-submit script that
ships inside the pyspark package, on local[2] (``--env test``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_init_lake_runs_under_spark_submit_and_creates_every_table(tmp_path: Path) -> None:
    import pyspark

    from socialrec.schema.tables import all_tables

    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    assert spark_submit.is_file(), f"pyspark ships no spark-submit at {spark_submit}"
    # As in tests/integration/test_jobs.py: the workers and the driver run this interpreter, and the test
    # pseudonym key from tests/conftest.py is inherited. SPARK_HOME would point spark-submit at another Spark.
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    env.pop("SPARK_HOME", None)
    done = subprocess.run(
        [str(spark_submit), "jobs/init_lake.py", "--env", "test", "--set", f"paths.root={tmp_path}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    lake = tmp_path / "lake"
    missing = [s.qualified_name for s in all_tables() if not (lake / s.layer / s.name / "_delta_log").is_dir()]
    assert not missing, f"tables not created: {missing}\n{done.stderr[-3000:]}"
    # The engine choice is logged as for python -m jobs.init_lake. spark-submit merges the Python driver's stderr
    # into its stdout, and rich wraps long lines: compare words of both streams.
    assert "Delta engine: delta-" in " ".join((done.stdout + done.stderr).split())
