"""Full-ranking Recall@K / NDCG@K for the training loop (torch only).

Every item is ranked except the user's own excluded items (their training items), never a sample of
negatives (DESIGN §7). Ground truth and exclusions are ragged, passed as CSR-like ``(flat items, row ids)``.

Definitions (per user, then averaged over users with a non-empty truth):

* ``Recall@K = |top-K ∩ truth| / |truth|`` (RecBole's definition, used by the published LastFM/Ciao figures);
* ``NDCG@K = sum_{r <= K, item_r in truth} 1 / log2(r + 1)  /  sum_{r <= min(K, |truth|)} 1 / log2(r + 1)``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def ragged_to_csr(lists: Sequence[Sequence[int] | np.ndarray | None], device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """``(flat values, row ids)`` of a list of int lists (None = empty)."""
    lengths = [0 if x is None else len(x) for x in lists]
    flat = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists if x is not None and len(x)] or [np.zeros(0, np.int64)])
    rows = np.repeat(np.arange(len(lists), dtype=np.int64), lengths)
    return torch.from_numpy(flat).to(device), torch.from_numpy(rows).to(device)


def dense_mask(values: Tensor, rows: Tensor, n_rows: int, n_items: int) -> Tensor:
    """Boolean ``[n_rows, n_items]`` with True at every (row, value)."""
    mask = torch.zeros(n_rows, n_items, dtype=torch.bool, device=values.device)
    if values.numel():
        mask[rows, values] = True
    return mask


def full_ranking_sums(
    scores: Tensor, truth: tuple[Tensor, Tensor], exclude: tuple[Tensor, Tensor], ks: Sequence[int]
) -> dict[str, float]:
    """Sums over the batch's users of Recall@K and NDCG@K, plus ``users`` (those with a non-empty truth).

    Args:
        scores: ``[B, n_items]``, higher is better.
        truth: CSR ``(items, rows)`` of each user's held-out items.
        exclude: CSR ``(items, rows)`` of items never ranked for that user (their training items).
        ks: cut-offs.
    """
    b, n_items = scores.shape
    scores = scores.float().masked_fill(dense_mask(*exclude, b, n_items), float("-inf"))
    truth_mask = dense_mask(*truth, b, n_items)
    n_truth = truth_mask.sum(1)
    valid = n_truth > 0
    k_max = min(max(ks), n_items)
    top = torch.topk(scores, k_max, dim=1).indices
    # An excluded item can only reach the top-K when fewer than K items remain: never count it as a hit.
    hits = truth_mask.gather(1, top) & torch.isfinite(scores.gather(1, top))
    discounts = 1.0 / torch.log2(torch.arange(2, k_max + 2, device=scores.device, dtype=torch.float64))
    out: dict[str, float] = {"users": float(valid.sum())}
    for k in ks:
        kk = min(k, k_max)
        h = hits[:, :kk].double()
        recall = h.sum(1) / n_truth.clamp(min=1)
        dcg = (h * discounts[:kk]).sum(1)
        ideal_len = n_truth.clamp(max=kk)
        idcg = torch.cumsum(discounts[:kk], 0)[(ideal_len - 1).clamp(min=0)]
        ndcg = dcg / idcg
        out[f"recall@{k}"] = float(recall[valid].sum())
        out[f"ndcg@{k}"] = float(ndcg[valid].sum())
    return out


def merge_sums(total: dict[str, float], part: dict[str, float]) -> dict[str, float]:
    for key, value in part.items():
        total[key] = total.get(key, 0.0) + value
    return total


def means(sums: dict[str, float]) -> dict[str, float]:
    """Per-user means from :func:`full_ranking_sums` totals (``users`` kept as the count)."""
    n = sums.get("users", 0.0)
    return {k: (v if k == "users" else (v / n if n else 0.0)) for k, v in sums.items()}
