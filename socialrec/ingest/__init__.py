"""Source adapters -> bronze. :func:`adapter_for` picks the adapter for ``data.dataset``."""
from __future__ import annotations

from pathlib import Path

from socialrec.config import AppConfig
from socialrec.ingest.base import SourceAdapter, SourceMissingError, SourceProfile
from socialrec.ingest.feed import FeedAdapter

__all__ = ["SourceAdapter", "SourceMissingError", "SourceProfile", "adapter_for", "source_path"]

PLATFORM_SOURCE = "platform"
SYNTHETIC_SOURCE = "synthetic"


def adapter_for(dataset: str, cfg: AppConfig) -> SourceAdapter:
    """The adapter for ``dataset`` (``synthetic``, ``feed`` or a public dataset name)."""
    if dataset in ("synthetic", "feed"):
        name = SYNTHETIC_SOURCE if dataset == "synthetic" else PLATFORM_SOURCE
        return FeedAdapter(
            SourceProfile(
                name=name,
                references="strict",
                launch=cfg.clean.platform_launch,
                description="the platform's canonical JSON-lines feeds (docs/feeds.md)",
            )
        )
    from socialrec.ingest.datasets import DATASETS

    try:
        adapter_cls, _folder = DATASETS[dataset]
    except KeyError:
        raise SourceMissingError(
            f"unknown dataset {dataset!r}; known: synthetic, feed, {', '.join(sorted(DATASETS))}"
        ) from None
    return adapter_cls()


def source_path(cfg: AppConfig, dataset: str | None = None, path: str | None = None) -> Path:
    """Where ``dataset``'s files are: ``path``, else ``data.path``, else the dataset's default folder."""
    dataset = dataset or cfg.data.dataset
    explicit = path or (cfg.data.path if dataset == cfg.data.dataset else None)
    if explicit:
        return Path(cfg.resolve(explicit))
    if dataset == "synthetic":
        return Path(cfg.resolve(f"{cfg.paths.data_dir()}/synthetic"))
    if dataset == "feed":
        raise SourceMissingError("data.dataset=feed needs data.path (the feed root folder; see docs/feeds.md)")
    from socialrec.ingest.datasets import DATASETS

    _cls, folder = DATASETS[dataset]
    return Path(cfg.resolve(f"{cfg.data.datasets_dir}/{folder}"))
