"""Model scoring per partition of users: Spark builds one feature row per user, ``mapInPandas`` encodes them
with the model and searches the faiss item index shipped once in a broadcast.

* :func:`user_feature_rows` (Spark): the :class:`~socialrec.training.model.UserEncoder` input row of every
  user the model can score: ``[user_idx, last L items (left-padded), top-N hop-1 neighbours (right-padded)]``
  with the user's *current* state (last L events of any type before the as-of time, as
  :func:`socialrec.training.data.query_rows` builds it at a split point). Items and neighbours the model does
  not know (indices beyond its vocabulary) are left out. Users without history are not here: they are cold.
* :class:`ScoringPayload`: what every Python worker needs (serialised model, serialised index, item vectors),
  broadcast once; :func:`worker_state` turns it into live objects once per worker process.
* :func:`score_partitions`: the ``mapInPandas`` function: batches of users in, ``(user_id, item_idx,
  model_score)`` rows out (the top pool minus exclusions, plus the users' extra candidates scored exactly).
  Rows carrying a ``user_vector`` column instead of ``features`` skip the model (benchmarks).
"""
from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from socialrec.recommend.index import deserialize, search_topk
from socialrec.schema import columns as C
from socialrec.training.data import pad_left, pad_right

logger = logging.getLogger(__name__)

SCORES_SCHEMA = "user_id string, item_idx int, model_score float"


def user_feature_rows(
    user_index: DataFrame,
    item_index: DataFrame,
    events: DataFrame,
    neighbourhoods: DataFrame,
    seq_len: int,
    n_neighbours: int,
    n_model_users: int,
    n_model_items: int,
) -> DataFrame:
    """``(user_id, user_idx, features array<int>[1 + seq_len + n_neighbours])`` for every user the model knows
    (``user_idx < n_model_users``) with at least one event on an item it knows.

    ``events`` must already be cut at the as-of time. Sequence: last ``seq_len`` events of any type, oldest
    first, ties by event id (as in training). Neighbours: hop-1, by their rank, mapped to user indices.
    """
    users = user_index.where(F.col("user_idx") < n_model_users).select(C.USER_ID, "user_idx")
    known_items = item_index.where(F.col("item_idx") < n_model_items).select(C.ITEM_ID, "item_idx")
    latest = Window.partitionBy(C.USER_ID).orderBy(F.col(C.TS).desc(), F.col(C.EVENT_ID).desc())
    seq = (
        events.join(known_items, C.ITEM_ID)
        .select(C.USER_ID, C.TS, C.EVENT_ID, "item_idx")
        .withColumn("_n", F.row_number().over(latest))
        .where(F.col("_n") <= seq_len)
        .groupBy(C.USER_ID)
        .agg(F.array_sort(F.collect_list(F.struct(C.TS, C.EVENT_ID, "item_idx"))).alias("_h"))
        .select(C.USER_ID, F.transform("_h", lambda h: h["item_idx"]).alias("_seq"))
    )
    hop1 = neighbourhoods.where(F.col("hop") == 1) if "hop" in neighbourhoods.columns else neighbourhoods
    nb = (
        hop1.join(users.select(F.col(C.USER_ID).alias("neighbour_id"), F.col("user_idx").alias("_nb_idx")), "neighbour_id")
        .groupBy(C.USER_ID)
        .agg(F.array_sort(F.collect_list(F.struct("rank", "_nb_idx"))).alias("_n"))
        .select(C.USER_ID, F.transform("_n", lambda n: n["_nb_idx"]).alias("_nb"))
    )
    empty = F.array().cast("array<int>")
    return (
        users.join(seq, C.USER_ID)
        .join(nb, C.USER_ID, "left")
        .select(
            C.USER_ID,
            F.col("user_idx").cast("int"),
            F.concat(
                F.array(F.col("user_idx").cast("int")),
                pad_left(F.col("_seq"), seq_len),
                pad_right(F.coalesce(F.col("_nb"), empty), n_neighbours),
            ).alias("features"),
        )
    )


def item_lists(pairs: DataFrame, item_index: DataFrame, name: str) -> DataFrame:
    """``(user_id, <name> array<int>)``: per user, the item indices of ``pairs`` ``(user_id, item_id)``."""
    return (
        pairs.join(item_index.select(C.ITEM_ID, "item_idx"), C.ITEM_ID)
        .groupBy(C.USER_ID)
        .agg(F.array_sort(F.collect_set(F.col("item_idx").cast("int"))).alias(name))
    )


@dataclass(frozen=True)
class ScoringPayload:
    """Everything a worker needs, shipped once per executor as a broadcast.

    Args:
        index: the faiss index as bytes (:func:`socialrec.recommend.index.serialize`).
        item_vectors: ``[n_items, dim]`` float32, for scoring extra candidates exactly.
        model: the :class:`UserEncoder` as ``torch.save`` bytes, or None when rows carry user vectors.
        k: items per user taken from the index (the candidate pool).
        batch_size: users per model and index call.
        threads: torch and faiss threads per worker.
        nprobe, ef_search: query-time settings of an approximate index.
        token: identifies the payload in the workers' cache (a new run ships a new one).
    """

    index: np.ndarray
    item_vectors: np.ndarray
    model: bytes | None
    k: int
    batch_size: int = 2048
    threads: int = 1
    nprobe: int | None = None
    ef_search: int | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class _Live:
    index: Any
    item_vectors: np.ndarray
    model: Any


_WORKER_CACHE: dict[str, _Live] = {}


def model_bytes(model: Any) -> bytes:
    """``torch.save`` of the whole module (its class must be importable where it is loaded)."""
    import torch

    buf = io.BytesIO()
    torch.save(model, buf)
    return buf.getvalue()


def worker_state(payload: ScoringPayload) -> _Live:
    """The payload's index and model, deserialised once per Python worker process (Spark reuses workers and
    keeps a broadcast's value loaded in them; this keeps the live faiss index and torch module too)."""
    key = payload.token
    live = _WORKER_CACHE.get(key)
    if live is None:
        import faiss

        faiss.omp_set_num_threads(payload.threads)
        model = None
        if payload.model is not None:
            import torch

            torch.set_num_threads(payload.threads)
            model = torch.load(io.BytesIO(payload.model), map_location="cpu", weights_only=False)
            model.eval()
        index = deserialize(payload.index, nprobe=payload.nprobe, ef_search=payload.ef_search)
        live = _Live(index=index, item_vectors=payload.item_vectors, model=model)
        _WORKER_CACHE.clear()  # one payload at a time: a new run's broadcast replaces the last one
        _WORKER_CACHE[key] = live
    return live


def encode_users(live: _Live, batch: pd.DataFrame) -> np.ndarray:
    """User vectors ``[B, dim]``: the ``user_vector`` column as given, else the model over ``features``."""
    if "user_vector" in batch.columns:
        return np.stack(batch["user_vector"].to_numpy()).astype(np.float32)
    import torch

    feats = torch.from_numpy(np.stack(batch["features"].to_numpy()).astype(np.int64))
    with torch.no_grad():
        out: np.ndarray = live.model(feats).float().numpy()
    return out


def _arrays(batch: pd.DataFrame, col: str) -> list[np.ndarray | None] | None:
    if col not in batch.columns:
        return None
    return [None if v is None else np.asarray(v, dtype=np.int64) for v in batch[col].to_numpy()]


def score_batch(live: _Live, batch: pd.DataFrame, k: int) -> pd.DataFrame:
    """One batch of users -> ``(user_id, item_idx, model_score)`` rows (see :func:`search_topk`)."""
    users = encode_users(live, batch)
    rows, items, scores = search_topk(
        live.index, live.item_vectors, users, k, exclude=_arrays(batch, "exclude"), extra=_arrays(batch, "extra")
    )
    return pd.DataFrame(
        {
            C.USER_ID: batch[C.USER_ID].to_numpy()[rows],
            "item_idx": items.astype(np.int32),
            "model_score": scores.astype(np.float32),
        }
    )


def score_partitions(broadcast: Any) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The ``mapInPandas`` function over user rows ``(user_id, features | user_vector[, exclude][, extra])``,
    output :data:`SCORES_SCHEMA`. Only the broadcast handle is captured: the payload travels once per executor.
    """

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        payload: ScoringPayload = broadcast.value
        live = worker_state(payload)
        for frame in batches:
            for start in range(0, len(frame), payload.batch_size):
                yield score_batch(live, frame.iloc[start : start + payload.batch_size], payload.k)

    return score


def model_scores(user_rows: DataFrame, broadcast: Any, partitions: int) -> DataFrame:
    """:data:`SCORES_SCHEMA` for every row of ``user_rows``, scored in ``partitions`` tasks."""
    fn: Any = score_partitions(broadcast)
    return user_rows.repartition(partitions, C.USER_ID).mapInPandas(fn, SCORES_SCHEMA)
