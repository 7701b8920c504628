"""Stress test: 2-process gloo DDP with sparse id tables and SparseAdam, clipped as socialrec's loop clips.

Reproduces the intermittent rank crash (``malloc(): unaligned tcache chunk detected``, SIGSEGV/SIGABRT) of
2-process CPU training with sparse id tables (docs/training.md, "Known issue"):

    python scripts/stress_sparse_ddp.py socialrec 12 3000   # socialrec.training.loop.clip_gradients
    python scripts/stress_sparse_ddp.py inplace 10 3000     # the old clipping (sparse grads scaled with mul_)
    python scripts/stress_sparse_ddp.py noclip 10 3000      # no clipping at all

Arguments: mode, runs, steps per run. Prints each failed run's exit codes and ``<mode>: F/N runs failed``. Not a
test (minutes of CPU, and a failure is a probability): docs/training.md quotes its figures.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from socialrec.training.loop import clip_gradients, gradient_norm_and_scale

USERS, ITEMS, DIM = 20_000, 5_000, 32


def clip_in_place(parameters: Any, max_norm: float) -> None:
    """The clipping before the fix: sparse gradients scaled in place."""
    with_grads, _, scale = gradient_norm_and_scale(parameters, max_norm)
    for p in with_grads:
        p.grad.mul_(scale.to(p.grad.dtype))


class TwoTables(nn.Module):
    """A user and an item id table (sparse gradients) around a small dense tower, like socialrec's model."""

    def __init__(self) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(USERS, DIM, sparse=True)
        self.item_emb = nn.Embedding(ITEMS, DIM, sparse=True)
        self.tower = nn.Sequential(nn.Linear(2 * DIM, 64), nn.ReLU(), nn.Linear(64, DIM))

    def forward(self, users: torch.Tensor, neighbours: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        u = torch.cat([self.user_emb(users), self.user_emb(neighbours).mean(1)], 1)
        return (self.tower(u) * self.item_emb(items)).sum(-1)


def worker(rank: int, mode: str, steps: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = TwoTables()
    tables = [model.user_emb.weight, model.item_emb.weight]
    dense = list(model.tower.parameters())
    optimisers = [torch.optim.AdamW(dense, lr=1e-3), torch.optim.SparseAdam(tables, lr=1e-3)]
    ddp = nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    g = torch.Generator().manual_seed(rank + 1)
    for _ in range(steps):
        b = int(torch.randint(1, 512, (1,), generator=g))  # uneven batches: different nnz per rank
        users, items = torch.randint(0, USERS, (b,), generator=g), torch.randint(0, ITEMS, (b,), generator=g)
        neighbours = torch.randint(0, USERS, (b, 10), generator=g)
        loss = nn.functional.softplus(-ddp(users, neighbours, items)).mean()
        for o in optimisers:
            o.zero_grad(set_to_none=True)
        loss.backward()
        if mode == "socialrec":
            clip_gradients(model.parameters(), 1.0)
        elif mode == "inplace":
            clip_in_place(model.parameters(), 1.0)
        for o in optimisers:
            o.step()
    dist.destroy_process_group()


def main() -> None:
    mode, runs, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if mode not in ("socialrec", "inplace", "noclip"):
        raise SystemExit(f"unknown mode {mode!r}: socialrec, inplace or noclip")
    failed = 0
    ctx = mp.get_context("spawn")
    for r in range(runs):
        procs = [ctx.Process(target=worker, args=(rank, mode, steps, 29_500 + r % 50)) for rank in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        codes = [p.exitcode for p in procs]
        if any(codes):
            failed += 1
            print(f"run {r}: exit codes {codes}", flush=True)
    print(f"{mode}: {failed}/{runs} runs failed", flush=True)


if __name__ == "__main__":
    main()
