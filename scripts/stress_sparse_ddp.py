"""Stress test: 2-process gloo training with sparse id tables and SparseAdam, synced and clipped in chosen ways.

Reproduces the intermittent rank crash (``malloc(): unaligned tcache chunk detected``, SIGSEGV/SIGABRT) that
2-process CPU training had while DDP all-reduced the sparse id tables (docs/training.md, "Sparse id tables on
several CPU processes"), and checks that socialrec's path does not have it:

    python scripts/stress_sparse_ddp.py --sync socialrec --clip socialrec 20 3000   # what train_fn does
    python scripts/stress_sparse_ddp.py --sync socialrec --clip inplace 20 3000     # ... under the amplifier
    python scripts/stress_sparse_ddp.py --sync ddp --clip inplace 20 3000           # the crash, about 1 run in 4
    python scripts/stress_sparse_ddp.py --sync ddp --users 1000000 --items 100000 5 500  # 10M's tables

``--sync``: ``ddp`` (the tables in DDP: gloo's sparse all-reduce) or ``socialrec`` (``keep_tables_out_of_ddp``
+ ``all_reduce_sparse_gradients``). ``--clip``: ``socialrec`` (``clip_gradients``), ``inplace`` (sparse gradients
scaled with ``mul_``, which makes the crash more frequent) or ``none``. ``--users``/``--items``: the tables' rows
(the 10M platform has 1M x 100k). Prints each failed run's exit codes and ``<sync>/<clip>: F/N runs failed`` with
the median time a step took on rank 0 over the finished runs. Not a test (minutes of CPU, and a failure is a
probability): docs/training.md quotes its figures.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from socialrec.training.loop import (
    all_reduce_sparse_gradients,
    clip_gradients,
    gradient_norm_and_scale,
    keep_tables_out_of_ddp,
)

DIM = 32


def clip_in_place(parameters: Any, max_norm: float) -> None:
    """Sparse gradients scaled in place (the clipping before session 12): makes the DDP crash more frequent."""
    with_grads, _, scale = gradient_norm_and_scale(parameters, max_norm)
    for p in with_grads:
        p.grad.mul_(scale.to(p.grad.dtype))


class TwoTables(nn.Module):
    """A user and an item id table (sparse gradients) around a small dense tower, like socialrec's model (the same
    attribute names, so ``keep_tables_out_of_ddp`` finds them)."""

    def __init__(self, users: int, items: int) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(users, DIM, sparse=True)
        self.item_emb = nn.Embedding(items, DIM, sparse=True)
        self.tower = nn.Sequential(nn.Linear(2 * DIM, 64), nn.ReLU(), nn.Linear(64, DIM))

    def forward(self, users: torch.Tensor, neighbours: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        u = torch.cat([self.user_emb(users), self.user_emb(neighbours).mean(1)], 1)
        return (self.tower(u) * self.item_emb(items)).sum(-1)


def worker(rank: int, args: argparse.Namespace, port: int, seconds: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = TwoTables(args.users, args.items)
    tables = [model.user_emb.weight, model.item_emb.weight]
    dense = list(model.tower.parameters())
    optimisers = [torch.optim.AdamW(dense, lr=1e-3), torch.optim.SparseAdam(tables, lr=1e-3)]
    synced = keep_tables_out_of_ddp(model) if args.sync == "socialrec" else []
    ddp = nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    g = torch.Generator().manual_seed(rank + 1)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        b = int(torch.randint(1, 512, (1,), generator=g))  # uneven batches: different nnz per rank
        users, items = torch.randint(0, args.users, (b,), generator=g), torch.randint(0, args.items, (b,), generator=g)
        neighbours = torch.randint(0, args.users, (b, 10), generator=g)
        loss = nn.functional.softplus(-ddp(users, neighbours, items)).mean()
        for o in optimisers:
            o.zero_grad(set_to_none=True)
        loss.backward()
        if synced:
            all_reduce_sparse_gradients(synced, world=2)
        if args.clip == "socialrec":
            clip_gradients(model.parameters(), 1.0)
        elif args.clip == "inplace":
            clip_in_place(model.parameters(), 1.0)
        for o in optimisers:
            o.step()
    if rank == 0:
        seconds.put(time.perf_counter() - t0)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sync", choices=("ddp", "socialrec"), default="socialrec")
    parser.add_argument("--clip", choices=("socialrec", "inplace", "none"), default="socialrec")
    parser.add_argument("--users", type=int, default=20_000, help="rows of the user id table")
    parser.add_argument("--items", type=int, default=5_000, help="rows of the item id table")
    parser.add_argument("runs", type=int)
    parser.add_argument("steps", type=int)
    args = parser.parse_args()
    failed, durations = 0, []
    ctx = mp.get_context("spawn")
    seconds = ctx.SimpleQueue()
    for r in range(args.runs):
        procs = [
            ctx.Process(target=worker, args=(rank, args, 29_500 + r % 50, seconds))
            for rank in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        codes = [p.exitcode for p in procs]
        if any(codes):
            failed += 1
            print(f"run {r}: exit codes {codes}", flush=True)
        elif not seconds.empty():
            durations.append(seconds.get())
    per_step = f"{1000 * statistics.median(durations) / args.steps:.2f} ms" if durations else "n/a"
    print(f"{args.sync}/{args.clip}: {failed}/{args.runs} runs failed; median {per_step} a step (rank 0, "
          f"{len(durations)} finished runs)", flush=True)


if __name__ == "__main__":
    main()
