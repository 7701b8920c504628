"""The evaluate stage on the ``default_run`` lake (``make run`` on the embedded default data): every model in
gold.evaluation under the temporal protocol, figures cross-checked against the training loop's own ranking,
the MLflow run and the report; then the random protocol, which trains socialrec on its own split without
touching the serving model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.evaluation.metrics import ACCURACY_METRICS
from socialrec.lake import Lake
from socialrec.pipelines import evaluate
from socialrec.pipelines.train import runs_dir
from socialrec.schema.tables import GOLD_EVAL_SPLITS, GOLD_EVALUATION
from socialrec.training import tracking

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODELS = {"socialrec", "most_popular", "item_knn", "ease", "als", "lightgcn"}


def client(c: AppConfig) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking.tracking_uri(c))


def test_make_run_evaluates_every_model_and_agrees_with_the_training_loop(spark, default_run) -> None:  # type: ignore[no-untyped-def]
    c: AppConfig = default_run["cfg"]
    lake = Lake(spark, c)
    rows = lake.read(GOLD_EVALUATION).where((F.col("dataset") == "synthetic") & (F.col("protocol") == "temporal"))
    run_ids = [r[0] for r in rows.select("run_id").distinct().collect()]
    assert len(run_ids) == 1, "make run evaluates once"
    table = rows.toPandas()
    assert set(table["model"]) == MODELS
    assert set(table["split"]) == {"validation", "test"}
    ks = c.evaluate.ks
    for model in MODELS:
        mine = table[(table["model"] == model) & (table["slice"] == "all")]
        # every accuracy metric at every K, MRR, and every beyond-accuracy metric
        assert {(m, k) for m in ACCURACY_METRICS for k in ks} <= set(zip(mine["metric"], mine["k"], strict=True))
        assert {"mrr", "coverage", "gini", "novelty", "ild_category", "ild_embedding"} <= set(mine["metric"])
        sliced = set(table[table["model"] == model]["slice"])
        assert {"all", "cold", "warm", "social", "bucket:head", "bucket:mid", "bucket:tail"} <= sliced
    assert table["value"].between(0, 1).all() or set(table[table["value"] > 1]["metric"]) == {"novelty"}

    # The same model on the same users, ranked by two independent implementations: the training loop's
    # torch ranking (summed across ranks) and evaluate's driver top-K + Spark metrics.
    states = [json.loads(p.read_text()) for p in runs_dir(c).glob("synthetic-*/state.json")]
    state = min((s for s in states if s.get("model_name") == c.tracking.registered_model),
                key=lambda s: int(s["model_version"]))  # make run's model: the first version
    for name in ("ndcg@10", "recall@10", "ndcg@20", "recall@20"):
        metric, k = name.split("@")
        ours = table[(table["model"] == "socialrec") & (table["split"] == "test") & (table["slice"] == "all")
                     & (table["metric"] == metric) & (table["k"] == int(k))]["value"].iloc[0]
        assert ours == pytest.approx(state["summary"]["test"][name], abs=1e-6), name

    def test_value(model: str) -> float:
        return float(table[(table["model"] == model) & (table["split"] == "test") & (table["slice"] == "all")
                           & (table["metric"] == "ndcg") & (table["k"] == 20)]["value"].iloc[0])

    assert test_value("socialrec") > test_value("most_popular")

    # one FINISHED MLflow run with the report, under the evaluation experiment, nothing in the working directory
    run = client(c).get_run(run_ids[0])
    assert run.info.status == "FINISHED"
    assert run.data.params["protocol"] == "temporal"
    assert run.data.metrics["socialrec.s42.test.ndcg_at_20"] == pytest.approx(test_value("socialrec"))
    artifacts = {a.path for a in client(c).list_artifacts(run_ids[0], "report")}
    assert {"report/report.md", "report/metrics.png", "report/coverage.png", "report/recall_by_popularity.png"} <= artifacts
    assert not (REPO / "mlruns").exists()
    reports = list((Path(c.paths.root) / "reports").glob("synthetic-temporal-*/report.md"))
    assert len(reports) == 1 and "| socialrec |" in reports[0].read_text()


def test_random_protocol_trains_socialrec_on_its_own_split(spark, default_run) -> None:  # type: ignore[no-untyped-def]
    c: AppConfig = default_run["cfg"]
    ev = c.evaluate.model_copy(update={"protocol": "random", "ks": [10], "baselines": c.evaluate.baselines.model_copy(
        update={"models": ["most_popular"]})})
    c = c.model_copy(update={"evaluate": ev})
    serving = client(c).get_model_version_by_alias(c.tracking.registered_model, c.tracking.alias)
    summary = evaluate.run(spark, c)

    lake = Lake(spark, c)
    splits = lake.read(GOLD_EVAL_SPLITS)
    # both protocols' partitions are kept; the random one is 8:1:1 per user, counted like RecBole
    assert {r[0] for r in splits.select("protocol").distinct().collect()} == {"temporal", "random"}
    per_user = splits.where(F.col("protocol") == "random").groupBy("user_idx").pivot("split", ["train", "validation", "test"]).count().fillna(0)
    ten = per_user.where(F.col("train") + F.col("validation") + F.col("test") == 10).collect()
    assert ten and all((r["train"], r["validation"], r["test"]) == (8, 1, 1) for r in ten)
    # socialrec was trained on the random split (a new key) and registered under the evaluation name only
    assert summary["models"] == ["socialrec", "most_popular"]
    m = client(c)
    versions = m.search_model_versions(f"name='{c.evaluate.registered_model}'")
    assert versions, "the random-protocol model is registered under evaluate.registered_model"
    assert m.get_model_version_by_alias(c.tracking.registered_model, c.tracking.alias).version == serving.version
    states = [json.loads(p.read_text()) for p in runs_dir(c).glob("synthetic-*/state.json")]
    random_runs = [s for s in states if str(s.get("protocol", "")).startswith("random")]
    assert len(random_runs) == 1 and random_runs[0]["status"] == "registered"
    # evaluating again rewrites the same split but finds the trained model: no second training
    again = evaluate.run(spark, c)
    assert len([p for p in runs_dir(c).glob("synthetic-*/state.json")]) == len(states)
    assert again["table"]["value"].to_numpy() == pytest.approx(summary["table"]["value"].to_numpy(), abs=1e-12)
    table = summary["table"]
    got = table[(table["split"] == "test") & (table["slice"] == "all") & (table["metric"] == "ndcg")]
    assert set(got["model"]) == {"socialrec", "most_popular"}
    # two evaluations, two runs of figures (appended, never replaced)
    assert len(lake.read(GOLD_EVALUATION).where(F.col("protocol") == "random").select("run_id").distinct().collect()) == 2
