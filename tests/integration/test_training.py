"""Distributed training for real: petastorm -> TorchDistributor (local_mode True and False) -> MLflow
(sqlite), on a small synthetic platform run through every earlier stage."""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from socialrec.config import AppConfig, SyntheticConfig
from socialrec.lake import Lake
from socialrec.pipelines import all as pipeline
from socialrec.pipelines import train
from socialrec.training.tracking import tracking_uri
from tests.conftest import lake_cfg

pytestmark = pytest.mark.slow

SMALL = SyntheticConfig(users=300, items=200, events=6000, batches=2, seed=11)


@pytest.fixture(scope="module")
def gold(spark, cfg, tmp_path_factory: pytest.TempPathFactory) -> AppConfig:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("training")
    c = lake_cfg(cfg, root, dataset="synthetic", synthetic=SMALL)
    pipeline.run(spark, c, only=[name for name, _ in pipeline.STAGES if name != "train"])
    return c


def with_train(c: AppConfig, **changes: object) -> AppConfig:
    return c.model_copy(update={"train": c.train.model_copy(update=changes)})


def client(c: AppConfig) -> MlflowClient:
    mlflow.set_tracking_uri(tracking_uri(c))
    return MlflowClient(tracking_uri(c))


def test_local_mode_training_is_tracked_registered_and_idempotent(spark, gold) -> None:  # type: ignore[no-untyped-def]
    c = with_train(gold, num_processes=2, local_mode=True)
    summary = train.run(spark, c)
    mc = client(c)
    name = c.tracking.registered_model
    newest = mc.get_model_version_by_alias(name, c.tracking.alias)
    assert newest.version == summary["model_version"] and newest.run_id == summary["run_id"]
    run = mc.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    # the whole resolved config as params, per-epoch metrics, lineage, plots
    assert run.data.params["train.batch_size"] == str(c.train.batch_size)
    assert run.data.params["train.model.use_social"] == "True"
    curve = mc.get_metric_history(summary["run_id"], "val_ndcg_at_10")
    assert sorted(m.step for m in curve) == list(range(summary["epochs_run"]))
    assert summary["epochs_run"] >= 1 and summary["best_val"]["ndcg@10"] > 0
    lake = Lake(spark, c)
    for spec in train.INPUTS:
        assert run.data.tags[f"input.{spec.qualified_name}.version"] == str(lake.version(spec))
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {s.qualified_name for s in train.INPUTS}
    assert len(run.data.tags["mlflow.source.git.commit"]) >= 7
    plots = {Path(a.path).name for a in mc.list_artifacts(summary["run_id"], "plots")}
    assert plots == {"loss.png", "validation_metrics.png"}
    # the registered model scores users and items on its own, with its signature
    uri = f"models:/{name}@{c.tracking.alias}"
    info = mlflow.models.get_model_info(uri)
    width = 1 + c.examples.sequence_length + c.examples.neighbours
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == [-1, width]
    model = mlflow.pytorch.load_model(uri)
    rows = torch.full((3, width), -1, dtype=torch.long)
    rows[:, 0] = torch.arange(3)
    with torch.no_grad():
        users, items = model(rows), model.item_vectors()
    assert users.shape == (3, c.train.model.dim) and items.shape[1] == c.train.model.dim
    assert torch.allclose(users.norm(dim=1), torch.ones(3), atol=1e-5)
    # the petastorm cache is cleaned after the run
    cache = Path(c.resolve(f"{c.paths.tmp_dir()}/petastorm"))
    assert not list(cache.rglob("*.parquet"))
    # a rerun with the same inputs and config is a no-op that returns the registered version
    versions = len(mc.search_model_versions(f"name='{name}'"))
    again = train.run(spark, c)
    assert again["already_registered"] and again["model_version"] == summary["model_version"]
    assert len(mc.search_model_versions(f"name='{name}'")) == versions


def test_executor_mode_training(spark, gold) -> None:  # type: ignore[no-untyped-def]
    """local_mode=False: the ranks run as Spark barrier tasks on the (local) executors."""
    c = with_train(gold, num_processes=2, local_mode=False, epochs=2)
    summary = train.run(spark, c)
    assert summary["local_mode"] is False and summary["epochs_run"] >= 1
    run = client(c).get_run(summary["run_id"])
    assert run.info.status == "FINISHED" and run.data.params["train.local_mode"] == "False"
    assert client(c).get_model_version_by_alias(c.tracking.registered_model, c.tracking.alias).version == summary["model_version"]


def test_killed_training_is_marked_failed_and_resumes_from_its_last_checkpoint(spark, gold, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    c = with_train(gold, num_processes=2, seed=7, epochs=3, patience=3)
    monkeypatch.setenv("SOCIALREC_FAILPOINT", "train.epoch.1")  # both ranks SIGKILL themselves after epoch 1
    with pytest.raises(RuntimeError, match="TorchDistributor failed"):
        train.run(spark, c)
    run_dirs = [p for p in train.runs_dir(c).iterdir() if json.loads((p / "state.json").read_text())["status"] == "training"]
    assert len(run_dirs) == 1
    state = json.loads((run_dirs[0] / "state.json").read_text())
    assert client(c).get_run(state["run_id"]).info.status == "FAILED"
    assert [p.name for p in sorted((run_dirs[0] / "checkpoints").glob("epoch-*.pt"))] == ["epoch-000.pt", "epoch-001.pt"]

    monkeypatch.delenv("SOCIALREC_FAILPOINT")
    summary = train.run(spark, c)
    assert summary["resumed_from"].endswith("epoch-001.pt")
    assert summary["run_id"] == state["run_id"] and summary["epochs_run"] == 3
    assert client(c).get_run(state["run_id"]).info.status == "FINISHED"
    steps = sorted(m.step for m in client(c).get_metric_history(state["run_id"], "train_loss"))
    assert steps == [0, 1, 2]
