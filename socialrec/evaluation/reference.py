"""An independent, plain-Python/numpy implementation of the metrics in :mod:`socialrec.evaluation.metrics`.

Written separately from the Spark code (loops over dictionaries, no shared helpers) so that tests can check
the Spark results against it to 1e-9 on the same predictions. Small data only.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np


def accuracy(recs: Mapping[str, Sequence[str]], truth: Mapping[str, set[str]], ks: Sequence[int]) -> dict[str, float]:
    """Mean ``<metric>@<k>`` and ``mrr`` over users with a non-empty truth (a missing list counts as empty)."""
    users = [u for u, t in truth.items() if t]
    out: dict[str, float] = {}
    for k in ks:
        sums = dict.fromkeys(("recall", "precision", "hit_rate", "ndcg", "map"), 0.0)
        for u in users:
            ranked = list(recs.get(u, []))[:k]
            t = truth[u]
            hit_flags = [item in t for item in ranked]
            n_hits = sum(hit_flags)
            sums["recall"] += n_hits / len(t)
            sums["precision"] += n_hits / k
            sums["hit_rate"] += 1.0 if n_hits else 0.0
            dcg = sum(1.0 / math.log2(i + 2) for i, h in enumerate(hit_flags) if h)
            idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(t), k)))
            sums["ndcg"] += dcg / idcg
            seen, ap = 0, 0.0
            for i, h in enumerate(hit_flags):
                if h:
                    seen += 1
                    ap += seen / (i + 1)
            sums["map"] += ap / min(len(t), k)
        for m, v in sums.items():
            out[f"{m}@{k}"] = v / len(users) if users else 0.0
    mrr = 0.0
    for u in users:
        for i, item in enumerate(recs.get(u, [])):
            if item in truth[u]:
                mrr += 1.0 / (i + 1)
                break
    out["mrr"] = mrr / len(users) if users else 0.0
    return out


def coverage(recs: Mapping[str, Sequence[str]], catalogue: Sequence[str], k: int) -> float:
    return len({i for lst in recs.values() for i in list(lst)[:k]}) / len(set(catalogue))


def gini(recs: Mapping[str, Sequence[str]], catalogue: Sequence[str], k: int) -> float:
    counts = Counter(i for lst in recs.values() for i in list(lst)[:k])
    x = np.sort(np.array([counts.get(i, 0) for i in sorted(set(catalogue))], dtype=np.float64))
    n = len(x)
    if x.sum() == 0:
        return 0.0
    # Gini via the mean absolute difference: sum_i sum_j |x_i - x_j| / (2 n^2 mean)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * n * n * x.mean()))


def novelty(recs: Mapping[str, Sequence[str]], train: Sequence[tuple[str, str]], k: int) -> float:
    users_of: dict[str, set[str]] = {}
    for u, i in train:
        users_of.setdefault(i, set()).add(u)
    n_users = len({u for u, _ in train}) or 1
    vals = [-math.log2(max(len(users_of.get(i, ())), 1) / n_users) for lst in recs.values() for i in list(lst)[:k]]
    return sum(vals) / len(vals) if vals else 0.0


def ild_category(recs: Mapping[str, Sequence[str]], category: Mapping[str, str | None], k: int) -> float:
    vals = []
    for lst in recs.values():
        items = list(lst)[:k]
        if len(items) < 2:
            continue
        cats = [category.get(i) or "(none)" for i in items]
        pairs = [(a, b) for x, a in enumerate(cats) for b in cats[x + 1 :]]
        vals.append(sum(a != b for a, b in pairs) / len(pairs))
    return sum(vals) / len(vals) if vals else 0.0


def ild_embedding(recs: Mapping[str, Sequence[str]], vectors: Mapping[str, Sequence[float]], k: int) -> float:
    vals = []
    for lst in recs.values():
        items = [i for i in list(lst)[:k] if i in vectors]
        if len(items) < 2:
            continue
        v = np.array([vectors[i] for i in items], dtype=np.float64)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        dists = [1.0 - float(v[a] @ v[b]) for a in range(len(items)) for b in range(a + 1, len(items))]
        vals.append(sum(dists) / len(dists))
    return sum(vals) / len(vals) if vals else 0.0
