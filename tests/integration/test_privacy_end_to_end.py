"""Privacy across the whole pipeline, on the ``make run`` lake (DESIGN §8, issue 9).

* The console output of the whole run (every stage's log lines and summaries) names no raw user id.
* ``jobs.forget_user`` (a real process) leaves neither the raw id nor the pseudonym in any file the pipeline
  wrote: lake tables, training runs (checkpoints, query files), the petastorm and baseline caches, MLflow's
  store and artifacts, reports and logs; and it lists the models trained on the user as needing retraining.
  This test changes the shared lake, so it runs after every other test that reads it (``destroys_default_run``).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.lake import Lake
from socialrec.pipelines.evaluate import baselines_cache_dir
from socialrec.pipelines.forget import delete_derived_caches, pseudonym_of, redact_logs
from socialrec.schema import columns as C
from socialrec.schema.tables import BRONZE_BY_STREAM, GOLD_EXAMPLES, GOLD_RECOMMENDATIONS, GOLD_USER_INDEX
from tests.conftest import REPO, job_env

RAW_USER_ID = re.compile(r"u\d{8}")  # the synthetic platform's raw user ids (tests/unit/test_synth.py)
HARNESS_FILES = {"stdout.txt", "stderr.txt"}  # the test harness's capture of make run's console, not the pipeline's


def files_holding(root: Path, needles: list[str], skip: list[Path]) -> list[str]:
    """Every file under ``root`` (outside ``skip``) holding a needle, read independently of the pipeline:
    Parquet through DuckDB, everything else as bytes."""
    hits = []
    for dirpath, dirs, files in os.walk(root):
        if any(Path(dirpath).resolve() == s.resolve() for s in skip):
            dirs.clear()
            continue
        for name in files:
            p = Path(dirpath) / name
            if name in HARNESS_FILES or (p.is_symlink() and not p.exists()):
                continue
            if name.endswith(".parquet"):
                blob = json.dumps(duckdb.sql(f"SELECT * FROM read_parquet('{p}')").fetchall(), default=str).encode()
            else:
                blob = p.read_bytes()
            if any(n.encode() in blob for n in needles):
                hits.append(str(p.relative_to(root)))
    return sorted(hits)


@pytest.mark.slow
def test_make_run_console_output_names_no_raw_user_id(default_run, spark) -> None:  # type: ignore[no-untyped-def]
    cfg: AppConfig = default_run["cfg"]
    raw_ids = {r[C.USER_ID] for r in Lake(spark, cfg).read(BRONZE_BY_STREAM["users"]).select(C.USER_ID).collect()}
    assert len(raw_ids) > 1000
    printed = default_run["done"].stdout + default_run["done"].stderr
    assert "silver.audit" in printed and "stage recommend done" in printed  # the whole run's output is here
    assert sorted(set(RAW_USER_ID.findall(printed)) & raw_ids) == []


def test_derived_caches_with_per_user_rows_are_deleted(cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"root": str(tmp_path), "tmp": None}),
                               "train": cfg.train.model_copy(update={"cache_dir": None})})
    petastorm = tmp_path / "tmp" / "petastorm" / "key1"
    baselines = baselines_cache_dir(c) / "lightgcn-abc"
    for folder in (petastorm, baselines):
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"per-user rows")
    (tmp_path / "tmp" / "keep.txt").write_text("other scratch")
    assert delete_derived_caches(c) == [str(tmp_path / "tmp" / "petastorm"), str(baselines_cache_dir(c))]
    assert not petastorm.exists() and not baselines.exists() and (tmp_path / "tmp" / "keep.txt").exists()
    assert delete_derived_caches(c) == []  # nothing left: a rerun is a no-op


def test_redact_logs_removes_only_the_lines_naming_the_user(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("start\nuser u00000042 failed\nu00000043 ok\nu000000421 is someone else\nend\n")
    (tmp_path / "b.log").write_text("nothing here\n")
    assert redact_logs(tmp_path, ["u00000042", "f" * 64]) == {str(tmp_path / "a.log"): 1}
    assert (tmp_path / "a.log").read_text() == "start\nu00000043 ok\nu000000421 is someone else\nend\n"
    assert (tmp_path / "b.log").read_text() == "nothing here\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.log", "b.log"]  # no temp file left


@pytest.mark.slow
@pytest.mark.destroys_default_run
def test_forget_user_end_to_end_leaves_no_file_naming_them_and_lists_models_to_retrain(default_run, spark) -> None:  # type: ignore[no-untyped-def]
    cfg: AppConfig = default_run["cfg"]
    root: Path = default_run["root"]
    lake = Lake(spark, cfg)
    key = os.environ["SOCIALREC_PSEUDONYM_KEY"].encode()
    source = "synthetic"
    # A user with training examples and recommendations: present in every layer.
    raw_ids = [r[C.USER_ID] for r in lake.read(BRONZE_BY_STREAM["users"]).select(C.USER_ID).collect()]
    by_pseudonym = {pseudonym_of(u, source, key): u for u in raw_ids if u}  # bronze keeps rows without an id
    trained = lake.read(GOLD_EXAMPLES).select("user_idx").distinct().join(lake.read(GOLD_USER_INDEX), "user_idx")
    candidates = (trained.join(lake.read(GOLD_RECOMMENDATIONS).select(C.USER_ID).distinct(), C.USER_ID)
                  .select(C.USER_ID).orderBy(C.USER_ID).limit(50).collect())
    # A regular id (the platform's u + 8 digits), so the independent scan below can search it as a substring.
    pseudonym = next(r[C.USER_ID] for r in candidates if RAW_USER_ID.fullmatch(by_pseudonym.get(r[C.USER_ID], "")))
    raw_id = by_pseudonym[pseudonym]
    export = root / "data" / "synthetic"  # the source system's own export: not the pipeline's to change
    before = files_holding(root, [raw_id, pseudonym], skip=[export])
    assert any(h.startswith("lake/gold/recommendations") for h in before), before
    assert any(h.startswith("lake/bronze") for h in before) and any(h.startswith("lake/silver") for h in before)
    # make run's evaluation cached the baselines' per-user lists (unless an earlier forget already deleted them)
    cached = baselines_cache_dir(cfg).is_dir()
    recommendations = lake.read(GOLD_RECOMMENDATIONS).count()

    env = job_env()
    done = subprocess.run(
        [sys.executable, "-m", "jobs.forget_user", "--env", "test", "--set", f"paths.root={root}", "--user-id", raw_id],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert files_holding(root, [raw_id, pseudonym], skip=[export]) == []
    assert not baselines_cache_dir(cfg).exists()
    assert (f"derived cache deleted (rebuilt by the next run): {baselines_cache_dir(cfg)}" in done.stdout) == cached
    # make run trained and registered the serving model (alias champion) on this user's data.
    assert re.search(r"models trained on this user's data, to retrain \(\d+\)", done.stdout), done.stdout
    assert re.search(rf"{cfg.tracking.registered_model} v1 \(aliases: [^)]*{cfg.tracking.alias}", done.stdout), done.stdout
    assert f"not touched: the source's own export {export}" in done.stdout
    assert raw_id not in done.stderr and pseudonym not in done.stderr  # nor does the forget job's own log
    # their K recommendations, and only theirs, are gone
    assert lake.read(GOLD_RECOMMENDATIONS).where(F.col(C.USER_ID) == pseudonym).count() == 0
    assert lake.read(GOLD_RECOMMENDATIONS).count() == recommendations - cfg.recommend.k
