"""The job entry points as a user runs them: real subprocesses, real JVMs, a throw-away lake."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import job_env

REPO = Path(__file__).resolve().parents[2]


SMALL = ["--set", "data.synthetic.users=120", "--set", "data.synthetic.items=100", "--set", "data.synthetic.events=2000"]


def run_job(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = job_env(COLUMNS="400")  # log lines unwrapped, so messages can be matched whole
    return subprocess.run(
        [sys.executable, "-m", *args, "--env", "test", "--set", f"paths.root={root}", *SMALL],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow
def test_run_all_on_the_default_data_builds_every_table_a_model_that_beats_most_popular_and_recommendations(default_run) -> None:  # type: ignore[no-untyped-def]
    """``make run`` end to end on the embedded default data (the ``default_run`` fixture runs it once)."""
    done, root = default_run["done"], default_run["root"]
    assert str(root / "lake") in done.stdout and "mlflow" in done.stdout and "logs" in done.stdout
    assert (root / "lake" / "silver" / "events" / "_delta_log").is_dir()
    assert "Delta engine: delta-" in done.stderr  # the engine and why are logged at start
    assert "silver.audit" in done.stdout and "quarantined" in done.stdout  # the audit counts are printed
    # the one-screen summary: tables written with rows and versions, MLflow runs, the report, time per stage
    assert "tables written by this run" in done.stdout and "gold.evaluation" in done.stdout
    assert "MLflow train run:" in done.stdout and "MLflow evaluate run:" in done.stdout
    assert "evaluation report:" in done.stdout and "time per stage" in done.stdout

    shown = run_job("jobs.sql", "SHOW TABLES IN silver", "--format", "csv", root=root)
    assert shown.returncode == 0, shown.stderr
    tables = {row["tableName"] for row in csv.DictReader(io.StringIO(shown.stdout))}
    assert {"users", "items", "events", "social_edges", "reviews", "quarantine", "audit"} <= tables

    counted = run_job("jobs.sql", "SELECT count(*) AS n FROM silver.events", "--format", "json", root=root)
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout.strip())["n"] > 40_000

    # Resource limits: too large for the configured driver memory fails early, with the setting to change.
    big = run_job("jobs.sql", "SELECT * FROM silver.events", "--limit", "100000", "--set", "spark.max_result_size=1k",
                  root=root)
    assert big.returncode == 1 and "Traceback" not in big.stderr, big.stderr[-3000:]
    assert "exceeded spark.driver.maxResultSize" in big.stderr and "Raise spark.max_result_size" in big.stderr
    small_driver = run_job("jobs.evaluate", "--set", "spark.driver_collect_fraction=0.0001", root=root)
    assert small_driver.returncode == 1 and "Traceback" not in small_driver.stderr, small_driver.stderr[-3000:]
    assert "on the driver" in small_driver.stderr and "Raise spark.driver_memory" in small_driver.stderr
    assert "socialrec.pipelines.evaluate" not in small_driver.stderr  # failed before the evaluation logged any work

    # Training: a new registered version whose validation NDCG@10 beats MostPopular on the same split, both
    # figures from the same MLflow run.
    from mlflow.tracking import MlflowClient

    mc = MlflowClient(f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    first = mc.get_model_version("socialrec-two-tower", "1")
    metrics = mc.get_run(first.run_id).data.metrics
    assert metrics["best_val_ndcg_at_10"] > metrics["val_mostpop_ndcg_at_10"] > 0, metrics
    assert "socialrec-two-tower v1 registered" in done.stdout

    # Recommendations: every indexed user has k of them, each with at least one reason, and three example
    # users' lists were printed.
    query = ("SELECT (SELECT count(*) FROM gold.user_index) AS indexed, count(DISTINCT user_id) AS users, "
             "count(*) AS n, min(size(reasons)) AS min_reasons, max(rank) AS max_rank FROM gold.recommendations")
    recs = run_job("jobs.sql", query, "--format", "json", root=root)
    assert recs.returncode == 0, recs.stderr
    got = json.loads(recs.stdout.strip())
    assert got["users"] == got["indexed"] > 1000 and got["n"] == got["users"] * got["max_rank"]
    assert got["min_reasons"] >= 1
    assert done.stdout.count("user ") >= 3 and "gold.recommendations run_date=" in done.stdout


@pytest.mark.slow
def test_bad_config_fails_at_start_with_the_key_and_allowed_values(tmp_path: Path) -> None:
    done = run_job("jobs.init_lake", "--set", "lake.engine=fast", root=tmp_path)
    assert done.returncode == 2
    assert "lake.engine" in done.stderr and "'delta-rs'" in done.stderr
    assert not (tmp_path / "lake").exists()  # nothing ran


@pytest.mark.slow
def test_every_job_has_help() -> None:
    # Discovered, not listed: a new job without --help (or without a description) fails here.
    jobs = sorted(f"jobs.{p.stem}" for p in (REPO / "jobs").glob("*.py") if p.stem != "__init__")
    assert {"jobs.evaluate", "jobs.train", "jobs.forget_user", "jobs.sql"} <= set(jobs)
    for job in jobs:
        done = subprocess.run([sys.executable, "-m", job, "--help"], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, (job, done.stderr[-2000:])
        assert "--set" in done.stdout and "--env" in done.stdout, job
        usage, _, rest = done.stdout.partition("\n\n")
        assert usage.startswith(f"usage: {job.split('.')[1]}") or usage.startswith(f"usage: {job}"), (job, usage)
        assert rest.split("\n", 1)[0].strip(), f"{job} --help has no description"


@pytest.mark.slow
def test_missing_dataset_is_a_clear_message(tmp_path: Path) -> None:
    done = run_job("jobs.run_all", "--set", "data.dataset=ciao", "--set", f"data.datasets_dir={tmp_path}/none", root=tmp_path)
    assert done.returncode == 1
    assert "ciao: input folder" in done.stderr and "not found" in done.stderr
