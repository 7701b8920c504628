"""The recommend stage end to end on the embedded default data (the ``default_run`` lake): a model trained and registered in MLflow,
top-K with reasons for every indexed user in gold.recommendations, idempotent reruns, and the analysts' SQL in
docs/sql. (Forgetting a user, recommendations included, is tests/integration/test_privacy_end_to_end.py, on the
same lake.)"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.lake import Lake
from socialrec.pipelines import recommend
from socialrec.pipelines import sql as sql_stage
from socialrec.schema import columns as C
from socialrec.schema.tables import GOLD_RECOMMENDATIONS, GOLD_USER_INDEX, SILVER_EVENTS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SOURCE = "synthetic"


@pytest.fixture(scope="module")
def trained(default_run) -> AppConfig:  # type: ignore[no-untyped-def]
    """The lake and registered model of ``make run`` on the embedded default data (the shared fixture)."""
    return default_run["cfg"]


def test_recommend_stage_end_to_end(spark, trained) -> None:  # type: ignore[no-untyped-def]
    c = trained
    k = c.recommend.k
    lake = Lake(spark, c)
    # make run (the default_run fixture) wrote a run already: scoring the same run date again replaces it
    # (idempotent: same rows, a new table version, one generated_at)
    before = lake.read(GOLD_RECOMMENDATIONS)
    run_date = before.select(F.date_format("run_date", "yyyy-MM-dd")).first()[0]  # type: ignore[index]
    rows_before, version = before.count(), lake.version(GOLD_RECOMMENDATIONS)
    c = c.model_copy(update={"recommend": c.recommend.model_copy(update={"run_date": run_date})})
    summary = recommend.run(spark, c)
    assert lake.version(GOLD_RECOMMENDATIONS) > version
    assert lake.read(GOLD_RECOMMENDATIONS).count() == rows_before == summary["rows"]
    assert lake.read(GOLD_RECOMMENDATIONS).select("generated_at").distinct().count() == 1
    recs = lake.read(GOLD_RECOMMENDATIONS)
    users = lake.read(GOLD_USER_INDEX)
    n_users = users.count()

    # every indexed user has K recommendations (the catalogue is far larger than K), each with a reason
    per_user = recs.groupBy(C.USER_ID).agg(
        F.count(F.lit(1)).alias("n"), F.min("rank").alias("lo"), F.max("rank").alias("hi"),
        F.min(F.size(C.REASONS)).alias("min_reasons"),
    )
    assert users.join(per_user, C.USER_ID, "left_anti").count() == 0
    assert per_user.where((F.col("n") != k) | (F.col("lo") != 1) | (F.col("hi") != k)).count() == 0
    assert per_user.where(F.col("min_reasons") < 1).count() == 0
    assert summary["rows"] == n_users * k and summary["users"] == n_users and summary["rows_without_reason"] == 0
    assert summary["model_version"] == "1" and summary["examples"] and len(summary["examples"]) == 3

    # never an item the user already bought or rated before the as-of time
    events = lake.read(SILVER_EVENTS).where(F.col(C.EVENT_TYPE).isin("purchase", "rating"))
    assert recs.join(events, [C.USER_ID, C.ITEM_ID]).count() == 0

    # rank order is score order, and no user sees an item twice
    ordered = recs.groupBy(C.USER_ID).agg(F.array_sort(F.collect_list(F.struct("rank", "score"))).alias("s"))
    scores = ordered.select(F.transform("s", lambda x: x["score"]).alias("scores"))
    assert scores.where(F.col("scores") != F.reverse(F.array_sort("scores"))).count() == 0
    assert recs.groupBy(C.USER_ID, C.ITEM_ID).count().where(F.col("count") > 1).count() == 0

    # lineage on every row; reasons never carry another user's pseudonym
    lineage = recs.select("model_name", "model_version", "run_id", "run_date").distinct().collect()
    assert len(lineage) == 1 and lineage[0]["run_id"] == summary["run_id"]
    kinds = {r["k"] for r in recs.select(F.explode(F.transform(C.REASONS, lambda x: x["kind"])).alias("k")).distinct().collect()}
    assert {"social", "trending"} <= kinds and kinds <= {"social", "similar", "category", "trending", "popular", "for_you"}
    reason_json = recs.select(F.to_json(C.REASONS).alias("j"))
    leaked = reason_json.join(users.select(C.USER_ID), F.instr("j", F.col(C.USER_ID)) > 0)
    assert leaked.count() == 0

    # every analyst query in docs/sql runs through jobs.sql and returns rows
    queries = sorted((REPO / "docs" / "sql").glob("*.sql"))
    assert len(queries) >= 4
    for q in queries:
        out = io.StringIO()
        sql_stage.run(spark, c, f"@{q}", "json", 1000, out)
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert rows, q.name
