"""The two-tower social retrieval model (torch only: no Spark, no MLflow imports).

Scores are cosine similarities between a user vector and an item vector, divided by a temperature:

    s(u, i) = <f(u), g(i)> / tau,   with ||f(u)|| = ||g(i)|| = 1

**Item tower** ``g(i) = normalize(h_i + MLP(h_i))`` with ``h_i`` the sum of the switched-on parts:

* an item id embedding ``E_item[i]``;
* the frozen sentence embedding of the item's text ``t_i`` (MiniLM, 384-d) projected ``W_t t_i`` — a content
  branch that also gives new or rare items a meaningful vector (as in content-aware two-tower models);
* category and brand embeddings ``E_cat[c_i] + E_brand[b_i]``.

**User tower** ``f(u) = normalize(z_u + MLP(z_u))``, ``z_u`` the sum of:

* a user id embedding ``E_user[u]``;
* a sequence encoder over the user's last L items (oldest first, left-padded): a Transformer encoder over
  ``h_item + position`` whose output at the most recent position is the sequence vector, as in SASRec
  (Kang & McAuley, 2018, "Self-Attentive Sequential Recommendation"); or a masked mean (``seq_encoder="mean"``);
* social aggregation over the sampled 1-hop neighbours ``N(u)``: scaled dot-product attention with the
  user's own vector as the query and the neighbours' user embeddings as keys and values,
  ``sum_v softmax_v(<W_q q_u, W_k E_user[v]> / sqrt(d)) W_v E_user[v]`` — the attentive social aggregation of
  GraphRec (Fan et al., WWW 2019) and SAMN (Chen et al., WSDM 2019), over neighbours sampled by tie strength
  as in GraphSAGE/PinSage.

Padded positions (index ``-1``) never contribute: they are masked in attention and zeroed in pooling, and a
user with no history or no neighbours gets an exact zero from that branch.

**Loss**: sampled softmax over the in-batch items (every other example's positive is a negative) plus,
optionally, ``extra_negatives`` items drawn uniformly (mixed negative sampling, Yang et al., WWW 2020).
Each logit is corrected by the log of its expected count under the sampling distribution ("logQ
correction", Yi et al., RecSys 2019 "Sampling-bias-corrected neural modeling"): in-batch items are drawn in
proportion to their training frequency ``q_i``, so ``s - log(B q_i)``; uniform extras ``s - log(M / n_items)``.
Accidental hits (the positive item appearing as another column) are masked out.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PAD = -1  # padding index in sequence and neighbour arrays
_NEG = -1e9  # a finite "minus infinity": softmax over fully-masked rows stays NaN-free


@dataclass(frozen=True)
class ModelSpec:
    """Sizes and switches of :class:`SocialTwoTower`.

    Args:
        n_users: number of user indices (max user_idx + 1).
        n_items: number of item indices (max item_idx + 1).
        dim: embedding width (default: 64).
        seq_len: L, previous items per example (default: 20).
        n_neighbours: sampled 1-hop neighbours per user (default: 10).
        n_categories: category vocabulary size incl. 0 = unknown (default: 1).
        n_brands: brand vocabulary size incl. 0 = unknown (default: 1).
        text_dim: width of the frozen text embeddings; 0 = none (default: 0).
        use_user_id, use_sequence, use_social: user-tower branches (default: all on).
        use_item_id, use_text, use_category: item-tower branches (default: all on).
        seq_encoder: ``"transformer"`` or ``"mean"`` (default: transformer).
        seq_heads, seq_layers: Transformer size (default: 2 heads, 1 layer).
        dropout: dropout in the sequence encoder and MLPs (default: 0.1).
        temperature: tau of the softmax (default: 0.07).
        logq_correction: subtract log expected counts from the logits (default: True).
        neighbour_items: the social branch sees each neighbour as the mean of their (up to) this many training
            items (``user_items``, through :meth:`SocialTwoTower.item_base`) instead of their id embedding; 0 =
            id embeddings (default).
        full_softmax_max_items: a catalogue of at most this many items is trained with a softmax over every item
            (:attr:`full_softmax`), not sampled negatives; 0 = never (default).
    """

    n_users: int
    n_items: int
    dim: int = 64
    seq_len: int = 20
    n_neighbours: int = 10
    n_categories: int = 1
    n_brands: int = 1
    text_dim: int = 0
    use_user_id: bool = True
    use_sequence: bool = True
    use_social: bool = True
    use_item_id: bool = True
    use_text: bool = True
    use_category: bool = True
    seq_encoder: str = "transformer"
    seq_heads: int = 2
    seq_layers: int = 1
    dropout: float = 0.1
    temperature: float = 0.07
    logq_correction: bool = True
    neighbour_items: int = 0
    full_softmax_max_items: int = 0

    @property
    def full_softmax(self) -> bool:
        """Whether training scores every item (exact softmax): small catalogues, where all item vectors per step
        cost little and sampled negatives only approximate the full ranking the model is judged on."""
        return 0 < self.n_items <= self.full_softmax_max_items

    def __post_init__(self) -> None:
        if not (self.use_item_id or (self.use_text and self.text_dim) or self.use_category):
            raise ValueError("the item tower needs at least one branch (item id, text or category)")
        if not (self.use_user_id or self.use_sequence or self.use_social):
            raise ValueError("the user tower needs at least one branch (user id, sequence or social)")
        if self.seq_encoder not in ("transformer", "mean"):
            raise ValueError(f"seq_encoder must be 'transformer' or 'mean', not {self.seq_encoder!r}")
        if self.dim % self.seq_heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of seq_heads ({self.seq_heads})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mlp(dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim))


class SocialTwoTower(nn.Module):
    """User tower (id + sequence + social attention) and item tower (id + text + category/brand).

    Item side information lives in buffers, so a saved model scores the whole catalogue on its own.

    Args:
        spec: sizes and switches.
        item_text: ``[n_items, text_dim]`` frozen text embeddings (zeros for items without text).
        item_category: ``[n_items]`` category ids (0 = unknown).
        item_brand: ``[n_items]`` brand ids (0 = unknown).
        item_log_q: ``[n_items]`` log of each item's share of the training positives (logQ correction).
        user_items: ``[n_users, neighbour_items]`` each user's latest training items (PAD = -1), when
            ``spec.neighbour_items``: what the social branch sees of a neighbour.
    """

    item_text: Tensor
    item_category: Tensor
    item_brand: Tensor
    item_log_q: Tensor
    user_items: Tensor | None

    def __init__(
        self,
        spec: ModelSpec,
        item_text: Tensor | None = None,
        item_category: Tensor | None = None,
        item_brand: Tensor | None = None,
        item_log_q: Tensor | None = None,
        user_items: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        d, n_items = spec.dim, spec.n_items
        self.register_buffer("item_text", _or_zeros(item_text, (n_items, spec.text_dim), torch.float32))
        self.register_buffer("item_category", _or_zeros(item_category, (n_items,), torch.long))
        self.register_buffer("item_brand", _or_zeros(item_brand, (n_items,), torch.long))
        uniform = torch.full((n_items,), -math.log(max(n_items, 1)))
        self.register_buffer("item_log_q", uniform if item_log_q is None else item_log_q.float())
        bags = None
        if spec.neighbour_items and spec.use_social:
            bags = torch.full((spec.n_users, spec.neighbour_items), -1, dtype=torch.int32)
            if user_items is not None:
                bags = user_items.to(torch.int32)
                if tuple(bags.shape) != (spec.n_users, spec.neighbour_items):
                    raise ValueError(f"user_items must be [{spec.n_users}, {spec.neighbour_items}], not {list(bags.shape)}")
        self.register_buffer("user_items", bags)

        self.item_emb = nn.Embedding(n_items, d) if spec.use_item_id else None
        self.text_proj = nn.Linear(spec.text_dim, d) if spec.use_text and spec.text_dim else None
        self.cat_emb = nn.Embedding(spec.n_categories, d) if spec.use_category else None
        self.brand_emb = nn.Embedding(spec.n_brands, d) if spec.use_category else None
        self.item_mlp = _mlp(d, spec.dropout)

        # Neighbours need ids only when the social branch sees them as id embeddings.
        ids_for_social = spec.use_social and not spec.neighbour_items
        self.user_emb = nn.Embedding(spec.n_users, d) if spec.use_user_id or ids_for_social else None
        self.seq_pos = nn.Embedding(spec.seq_len, d) if spec.use_sequence else None
        self.seq_encoder: nn.TransformerEncoder | None = None
        if spec.use_sequence and spec.seq_encoder == "transformer":
            layer = nn.TransformerEncoderLayer(
                d, spec.seq_heads, dim_feedforward=2 * d, dropout=spec.dropout, batch_first=True, norm_first=True
            )
            self.seq_encoder = nn.TransformerEncoder(layer, spec.seq_layers, enable_nested_tensor=False)
        self.social_q = nn.Linear(d, d, bias=False) if spec.use_social else None
        self.social_k = nn.Linear(d, d, bias=False) if spec.use_social else None
        self.social_v = nn.Linear(d, d, bias=False) if spec.use_social else None
        # The query when the user tower has neither an id nor a sequence branch.
        # (Only created when used: DDP requires every parameter to take part in the loss.)
        needs_default = spec.use_social and not (spec.use_user_id or spec.use_sequence)
        self.social_default_query = nn.Parameter(torch.zeros(d)) if needs_default else None
        self.user_mlp = _mlp(d, spec.dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in (self.item_emb, self.cat_emb, self.brand_emb, self.user_emb, self.seq_pos):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.05)

    # ------------------------------------------------------------------------------------ item tower
    def item_base(self, item_idx: Tensor) -> Tensor:
        """``h_i``: the un-normalised item representation (also the sequence encoder's input)."""
        idx = item_idx.clamp(min=0)
        h = torch.zeros(*idx.shape, self.spec.dim, device=idx.device)
        if self.item_emb is not None:
            h = h + self.item_emb(idx)
        if self.text_proj is not None:
            h = h + self.text_proj(self.item_text[idx])
        if self.cat_emb is not None and self.brand_emb is not None:
            h = h + self.cat_emb(self.item_category[idx]) + self.brand_emb(self.item_brand[idx])
        return h

    def item_vectors(self, item_idx: Tensor) -> Tensor:
        """``g(i)``: unit-norm item vectors, shape ``[*item_idx.shape, dim]``."""
        h = self.item_base(item_idx)
        return F.normalize(h + self.item_mlp(h), dim=-1)

    def all_item_vectors(self, chunk: int = 65536) -> Tensor:
        """``g(i)`` for every item, ``[n_items, dim]`` (in chunks, so large catalogues fit)."""
        device = self.item_log_q.device
        parts = [
            self.item_vectors(torch.arange(s, min(s + chunk, self.spec.n_items), device=device))
            for s in range(0, self.spec.n_items, chunk)
        ]
        return torch.cat(parts) if parts else torch.zeros(0, self.spec.dim, device=device)

    # ------------------------------------------------------------------------------------ user tower
    def encode_sequence(self, seq: Tensor) -> Tensor:
        """Sequence vector ``[B, dim]`` from left-padded item indices ``[B, L]`` (PAD = -1)."""
        mask = seq >= 0
        has_any = mask.any(dim=1, keepdim=True)
        assert self.seq_pos is not None
        positions = torch.arange(seq.shape[1], device=seq.device)
        x = self.item_base(seq) + self.seq_pos(positions)[None, :, :]
        if self.seq_encoder is None:
            pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
            return pooled * has_any
        # A row with no items at all would be fully masked (NaN attention): unmask its last slot, then zero
        # the result. Rows with items keep their exact mask.
        key_padding = ~mask
        key_padding[:, -1] &= has_any[:, 0]
        out = self.seq_encoder(x, src_key_padding_mask=key_padding)
        # Left padding puts the most recent item last; it has attended to the whole history.
        return out[:, -1, :] * has_any

    def aggregate_neighbours(self, query: Tensor, neighbours: Tensor) -> Tensor:
        """Attention over sampled neighbours ``[B, N]`` (PAD = -1) with ``query`` ``[B, dim]``; zero if none.

        A neighbour is their id embedding, or (``spec.neighbour_items``) the mean of their latest training items
        through the item tower's base; a neighbour without training items then takes no part."""
        assert self.social_q is not None and self.social_k is not None and self.social_v is not None
        mask = neighbours >= 0
        if self.user_items is not None:
            items = self.user_items[neighbours.clamp(min=0)].long()  # [B, N, M]
            present = items >= 0
            h = self.item_base(items) * present[..., None]
            nb = h.sum(2) / present.sum(2, keepdim=True).clamp(min=1)
            mask = mask & present.any(2)
        else:
            assert self.user_emb is not None
            nb = self.user_emb(neighbours.clamp(min=0))
        q = self.social_q(query)[:, None, :]
        scores = (q * self.social_k(nb)).sum(-1) / math.sqrt(self.spec.dim)
        att = torch.softmax(scores.masked_fill(~mask, _NEG), dim=1) * mask
        return (att[..., None] * self.social_v(nb)).sum(1)

    def user_vectors(self, user_idx: Tensor, seq: Tensor, neighbours: Tensor) -> Tensor:
        """``f(u)``: unit-norm user vectors ``[B, dim]``."""
        z = torch.zeros(user_idx.shape[0], self.spec.dim, device=user_idx.device)
        if self.spec.use_user_id:
            assert self.user_emb is not None
            z = z + self.user_emb(user_idx.clamp(min=0))
        if self.spec.use_sequence:
            z = z + self.encode_sequence(seq)
        if self.spec.use_social:
            query = z if self.social_default_query is None else self.social_default_query.expand_as(z)
            z = z + self.aggregate_neighbours(query, neighbours)
        return F.normalize(z + self.user_mlp(z), dim=-1)

    def forward(
        self, user_idx: Tensor, seq: Tensor, neighbours: Tensor, item_idx: Tensor, negatives: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """User vectors, positive item vectors and (optional) extra negative vectors, for :meth:`loss`.

        Training goes through ``forward`` so DistributedDataParallel sees every parameter used.
        """
        u = self.user_vectors(user_idx, seq, neighbours)
        v = self.item_vectors(item_idx)
        v_neg = self.item_vectors(negatives) if negatives is not None else None
        return u, v, v_neg

    # ------------------------------------------------------------------------------------------ loss
    def loss(
        self,
        u: Tensor,
        v: Tensor,
        item_idx: Tensor,
        v_neg: Tensor | None = None,
        neg_idx: Tensor | None = None,
    ) -> Tensor:
        """Sampled-softmax cross-entropy with in-batch (and optional uniform) negatives; see module docstring.

        With :attr:`ModelSpec.full_softmax`, ``v_neg`` holds every item's vector (``neg_idx`` = all item indices)
        and the loss is the exact softmax over the catalogue: no sampling, so no logQ correction."""
        tau = self.spec.temperature
        if self.spec.full_softmax:
            if v_neg is None or v_neg.shape[0] != self.spec.n_items:
                raise ValueError("full softmax: pass every item's vector as v_neg (negatives = all item indices)")
            return F.cross_entropy((u @ v_neg.T / tau).float(), item_idx)
        logits = u @ v.T / tau
        if self.spec.logq_correction:
            logits = logits - (self.item_log_q[item_idx] + math.log(v.shape[0]))[None, :]
        # The same item as another example's positive is not a negative for this one.
        hits = item_idx[None, :] == item_idx[:, None]
        hits.fill_diagonal_(False)
        logits = logits.masked_fill(hits, _NEG)
        if v_neg is not None and neg_idx is not None:
            extra = u @ v_neg.T / tau
            if self.spec.logq_correction:
                extra = extra - math.log(v_neg.shape[0] / self.spec.n_items)
            extra = extra.masked_fill(neg_idx[None, :] == item_idx[:, None], _NEG)
            logits = torch.cat([logits, extra], dim=1)
        target = torch.arange(u.shape[0], device=u.device)
        return F.cross_entropy(logits.float(), target)

    def score_items(self, u: Tensor, items: Tensor | None = None) -> Tensor:
        """``<f(u), g(i)>`` against all items (or the given item vectors), ``[B, n_items]``."""
        return u @ (self.all_item_vectors() if items is None else items).T


def _or_zeros(t: Tensor | None, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    if t is None:
        return torch.zeros(shape, dtype=dtype)
    if tuple(t.shape) != shape:
        raise ValueError(f"expected shape {shape}, got {tuple(t.shape)}")
    return t.to(dtype)


class UserEncoder(nn.Module):
    """What is logged to MLflow: ``forward(features) -> user vectors``, plus the item side.

    ``features`` is one int64 row per user: ``[user_idx, seq_1..seq_L, neighbour_1..neighbour_N]`` with -1 as
    padding, so the pyfunc signature is one tensor ``(-1, 1 + L + N) -> (-1, dim)``. Batch scoring loads the
    module with ``mlflow.pytorch.load_model`` and calls :meth:`forward` and :meth:`item_vectors`.
    """

    def __init__(self, model: SocialTwoTower) -> None:
        super().__init__()
        self.model = model
        self.seq_len = model.spec.seq_len
        self.n_neighbours = model.spec.n_neighbours

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    def forward(self, features: Tensor) -> Tensor:
        features = features.long()
        user_idx = features[:, 0]
        seq = features[:, 1 : 1 + self.seq_len]
        neighbours = features[:, 1 + self.seq_len : 1 + self.seq_len + self.n_neighbours]
        return self.model.user_vectors(user_idx, seq, neighbours)

    def item_vectors(self) -> Tensor:
        return self.model.all_item_vectors()


def pack_user_features(user_idx: Tensor, seq: Tensor, neighbours: Tensor) -> Tensor:
    """The :class:`UserEncoder` input row layout."""
    return torch.cat([user_idx.long()[:, None], seq.long(), neighbours.long()], dim=1)
