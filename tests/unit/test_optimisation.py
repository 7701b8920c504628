"""Sparse id tables in training: the gradient clipping, the lazy optimiser, and when they are used."""
from __future__ import annotations

import copy
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from socialrec.training.loop import all_reduce_sparse_gradients, clip_gradients, make_optimizers, sparse_tables_usable
from tests.unit.test_model import NBRS, SEQ, USERS, make

ITEMS = torch.tensor([0, 1, 2])
JOB = {"lr": 0.01, "weight_decay": 0.0}


def _backward(model: torch.nn.Module) -> None:
    u, v, _ = model(USERS, SEQ, NBRS, ITEMS, None)
    model.loss(u, v, ITEMS).backward()


def test_sparse_gradients_equal_the_dense_ones_and_clip_the_same() -> None:
    reference, sparse = make(), make()
    make_optimizers(reference, JOB, sparse=False)
    make_optimizers(sparse, JOB, sparse=True)
    _backward(reference)
    _backward(sparse)
    assert sparse.user_emb is not None and sparse.item_emb is not None
    assert sparse.user_emb.weight.grad is not None and sparse.user_emb.weight.grad.is_sparse
    assert sparse.item_emb.weight.grad is not None and sparse.item_emb.weight.grad.is_sparse

    expected_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.05)
    norm = clip_gradients(sparse.parameters(), 0.05)
    assert float(expected_norm) > 0.05  # the limit bites, so the scaling is tested too
    torch.testing.assert_close(norm, expected_norm)
    for (name, p), q in zip(sparse.named_parameters(), reference.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None, name
        torch.testing.assert_close(p.grad.to_dense(), q.grad, msg=name)


def test_clip_gradients_leaves_small_gradients_alone() -> None:
    model = make()
    make_optimizers(model, JOB, sparse=True)
    _backward(model)
    before = [p.grad.to_dense().clone() for p in model.parameters() if p.grad is not None]
    clip_gradients(model.parameters(), 1e6)
    after = [p.grad.to_dense() for p in model.parameters() if p.grad is not None]
    for b, a in zip(before, after, strict=True):
        torch.testing.assert_close(a, b)


def test_a_first_step_is_the_dense_adam_step_and_only_touched_rows_move() -> None:
    # Adam's first step is lr * g / (|g| + eps') per coordinate, and 0 where g is 0, so without weight decay a
    # sparse step and a dense one agree; what differs later is that untouched rows keep their momentum. The two
    # put eps before and after the bias correction, which only shows where |g| is near eps / 0.03, so the exact
    # comparison is on the coordinates with |g| > 1e-3 (the rest still move by at most lr, both ways).
    dense, sparse = make(), make()
    start = copy.deepcopy(sparse)
    grads: dict[str, torch.Tensor] = {}
    for model, is_sparse in ((dense, False), (sparse, True)):
        optimizers = make_optimizers(model, JOB, sparse=is_sparse)
        assert [type(o).__name__ for o in optimizers] == (["AdamW", "SparseAdam"] if is_sparse else ["AdamW"])
        _backward(model)
        clip_gradients(model.parameters(), 5.0)
        if not is_sparse:
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        for o in optimizers:
            o.step()
    for (name, p), q in zip(sparse.named_parameters(), dense.parameters(), strict=True):
        clear = grads[name].abs() > 1e-3
        assert clear.any() or name not in ("user_emb.weight", "item_emb.weight"), name
        torch.testing.assert_close(p[clear], q[clear], atol=1e-5, rtol=0, msg=name)
        assert (p - q).abs().max() <= JOB["lr"], name

    assert sparse.user_emb is not None and start.user_emb is not None
    touched_users = sorted(set(USERS.tolist()) | {n for n in NBRS.flatten().tolist() if n >= 0})
    moved = (sparse.user_emb.weight != start.user_emb.weight).any(dim=1).nonzero().flatten().tolist()
    assert moved == touched_users


def test_sparse_tables_are_used_where_the_all_reduce_can_carry_them() -> None:
    assert sparse_tables_usable({"sparse_embeddings": True}, world=2, use_gpu=False)  # gloo
    assert sparse_tables_usable({"sparse_embeddings": True}, world=1, use_gpu=True)  # no all-reduce
    assert not sparse_tables_usable({"sparse_embeddings": True}, world=2, use_gpu=True)  # NCCL: none sparse
    assert not sparse_tables_usable({"sparse_embeddings": False}, world=2, use_gpu=False)
    assert not sparse_tables_usable({}, world=1, use_gpu=False)


# Each rank's sparse gradient rows of a [6, 2] and a [4, 2] table: uneven row counts, a row touched twice on one rank
# (uncoalesced), rows shared by both ranks, and rank 1 without any gradient for the second table.
RANK_ROWS = {
    0: ({"ids": [0, 3, 3], "rows": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]}, {"ids": [1], "rows": [[1.0, 1.0]]}),
    1: ({"ids": [3, 5], "rows": [[10.0, 20.0], [30.0, 40.0]]}, None),
}


def _sparse_sync_rank(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    tables = [torch.nn.Parameter(torch.zeros(6, 2)), torch.nn.Parameter(torch.zeros(4, 2))]
    for table, grad in zip(tables, RANK_ROWS[rank], strict=True):
        if grad is not None:
            table.grad = torch.sparse_coo_tensor(torch.tensor([grad["ids"]]), torch.tensor(grad["rows"]), table.shape)
    all_reduce_sparse_gradients(tables, world=2)
    torch.save([t.grad for t in tables], Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_all_reduce_sparse_gradients_averages_the_ranks_rows_over_real_gloo(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_sparse_sync_rank, args=(port, str(tmp_path)), nprocs=2, start_method="spawn")
    expected_first = torch.zeros(6, 2)
    expected_first[0] = torch.tensor([1.0, 2.0]) / 2
    expected_first[3] = torch.tensor([3.0 + 5.0 + 10.0, 4.0 + 6.0 + 20.0]) / 2
    expected_first[5] = torch.tensor([30.0, 40.0]) / 2
    expected_second = torch.zeros(4, 2)
    expected_second[1] = torch.tensor([1.0, 1.0]) / 2
    for rank in (0, 1):
        first, second = torch.load(tmp_path / f"rank{rank}.pt")
        assert first.is_sparse and first.is_coalesced() and second.is_sparse, rank
        assert first._indices().tolist() == [[0, 3, 5]], rank  # only the rows some rank touched travel
        torch.testing.assert_close(first.to_dense(), expected_first, rtol=0, atol=0)
        torch.testing.assert_close(second.to_dense(), expected_second, rtol=0, atol=0)
