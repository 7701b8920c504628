"""A model reference loads from its own MLflow store, whatever store the process used last (real MLflow, sqlite)."""
from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")


def _register(store: Path, out_features: int) -> str:
    import mlflow
    import mlflow.pytorch
    import torch

    uri = f"sqlite:///{store / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("t", artifact_location=(store / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        mlflow.pytorch.log_model(torch.nn.Linear(2, out_features), name="model", serialization_format="pickle",
                                 registered_model_name="m")
    return uri


def test_load_model_reads_the_references_store_not_the_last_one_set(tmp_path: Path) -> None:
    import mlflow

    from socialrec.pipelines.recommend import ModelRef, load_model

    (tmp_path / "ciao").mkdir()
    (tmp_path / "lastfm").mkdir()
    ciao = _register(tmp_path / "ciao", 3)
    lastfm = _register(tmp_path / "lastfm", 5)  # same name, same version 1, other store: set last
    assert mlflow.get_tracking_uri() == lastfm
    model = load_model(ModelRef(name="m", version="1", run_id="", tracking_uri=ciao))
    assert model.out_features == 3
    assert not model.training
