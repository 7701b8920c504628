"""MLflow around a training run: store location, experiment, lineage, plots, model logging and registration.

Default store: sqlite under ``paths.mlflow`` with local artifacts beside it; ``$MLFLOW_TRACKING_URI`` or
``tracking.tracking_uri`` point anywhere else. Credentials are MLflow's own environment variables
(``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN``), never config.
"""
from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from socialrec.config import AppConfig

logger = logging.getLogger(__name__)


def tracking_uri(cfg: AppConfig) -> str:
    """``$MLFLOW_TRACKING_URI``, else ``tracking.tracking_uri``, else the local sqlite store."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    if cfg.tracking.tracking_uri:
        return cfg.tracking.tracking_uri
    store = Path(cfg.resolve(cfg.paths.mlflow_dir()))
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def use_store(uri: str) -> str:
    """Point MLflow's process-wide client at ``uri`` (returned) without leaking it into ``$MLFLOW_TRACKING_URI``.

    ``mlflow.set_tracking_uri`` also exports the variable (for subprocesses), and :func:`tracking_uri` reads the
    variable first: left there, the first store a process used would become every later config's store. A
    process working on two lakes (``bench.quality``: LastFM, then Ciao) registered Ciao's models in LastFM's
    store that way. The variable keeps the value it had (a user's own setting still wins everywhere); the
    distributor's processes get the URI explicitly.
    """
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    return uri


def registered_here(uri: str, name: str, version: str, run_id: str) -> bool:
    """Whether version ``version`` of ``name`` in the store at ``uri`` is the one run ``run_id`` registered
    (a training's state file names a version number, not the store it lives in)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return str(MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(name, str(version)).run_id) == run_id
    except MlflowException:
        return False


def run_exists(uri: str, run_id: str) -> bool:
    """Whether the store at ``uri`` holds run ``run_id``."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).get_run(run_id)
        return True
    except MlflowException:
        return False


def artifact_location(cfg: AppConfig) -> str | None:
    """Local artifacts beside the sqlite store (None for a remote server, which decides itself)."""
    uri = tracking_uri(cfg)
    if not uri.startswith("sqlite:") and "://" in uri and not uri.startswith("file:"):
        return None
    return Path(cfg.resolve(cfg.paths.mlflow_dir()), "artifacts").as_uri()


def ensure_experiment(cfg: AppConfig, name: str | None = None) -> str:
    """The id of experiment ``name`` (default ``tracking.experiment``), creating it with an explicit artifact
    location (else MLflow writes ./mlruns in the working directory)."""
    import mlflow

    name = name or cfg.tracking.experiment
    use_store(tracking_uri(cfg))
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(mlflow.create_experiment(name, artifact_location=artifact_location(cfg)))


def git_commit(cwd: str) -> str:
    """The checkout's commit (with ``-dirty`` when it has local changes), or ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def log_lineage(inputs: Mapping[str, tuple[str, int]], source: str, commit: str) -> None:
    """Every input table's Delta version as a tag and as an MLflow dataset input; the git commit."""
    import mlflow
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    tags = {f"input.{name}.version": str(version) for name, (_, version) in inputs.items()}
    tags.update({"mlflow.source.git.commit": commit, "socialrec.git_commit": commit, "socialrec.source": source})
    mlflow.set_tags(tags)
    for name, (path, version) in inputs.items():
        source_ = DeltaDatasetSource(path=path, delta_table_version=version)
        ds = MetaDataset(source_, name=name, digest=f"v{version}")  # type: ignore[abstract]
        mlflow.log_input(ds, context="training")


def log_params(flat: Mapping[str, Any]) -> None:
    """The whole resolved config as params (values cut to MLflow's 6000-character limit)."""
    import mlflow

    mlflow.log_params({k: str(v)[:6000] for k, v in flat.items()})


def log_curves(history: Sequence[Mapping[str, float]], ks: Sequence[int], baseline: Mapping[str, float]) -> None:
    """Loss and validation metric curves (with the MostPopular level as a dashed line) as PNG artifacts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    if not history:
        return
    epochs = [int(h["epoch"]) for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax.set(xlabel="epoch", ylabel="sampled-softmax loss", title="training loss")
    mlflow.log_figure(fig, "plots/loss.png")
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("recall", "ndcg"), strict=True):
        for k in ks:
            line = ax.plot(epochs, [h[f"val_{metric}@{k}"] for h in history], marker="o", label=f"{metric}@{k}")[0]
            base = baseline.get(f"val_mostpop_{metric}@{k}")
            if base is not None:
                ax.axhline(base, ls="--", color=line.get_color(), label=f"most popular {metric}@{k}")
        ax.set(xlabel="epoch", ylabel=metric, title=f"validation {metric} (full ranking)")
        ax.legend(fontsize=8)
    mlflow.log_figure(fig, "plots/validation_metrics.png")
    plt.close(fig)


def log_and_register_model(model: Any, name: str, alias: str) -> str:
    """Log ``model`` (pickle serialisation, see STACK.md) with its signature, register a new version of
    ``name`` and move ``alias`` to it; returns the version.

    No input example is logged: any real row would be per-user data inside an artifact.
    """
    import mlflow
    import mlflow.pytorch
    import numpy as np
    import torch
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    width = 1 + model.seq_len + model.n_neighbours
    probe = np.full((2, width), -1, dtype=np.int64)
    probe[:, 0] = 0
    with torch.no_grad():
        out = model(torch.from_numpy(probe)).numpy()
    info = mlflow.pytorch.log_model(
        model,
        name="model",
        serialization_format="pickle",
        signature=infer_signature(probe, out),
        registered_model_name=name,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "socialrec"],
    )
    version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(name, alias, version)
    logger.info("registered %s version %s (alias %s)", name, version, alias)
    return version
