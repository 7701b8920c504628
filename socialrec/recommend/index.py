"""Top-K retrieval over item vectors with faiss (numpy in, numpy out: no Spark, no torch).

Scores are inner products of unit-norm user and item vectors (the model's cosine score), so the index is
an inner-product index:

* ``exact``: :class:`faiss.IndexFlatIP`, brute force. The default: exact and, up to ~1e5 items, fast enough
  (one matrix product per batch of users).
* ``ivf``: :class:`faiss.IndexIVFFlat` with ``nlist`` k-means cells over the items; a query visits the
  ``nprobe`` nearest cells. For large catalogues; its recall against exact is measured (:func:`recall_at_k`).
* ``hnsw``: :class:`faiss.IndexHNSWFlat` graph index (``M`` links, ``efSearch`` at query time).

The index is built once on the driver and shipped to executors as bytes (:func:`serialize` /
:func:`deserialize`); :func:`search_topk` removes each user's excluded items and scores the extra candidates
they bring (social candidates) exactly, so every user gets ``k`` results whenever the catalogue allows.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

logger = logging.getLogger(__name__)

IndexKind = Literal["exact", "ivf", "hnsw"]
# faiss needs ~39 training points per IVF cell; fewer makes k-means warn and cells degenerate.
MIN_POINTS_PER_CELL = 39


def build_index(
    item_vectors: np.ndarray,
    kind: IndexKind = "exact",
    *,
    nlist: int = 1024,
    nprobe: int = 16,
    hnsw_m: int = 32,
    ef_search: int = 128,
    seed: int = 42,
) -> Any:
    """An inner-product faiss index over ``item_vectors`` ``[n_items, dim]`` (row i = item_idx i).

    Args:
        item_vectors: float32 item vectors (unit norm for cosine scores).
        kind: ``exact`` (default), ``ivf`` or ``hnsw``.
        nlist: IVF cells (default: 1024; lowered so each cell has >= 39 training items).
        nprobe: IVF cells visited per query (default: 16).
        hnsw_m: HNSW links per node (default: 32).
        ef_search: HNSW search breadth (default: 128).
        seed: k-means seed of the IVF training (default: 42).
    """
    import faiss

    xb = np.ascontiguousarray(item_vectors, dtype=np.float32)
    n, dim = xb.shape
    index: Any
    if kind == "exact":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        cells = max(1, min(nlist, n // MIN_POINTS_PER_CELL))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, cells, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(xb)
        index.nprobe = min(nprobe, cells)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search
    else:
        raise ValueError(f"index kind must be exact, ivf or hnsw, not {kind!r}")
    if n:
        index.add(xb)
    logger.debug("built %s index over %d items x %d dims", kind, n, dim)
    return index


def serialize(index: Any) -> np.ndarray:
    """The index as a uint8 array (what a broadcast ships)."""
    import faiss

    out: np.ndarray = faiss.serialize_index(index)
    return out


def deserialize(data: np.ndarray, *, nprobe: int | None = None, ef_search: int | None = None) -> Any:
    """The index back from :func:`serialize`, with its query-time settings re-applied."""
    import faiss

    index = faiss.deserialize_index(data)
    if nprobe is not None and isinstance(index, faiss.IndexIVF):
        index.nprobe = min(nprobe, index.nlist)
    if ef_search is not None and isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = ef_search
    return index


def search_topk(
    index: Any,
    item_vectors: np.ndarray,
    users: np.ndarray,
    k: int,
    exclude: Sequence[np.ndarray | None] | None = None,
    extra: Sequence[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best items per user, without the user's excluded items, plus their extra candidates.

    The index is asked for ``k + (the batch's longest exclusion list)`` items, so after removing exclusions
    every user keeps ``k`` (or all the catalogue has). Extra candidates (item indices, e.g. what the user's
    neighbours bought) are scored exactly against ``item_vectors`` and added when not already in the top-k
    and not excluded; indices outside the catalogue are ignored.

    Returns:
        ``(row, item_idx, score)``: flat arrays, ``row`` the user's position in ``users``; per user, the
        top-k first in score order, then the extras.
    """
    n_items = int(index.ntotal)
    n_users = users.shape[0]
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    if n_users == 0 or n_items == 0 or k <= 0:
        return empty
    xq = np.ascontiguousarray(users, dtype=np.float32)
    longest = max((len(e) for e in exclude if e is not None), default=0) if exclude is not None else 0
    kk = min(n_items, k + longest)
    scores, ids = index.search(xq, kk)
    if longest == 0:
        # Fast path (no exclusions): the first k columns, minus the -1 fillers an approximate index leaves.
        ids, scores = ids[:, :k], scores[:, :k]
        keep = ids >= 0
        rows = np.broadcast_to(np.arange(n_users)[:, None], ids.shape)
        out_rows, out_ids, out_scores = rows[keep], ids[keep], scores[keep]
        if extra is None:
            return out_rows.astype(np.int64), out_ids.astype(np.int64), out_scores.astype(np.float32)
        top_sets: list[np.ndarray] = [ids[r][ids[r] >= 0] for r in range(n_users)]
        parts_r, parts_i, parts_s = [out_rows], [out_ids], [out_scores]
    else:
        parts_r, parts_i, parts_s, top_sets = [], [], [], []
        assert exclude is not None
        for r in range(n_users):
            row_ids, row_scores = ids[r], scores[r]
            ok = row_ids >= 0
            ex = exclude[r]
            if ex is not None and len(ex):
                ok &= ~np.isin(row_ids, ex)
            chosen = np.flatnonzero(ok)[:k]
            top_sets.append(row_ids[chosen])
            parts_r.append(np.full(len(chosen), r, np.int64))
            parts_i.append(row_ids[chosen])
            parts_s.append(row_scores[chosen])
    if extra is not None:
        for r in range(n_users):
            cand = extra[r]
            if cand is None or not len(cand):
                continue
            cand = np.unique(np.asarray(cand, dtype=np.int64))
            cand = cand[(cand >= 0) & (cand < n_items)]
            cand = cand[~np.isin(cand, top_sets[r])]
            if exclude is not None and exclude[r] is not None and len(exclude[r]):  # type: ignore[arg-type]
                cand = cand[~np.isin(cand, exclude[r])]  # type: ignore[arg-type]
            if not len(cand):
                continue
            parts_r.append(np.full(len(cand), r, np.int64))
            parts_i.append(cand)
            parts_s.append(item_vectors[cand] @ xq[r])
    out_r = np.concatenate(parts_r).astype(np.int64)
    order = np.argsort(out_r, kind="stable")  # group by user: top-k in score order, then the extras
    return out_r[order], np.concatenate(parts_i).astype(np.int64)[order], np.concatenate(parts_s).astype(np.float32)[order]


def exact_topk(item_vectors: np.ndarray, users: np.ndarray, k: int) -> np.ndarray:
    """Brute-force top-k item indices ``[n_users, k]`` with numpy (the reference the tests check faiss against)."""
    scores = users.astype(np.float32) @ item_vectors.astype(np.float32).T
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    out: np.ndarray = np.take_along_axis(part, order, axis=1)
    return out


def recall_at_k(reference: np.ndarray, approximate: np.ndarray) -> float:
    """Mean share of each row's reference top-k (``[n, k]`` item ids) that ``approximate`` also returned."""
    if reference.size == 0:
        return 1.0
    hits = [len(np.intersect1d(ref[ref >= 0], app[app >= 0])) / max(1, int((ref >= 0).sum()))
            for ref, app in zip(reference, approximate, strict=True)]
    return float(np.mean(hits))


def random_unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` random unit-norm float32 vectors (benchmarks and tests)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x
