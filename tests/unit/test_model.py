"""The two-tower model: shapes, masking of padded sequences and neighbours, the loss, the branch switches."""
from __future__ import annotations

import math

import pytest
import torch

from socialrec.training.model import ModelSpec, SocialTwoTower, UserEncoder, pack_user_features

N_USERS, N_ITEMS, L, N = 6, 8, 4, 3


def make(**switches: object) -> SocialTwoTower:
    torch.manual_seed(0)
    spec = ModelSpec(n_users=N_USERS, n_items=N_ITEMS, dim=8, seq_len=L, n_neighbours=N, n_categories=3, n_brands=2,
                     text_dim=5, seq_heads=2, **switches)  # type: ignore[arg-type]
    model = SocialTwoTower(
        spec,
        item_text=torch.randn(N_ITEMS, 5),
        item_category=torch.tensor([0, 1, 2, 1, 0, 2, 1, 1]),
        item_brand=torch.tensor([1, 0, 1, 1, 0, 0, 1, 0]),
    )
    return model.eval()


USERS = torch.tensor([1, 2, 3])
SEQ = torch.tensor([[-1, -1, 2, 3], [4, 5, 6, 7], [-1, -1, -1, -1]])
NBRS = torch.tensor([[4, -1, -1], [-1, -1, -1], [2, 3, 5]])


@pytest.mark.parametrize("encoder", ["transformer", "mean"])
def test_shapes_and_unit_norms(encoder: str) -> None:
    model = make(seq_encoder=encoder)
    u, v, v_neg = model(USERS, SEQ, NBRS, torch.tensor([0, 1, 2]), torch.tensor([5, 6]))
    assert u.shape == (3, 8) and v.shape == (3, 8) and v_neg is not None and v_neg.shape == (2, 8)
    assert model.all_item_vectors().shape == (N_ITEMS, 8)
    assert model.score_items(u).shape == (3, N_ITEMS)
    for t in (u, v, v_neg):
        assert torch.allclose(t.norm(dim=-1), torch.ones(t.shape[0]), atol=1e-5)
        assert torch.isfinite(t).all()


@pytest.mark.parametrize("encoder", ["transformer", "mean"])
def test_padded_positions_never_contribute(encoder: str) -> None:
    """Padding (-1) is clamped to index 0 for the lookup; if masking leaked, changing index 0 would show."""
    model = make(seq_encoder=encoder)
    rows = [0, 2]  # neither row's sequence or neighbours contain item 0 / user 0
    with torch.no_grad():
        before = model.user_vectors(USERS, SEQ, NBRS)[rows]
        seq_before = model.encode_sequence(SEQ)
        model.item_emb.weight[0] += 10.0  # type: ignore[union-attr]
        model.item_text[0] += 10.0
        model.user_emb.weight[0] += 10.0  # type: ignore[union-attr]
        after = model.user_vectors(USERS, SEQ, NBRS)[rows]
    assert torch.allclose(before, after, atol=1e-6)
    # A user with no history gets an exact zero from the sequence branch (and no NaN).
    assert torch.equal(seq_before[2], torch.zeros(8))


def test_user_without_neighbours_gets_zero_from_the_social_branch() -> None:
    model = make()
    with torch.no_grad():
        agg = model.aggregate_neighbours(torch.randn(3, 8), NBRS)
    assert torch.equal(agg[1], torch.zeros(8))
    assert agg[0].abs().sum() > 0 and agg[2].abs().sum() > 0


def test_batch_rows_are_independent() -> None:
    model = make()
    with torch.no_grad():
        together = model.user_vectors(USERS, SEQ, NBRS)
        alone = torch.cat([model.user_vectors(USERS[i : i + 1], SEQ[i : i + 1], NBRS[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_loss_is_in_batch_softmax_cross_entropy() -> None:
    model = make(temperature=0.5, logq_correction=False)
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    items = torch.tensor([3, 4])
    got = model.loss(u, v, items)
    # row 0: logits (0.6, 1.0) / 0.5 -> target 0; row 1: (0.8, 0.0) / 0.5 -> target 1
    def ce(logits: list[float], target: int) -> float:
        return -(logits[target] - math.log(sum(math.exp(x) for x in logits)))

    expected = (ce([1.2, 2.0], 0) + ce([1.6, 0.0], 1)) / 2
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_loss_logq_correction_and_accidental_hits() -> None:
    model = make(temperature=1.0, logq_correction=True)
    model.item_log_q[:] = torch.log(torch.full((N_ITEMS,), 0.1))
    model.item_log_q[4] = math.log(0.5)
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    got = model.loss(u, v, torch.tensor([3, 4]))
    # every column j is corrected by log(B * q_j): q_3 = 0.1, q_4 = 0.5, B = 2
    c3, c4 = math.log(2 * 0.1), math.log(2 * 0.5)
    def ce(logits: list[float], target: int) -> float:
        return -(logits[target] - math.log(sum(math.exp(x) for x in logits)))

    expected = (ce([0.6 - c3, 1.0 - c4], 0) + ce([0.8 - c3, 0.0 - c4], 1)) / 2
    assert got.item() == pytest.approx(expected, abs=1e-6)
    # The same item twice in a batch is not its own negative: each row only has its positive left.
    same = model.loss(u, v, torch.tensor([3, 3]))
    assert same.item() == pytest.approx(0.0, abs=1e-6)


def test_extra_negatives_equal_to_the_positive_are_masked() -> None:
    model = make(temperature=1.0, logq_correction=False)
    u = torch.tensor([[1.0, 0.0]])
    v = torch.tensor([[1.0, 0.0]])
    base = model.loss(u, v, torch.tensor([2]))
    with_self = model.loss(u, v, torch.tensor([2]), v_neg=torch.tensor([[1.0, 0.0]]), neg_idx=torch.tensor([2]))
    with_other = model.loss(u, v, torch.tensor([2]), v_neg=torch.tensor([[0.0, 1.0]]), neg_idx=torch.tensor([5]))
    assert with_self.item() == pytest.approx(base.item(), abs=1e-6)
    assert with_other.item() == pytest.approx(-(1.0 - math.log(math.exp(1.0) + math.exp(0.0))), abs=1e-6)


def test_full_softmax_is_the_exact_cross_entropy_over_the_catalogue() -> None:
    model = make(temperature=0.5, full_softmax_max_items=N_ITEMS)
    assert model.spec.full_softmax and not make(full_softmax_max_items=N_ITEMS - 1).spec.full_softmax
    assert not make().spec.full_softmax  # 0 = never
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    every = torch.tensor([[float(i), 1.0] for i in range(N_ITEMS)])  # stand-ins for the catalogue's vectors
    items = torch.tensor([3, 0])
    got = model.loss(u, torch.zeros(2, 2), items, every, torch.arange(N_ITEMS))

    def ce(logits: list[float], target: int) -> float:
        return -(logits[target] - math.log(sum(math.exp(x) for x in logits)))

    # no logQ correction and no in-batch columns: row r scores item i as <u_r, every_i> / 0.5
    expected = (ce([2.0 * i for i in range(N_ITEMS)], 3) + ce([2.0] * N_ITEMS, 0)) / 2
    assert got.item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="every item's vector"):
        model.loss(u, torch.zeros(2, 2), items)


def test_neighbours_as_item_bags_replace_their_id_embeddings() -> None:
    torch.manual_seed(0)
    spec = ModelSpec(n_users=N_USERS, n_items=N_ITEMS, dim=8, seq_len=L, n_neighbours=N, text_dim=5, seq_heads=2,
                     use_user_id=False, neighbour_items=3)
    bags = torch.full((N_USERS, 3), -1, dtype=torch.int32)
    bags[4] = torch.tensor([1, 2, -1], dtype=torch.int32)
    bags[2] = torch.tensor([7, -1, -1], dtype=torch.int32)  # user 3 (and 5) have no training items
    model = SocialTwoTower(spec, item_text=torch.randn(N_ITEMS, 5), user_items=bags).eval()
    assert model.user_emb is None  # no id is embedded: neither the user's nor the neighbours'
    query = torch.randn(3, 8)
    nbrs = torch.tensor([[4, -1, -1], [3, 5, -1], [2, 3, 4]])
    got = model.aggregate_neighbours(query, nbrs)
    assert torch.equal(got[1], torch.zeros(8))  # neighbours without items take no part
    assert model.social_q is not None and model.social_k is not None and model.social_v is not None
    with torch.no_grad():
        four = model.item_base(torch.tensor([1, 2])).mean(0)
        two = model.item_base(torch.tensor([7]))[0]
        # row 2: attention over neighbours 2 and 4 only (3 has no items), each the mean of their bag
        keys = model.social_k(torch.stack([two, four]))
        att = torch.softmax(keys @ model.social_q(query[2]) / math.sqrt(8), dim=0)
        expected = att[0] * model.social_v(two) + att[1] * model.social_v(four)
        assert torch.allclose(got[0], model.social_v(four), atol=1e-6)  # one neighbour: all the attention
    assert torch.allclose(got[2], expected, atol=1e-6)
    with pytest.raises(ValueError, match="user_items must be"):
        SocialTwoTower(spec, user_items=torch.zeros(N_USERS, 2, dtype=torch.int32))


def test_branches_switch_off() -> None:
    no_social = make(use_social=False)
    assert no_social.social_q is None
    assert not any("social" in name for name, _ in no_social.named_parameters())
    no_text = make(use_text=False)
    assert no_text.text_proj is None
    no_seq = make(use_sequence=False)
    assert no_seq.seq_encoder is None and no_seq.seq_pos is None
    only_social = make(use_user_id=False, use_sequence=False)
    assert only_social.user_vectors(USERS, SEQ, NBRS).shape == (3, 8)
    with pytest.raises(ValueError, match="user tower needs at least one branch"):
        make(use_user_id=False, use_sequence=False, use_social=False)
    with pytest.raises(ValueError, match="item tower needs at least one branch"):
        make(use_item_id=False, use_text=False, use_category=False)


def test_user_encoder_matches_the_model_on_packed_rows() -> None:
    model = make()
    enc = UserEncoder(model)
    with torch.no_grad():
        packed = pack_user_features(USERS, SEQ, NBRS)
        assert packed.shape == (3, 1 + L + N)
        assert torch.allclose(enc(packed), model.user_vectors(USERS, SEQ, NBRS))
        assert torch.allclose(enc.item_vectors(), model.all_item_vectors())
