"""A model reference loads from its own MLflow store, whatever store the process used last (real MLflow, sqlite)."""
from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")


def _register(store: Path, out_features: int) -> str:
    import mlflow
    import mlflow.pytorch
    import torch

    from socialrec.training.tracking import use_store

    uri = use_store(f"sqlite:///{store / 'mlflow.db'}")
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


def test_using_a_store_does_not_make_it_every_later_configs_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mlflow.set_tracking_uri exports $MLFLOW_TRACKING_URI, which tracking_uri() reads first: bench.quality
    registered Ciao's models in LastFM's store that way. A user's own variable still wins."""
    import mlflow

    from socialrec.config import load_config
    from socialrec.training.tracking import tracking_uri, use_store

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    repo = Path(__file__).resolve().parents[2]
    lastfm, ciao = (load_config("test", {"paths.root": str(tmp_path / n)}, conf_dir=repo / "conf") for n in ("lastfm", "ciao"))
    assert use_store(tracking_uri(lastfm)) == mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'lastfm' / 'mlflow' / 'mlflow.db'}"
    assert tracking_uri(ciao) == f"sqlite:///{tmp_path / 'ciao' / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    use_store(tracking_uri(lastfm))
    assert tracking_uri(ciao) == tracking_uri(lastfm) == "sqlite:///elsewhere.db"


def test_a_version_number_is_checked_against_the_run_that_registered_it(tmp_path: Path) -> None:
    import mlflow

    from socialrec.training.tracking import registered_here

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _register(tmp_path / "a", 3)
    b = _register(tmp_path / "b", 5)
    run_a = mlflow.MlflowClient(a).get_model_version("m", "1").run_id
    assert registered_here(a, "m", "1", run_a)
    assert not registered_here(b, "m", "1", run_a)  # b's version 1 is another run's
    assert not registered_here(a, "m", "2", run_a)  # no such version
