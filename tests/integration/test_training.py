"""Distributed training for real: petastorm -> TorchDistributor (local_mode True and False) -> MLflow
(sqlite), on the lake of the ``default_run`` fixture (``make run`` on the embedded default data)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from socialrec.config import AppConfig
from socialrec.ingest import adapter_for
from socialrec.lake import Lake
from socialrec.pipelines import train
from socialrec.training.tracking import registered_here, tracking_uri, use_store

pytestmark = pytest.mark.slow


def with_train(c: AppConfig, model_name: str, **changes: object) -> AppConfig:
    """Extra trainings register under their own model name: the default run's ``newest`` alias stays put."""
    return c.model_copy(update={"train": c.train.model_copy(update=changes),
                                "tracking": c.tracking.model_copy(update={"registered_model": model_name})})


def client(c: AppConfig) -> MlflowClient:
    return MlflowClient(use_store(tracking_uri(c)))


def test_the_run_is_tracked_registered_and_a_rerun_is_a_noop(spark, default_run) -> None:  # type: ignore[no-untyped-def]
    c: AppConfig = default_run["cfg"]
    mc = client(c)
    name = c.tracking.registered_model
    newest = mc.get_model_version_by_alias(name, c.tracking.alias)
    run = mc.get_run(newest.run_id)
    assert run.info.status == "FINISHED"
    # the whole resolved config as params, per-epoch metrics, lineage, plots
    assert run.data.params["train.batch_size"] == str(c.train.batch_size)
    assert run.data.params["train.model.use_social"] == "True"
    epochs_run = int(json.loads(Path(mlflow.artifacts.download_artifacts(run_id=newest.run_id, artifact_path="training/result.json")).read_text())["epochs_run"])
    curve = mc.get_metric_history(newest.run_id, "val_ndcg_at_10")
    assert sorted(m.step for m in curve) == list(range(epochs_run))
    lake = Lake(spark, c)
    for spec in train.INPUTS:
        assert run.data.tags[f"input.{spec.qualified_name}.version"] == str(lake.version(spec))
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {s.qualified_name for s in train.INPUTS}
    assert len(run.data.tags["mlflow.source.git.commit"]) >= 7
    plots = {Path(a.path).name for a in mc.list_artifacts(newest.run_id, "plots")}
    assert plots == {"loss.png", "validation_metrics.png"}
    # the registered model scores users and items on its own, with its signature
    uri = f"models:/{name}@{c.tracking.alias}"
    info = mlflow.models.get_model_info(uri)
    width = 1 + c.examples.sequence_length + c.examples.neighbours
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, width]
    model = mlflow.pytorch.load_model(uri)
    rows = torch.full((3, width), -1, dtype=torch.long)
    rows[:, 0] = torch.arange(3)
    with torch.no_grad():
        users, items = model(rows), model.item_vectors()
    assert users.shape == (3, c.train.model.dim) and items.shape[1] == c.train.model.dim
    assert torch.allclose(users.norm(dim=1), torch.ones(3), atol=1e-5)
    # the petastorm cache is cleaned after the run
    assert not list(Path(c.resolve(f"{c.paths.tmp_dir()}/petastorm")).rglob("*.parquet"))
    # a rerun with the same inputs and config is a no-op that returns the registered version
    versions = len(mc.search_model_versions(f"name='{name}'"))
    again = train.run(spark, c)
    assert again["already_registered"] and again["model_version"] == str(newest.version)
    assert len(mc.search_model_versions(f"name='{name}'")) == versions


def test_a_registration_in_another_store_is_not_reused(spark, default_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A training's state names a version number, not the store: the same training against another MLflow store
    (another lake's, in one process) trains and registers there instead of reusing the first store's number."""
    c: AppConfig = default_run["cfg"]
    first = train.run(spark, c)
    assert first["already_registered"]
    runs = tmp_path / "training"
    folder = f"{adapter_for(c.data.dataset, c).name}-{first['training_key']}"
    shutil.copytree(train.runs_dir(c) / folder, runs / folder)
    other_store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    other = c.model_copy(update={"train": c.train.model_copy(update={"runs_dir": str(runs)}),
                                 "tracking": c.tracking.model_copy(update={"tracking_uri": other_store})})
    summary = train.run(spark, other)
    assert not summary.get("already_registered") and summary["training_key"] == first["training_key"]
    assert summary["tracking_uri"] == other_store and summary["model_version"] == "1"
    assert registered_here(other_store, summary["model_name"], "1", summary["run_id"])
    assert registered_here(tracking_uri(c), first["model_name"], first["model_version"], first["run_id"])
    assert train.run(spark, other)["already_registered"]  # and now it is reused, from the right store


def test_executor_mode_training(spark, default_run) -> None:  # type: ignore[no-untyped-def]
    """local_mode=False: the ranks run as Spark barrier tasks on the (local) executors; and validation and test
    on a sample of about 20 users each (train.max_eval_users)."""
    c = with_train(default_run["cfg"], "socialrec-test-executor-mode", num_processes=2, local_mode=False, epochs=1,
                   max_eval_users=20)
    summary = train.run(spark, c)
    assert summary["local_mode"] is False and summary["epochs_run"] == 1 and summary["model_version"] == "1"
    assert summary["n_test_users"] > 40 and 0 < summary["test"]["users"] < summary["n_test_users"] / 2
    assert summary["test"]["users"] == summary["test_mostpop"]["users"]  # the same sample for the baseline
    run = client(c).get_run(summary["run_id"])
    assert run.info.status == "FINISHED" and run.data.params["train.local_mode"] == "False"
    assert client(c).get_model_version_by_alias(c.tracking.registered_model, c.tracking.alias).run_id == summary["run_id"]


def test_killed_training_is_marked_failed_and_resumes_from_its_last_checkpoint(spark, default_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    c = with_train(default_run["cfg"], "socialrec-test-resume", num_processes=2, seed=7, epochs=3, patience=3)
    monkeypatch.setenv("SOCIALREC_FAILPOINT", "train.epoch.1")  # both ranks SIGKILL themselves after epoch 1
    with pytest.raises(RuntimeError, match="TorchDistributor failed"):
        train.run(spark, c)
    interrupted = [p for p in train.runs_dir(c).iterdir() if json.loads((p / "state.json").read_text())["status"] == "training"]
    assert len(interrupted) == 1
    state = json.loads((interrupted[0] / "state.json").read_text())
    assert client(c).get_run(state["run_id"]).info.status == "FAILED"
    assert [p.name for p in sorted((interrupted[0] / "checkpoints").glob("epoch-*.pt"))] == ["epoch-000.pt", "epoch-001.pt"]

    monkeypatch.delenv("SOCIALREC_FAILPOINT")
    summary = train.run(spark, c)
    assert summary["resumed_from"].endswith("epoch-001.pt")
    assert summary["run_id"] == state["run_id"] and summary["epochs_run"] == 3
    assert client(c).get_run(state["run_id"]).info.status == "FINISHED"
    steps = sorted(m.step for m in client(c).get_metric_history(state["run_id"], "train_loss"))
    assert steps == [0, 1, 2]
