"""Full-ranking Recall@K / NDCG@K of the training loop against hand-computed examples."""
from __future__ import annotations

import math

import pytest
import torch

from socialrec.training.ranking import full_ranking_sums, means, ragged_to_csr


def test_hand_computed_recall_and_ndcg() -> None:
    # 6 items. User 0 ranks 5 > 4 > 3 > 2 > 1 > 0 but item 5 is a training item (excluded), so the ranking is
    # 4, 3, 2, 1, 0; truth {3, 0}: hits at ranks 2 and 5. User 1 has an empty truth (not counted).
    # User 2 ranks 0 > 1 > ... ; truth {1}: hit at rank 2.
    scores = torch.tensor([[0.0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [5, 4, 3, 2, 1, 0]])
    truth = ragged_to_csr([[3, 0], [], [1]])
    exclude = ragged_to_csr([[5], [0], []])
    got = means(full_ranking_sums(scores, truth, exclude, ks=[2, 5]))
    d = [1 / math.log2(r + 1) for r in range(1, 6)]
    ndcg2_u0 = d[1] / (d[0] + d[1])
    ndcg5_u0 = (d[1] + d[4]) / (d[0] + d[1])
    ndcg_u2 = d[1] / d[0]
    assert got["users"] == 2
    assert got["recall@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert got["recall@5"] == pytest.approx((1.0 + 1.0) / 2)
    assert got["ndcg@2"] == pytest.approx((ndcg2_u0 + ndcg_u2) / 2)
    assert got["ndcg@5"] == pytest.approx((ndcg5_u0 + ndcg_u2) / 2)


def test_excluded_items_never_count_even_when_k_exceeds_what_is_left() -> None:
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    got = means(full_ranking_sums(scores, ragged_to_csr([[0]]), ragged_to_csr([[0, 1]]), ks=[3]))
    assert got["recall@3"] == 0.0 and got["ndcg@3"] == 0.0
