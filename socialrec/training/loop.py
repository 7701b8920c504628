"""The per-rank training function that ``TorchDistributor`` ships to each process (torch only, no Spark).

:func:`train_fn` takes one plain, picklable ``job`` dict (built by :mod:`socialrec.training.data` on the
driver) and imports everything it needs inside, so it runs the same in a ``local_mode`` subprocess, on an
executor, or in-process for debugging. What each rank does:

1. joins the process group (gloo on CPU, nccl on GPU) when ``WORLD_SIZE > 1`` and wraps the model in DDP (sparse
   id tables apart: ``all_reduce_sparse_gradients`` averages theirs);
2. reads **its own shard** of the petastorm cache (``cur_shard = rank``) as an endless stream and takes exactly
   ``steps_per_epoch`` batches per epoch, the same on every rank, so uneven shards can never hang DDP;
3. after each epoch, computes full-ranking Recall@K / NDCG@K on its share of the validation users and sums
   them over ranks (every rank gets the same figures, so early stopping needs no extra broadcast);
4. rank 0 writes a checkpoint per epoch (atomically: temp file + rename), the best model so far, and logs the
   epoch's metrics to MLflow; a rerun resumes from the newest checkpoint and trains exactly as an uninterrupted
   run would (it skips the batches the finished epochs read; each epoch seeds its own randomness);
5. at the end, every rank loads the best model and evaluates the test users the same way; rank 0 writes
   ``done.json`` (which makes a rerun return at once) and returns the history.
"""
from __future__ import annotations

import glob
import json
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_json(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest ``epoch-NNN.pt`` (names sort by epoch), or None."""
    found = sorted(Path(checkpoint_dir).glob("epoch-*.pt"))
    return found[-1] if found else None


def build_model(job: dict[str, Any]) -> Any:
    """The model with the catalogue buffers from ``job['catalogue_path']`` (an ``.npz``)."""
    import numpy as np
    import torch

    from socialrec.training.model import ModelSpec, SocialTwoTower

    cat = np.load(job["catalogue_path"])
    bags = job.get("user_items_path")
    return SocialTwoTower(
        ModelSpec(**job["spec"]),
        item_text=torch.from_numpy(cat["item_text"]),
        item_category=torch.from_numpy(cat["item_category"]),
        item_brand=torch.from_numpy(cat["item_brand"]),
        item_log_q=torch.from_numpy(cat["item_log_q"]),
        user_items=torch.from_numpy(np.load(bags)) if bags else None,
    )


def sampled_users_mask(user_idx: Any, fraction: float, seed: int) -> Any:
    """Which of ``user_idx`` (int numpy array) fall in the seeded uniform sample of ``fraction`` of all users.

    A hash of the id (splitmix64's finaliser), so the sample is the same on every rank, in every epoch and in
    every run of one seed, without coordination; about ``fraction`` of any set of ids is kept.
    """
    import numpy as np

    if fraction >= 1.0:
        return np.ones(len(user_idx), dtype=bool)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
        z = user_idx.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) < fraction * float(2**53)


def eval_fraction(n_users: int, max_users: int | None) -> float:
    """The share of a split's ``n_users`` that full-ranking evaluation in the loop ranks (``max_users`` None: all)."""
    return 1.0 if max_users is None or n_users <= max_users else max_users / n_users


def _eval_batches(files: list[str], batch_size: int, fraction: float = 1.0, seed: int = 0) -> Any:
    """Yield ``(user_idx, seq, neighbours, truth_csr, exclude_csr)`` numpy batches from query Parquet files, of
    the users in :func:`sampled_users_mask` ``(fraction, seed)``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    def csr(col: Any) -> tuple[Any, Any]:
        lengths = col.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        values = col.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        return values, np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)

    for f in files:
        table = pq.read_table(f)
        if fraction < 1.0:
            table = table.filter(pa.array(sampled_users_mask(table.column("user_idx").to_numpy(), fraction, seed)))
        for start in range(0, table.num_rows, batch_size):
            part = table.slice(start, batch_size)
            n = part.num_rows
            fixed = {}
            for name in ("seq", "neighbours"):
                col = part.column(name).combine_chunks()
                fixed[name] = col.flatten().to_numpy(zero_copy_only=False).astype(np.int64).reshape(n, -1)
            yield (
                part.column("user_idx").to_numpy().astype(np.int64),
                fixed["seq"],
                fixed["neighbours"],
                csr(part.column("truth").combine_chunks()),
                csr(part.column("exclude").combine_chunks()),
            )


def evaluate(
    model: Any, query_dir: str, ks: list[int], rank: int, world: int, device: Any, batch_size: int, popularity: Any = None,
    fraction: float = 1.0, seed: int = 0,
) -> dict[str, float]:
    """Full-ranking metrics over this rank's share of the query files, summed over every rank.

    With ``popularity`` (``[n_items]``) the ranking is most-popular instead of the model (the baseline, through
    exactly the same code path). ``fraction`` < 1 ranks the seeded sample of the users that
    :func:`sampled_users_mask` keeps (still against every item): see ``train.max_eval_users``.
    """
    import torch
    import torch.distributed as dist

    from socialrec.training.ranking import full_ranking_sums, means, merge_sums

    files = sorted(glob.glob(os.path.join(query_dir, "*.parquet")))[rank::world]
    totals: dict[str, float] = {"users": 0.0, **{f"{m}@{k}": 0.0 for m in ("recall", "ndcg") for k in ks}}
    model.eval()
    with torch.no_grad():
        items = model.all_item_vectors() if popularity is None else None
        for user_idx, seq, nbrs, truth, exclude in _eval_batches(files, batch_size, fraction, seed):
            if popularity is None:
                u = model.user_vectors(*(torch.from_numpy(a).to(device) for a in (user_idx, seq, nbrs)))
                scores = model.score_items(u, items)
            else:
                scores = popularity[None, :].expand(len(user_idx), -1)
            merge_sums(totals, full_ranking_sums(scores, _csr_to(truth, device), _csr_to(exclude, device), ks))
    keys = sorted(totals)
    if world > 1 and dist.is_initialized():
        t = torch.tensor([totals[k] for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        totals = dict(zip(keys, t.tolist(), strict=True))
    return means(totals)


def _csr_to(pair: tuple[Any, Any], device: Any) -> tuple[Any, Any]:
    import torch

    return torch.from_numpy(pair[0]).to(device), torch.from_numpy(pair[1]).to(device)


# The id tables whose rows a step touches a few thousand of: with ``sparse_embeddings`` they get sparse gradients.
SPARSE_TABLES = ("user_emb", "item_emb")


def sparse_tables_usable(job: dict[str, Any], world: int, use_gpu: bool) -> bool:
    """Whether the id tables get sparse gradients: asked for, and the all-reduce can carry them.

    NCCL has no sparse all-reduce, so multi-GPU runs keep dense gradients (GPU memory bandwidth makes the dense
    update cheap there); gloo (CPU) and a single process take sparse ones.
    """
    if not job.get("sparse_embeddings", False):
        return False
    if use_gpu and world > 1:
        logger.info("sparse_embeddings: NCCL cannot all-reduce sparse gradients; the id tables stay dense on GPU")
        return False
    return True


def make_optimizers(model: Any, job: dict[str, Any], sparse: bool) -> list[Any]:
    """AdamW over the dense parameters; with ``sparse``, SparseAdam (lazy Adam) over the id tables.

    Why: with dense gradients every step materialises, all-reduces, clips and AdamW-updates the whole
    ``[n_users, dim]`` and ``[n_items, dim]`` tables although a batch touches a few thousand rows, so the cost
    per step grows with the platform and an epoch grows with its square (measured in docs/scaling.md). Sparse
    gradients make a step cost what the batch touches. SparseAdam has no weight decay: ``weight_decay`` then
    applies to the dense parameters only. Must run before the model is wrapped in DDP (which reads each
    embedding's ``sparse`` flag to give it its own bucket).
    """
    import torch

    tables = [getattr(model, name) for name in SPARSE_TABLES if getattr(model, name, None) is not None] if sparse else []
    for table in tables:
        table.sparse = True
    sparse_ids = {id(t.weight) for t in tables}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    optimizers: list[Any] = [torch.optim.AdamW(dense, lr=job["lr"], weight_decay=job["weight_decay"])]
    if tables:
        optimizers.append(torch.optim.SparseAdam([t.weight for t in tables], lr=job["lr"]))
    return optimizers


def keep_tables_out_of_ddp(model: Any) -> list[Any]:
    """Mark the model's sparse id tables for DDP to leave alone (call before wrapping it) and start every rank
    from rank 0's tables, as DDP does for what it wraps; returns the tables' weights for
    ``all_reduce_sparse_gradients``."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    names = [name for name in SPARSE_TABLES if getattr(model, name, None) is not None]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, [f"{n}.weight" for n in names])
    weights = [getattr(model, name).weight for name in names]
    for weight in weights:
        dist.broadcast(weight.data, src=0)
    return weights


def all_reduce_sparse_gradients(tables: list[Any], world: int) -> None:
    """Average the id tables' sparse gradients over the ranks, in place of DDP's sparse all-reduce.

    Why not DDP: with the tables in DDP, gloo's sparse all-reduce runs on its own thread on tensors that are also
    the parameters' ``.grad``, and 2-process CPU training lost a rank to heap corruption now and then
    (``malloc(): unaligned tcache chunk detected``; gdb puts every crash in that thread, allocating inside
    ``AsyncSparseAllreduceWork``; docs/training.md, "Sparse id tables on several CPU processes"). Here the
    main thread coalesces each gradient, sends plain dense tensors (row counts, then the rows' ids and values
    padded to the largest count) through synchronous ``all_gather``s and gives the parameter a new gradient:
    no sparse tensor ever reaches the process group, and none is shared with it. Every rank calls this every
    step, a table without a gradient on this rank taking part with zero rows, or the collectives would hang.
    """
    import torch
    import torch.distributed as dist

    for table in tables:
        grad = table.grad
        if grad is None:
            ids = torch.zeros(0, dtype=torch.long, device=table.device)
            rows = torch.zeros((0, table.shape[1]), dtype=table.dtype, device=table.device)
        else:
            grad = grad.coalesce()
            ids, rows = grad._indices()[0], grad._values()
        count = torch.tensor([ids.numel()], dtype=torch.long, device=table.device)
        counts = [torch.zeros_like(count) for _ in range(world)]
        dist.all_gather(counts, count)
        sizes = [int(c) for c in torch.cat(counts).tolist()]
        width = max(sizes)
        padded_ids = torch.zeros(width, dtype=torch.long, device=table.device)
        padded_ids[: ids.numel()] = ids
        padded_rows = torch.zeros((width, table.shape[1]), dtype=rows.dtype, device=table.device)
        padded_rows[: ids.numel()] = rows
        all_ids = [torch.empty_like(padded_ids) for _ in range(world)]
        all_rows = [torch.empty_like(padded_rows) for _ in range(world)]
        dist.all_gather(all_ids, padded_ids)
        dist.all_gather(all_rows, padded_rows)
        summed = torch.sparse_coo_tensor(
            torch.cat([i[:n] for i, n in zip(all_ids, sizes, strict=True)]).unsqueeze(0),
            torch.cat([r[:n] for r, n in zip(all_rows, sizes, strict=True)]) / world,  # DDP's mean over the ranks
            table.shape,
            check_invariants=False,  # ids from coalesced gradients of this table: in range by construction
        )
        table.grad = summed.coalesce()


def gradient_norm_and_scale(parameters: Any, max_norm: float) -> tuple[list[Any], Any, Any]:
    """The parameters with a gradient, their total L2 norm (sparse gradients included, coalesced first: a row
    used twice in a batch holds two entries until then), and the factor that brings it down to ``max_norm``."""
    import torch

    with_grads, squares = [], []
    for p in parameters:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            squares.append(p.grad._values().float().pow(2).sum())
        else:
            squares.append(p.grad.float().pow(2).sum())
        with_grads.append(p)
    if not with_grads:
        return [], torch.zeros(()), torch.ones(())
    total = torch.stack(squares).sum().sqrt()
    return with_grads, total, (max_norm / (total + 1e-6)).clamp(max=1.0)  # no host sync: x1 under the limit


def clip_gradients(parameters: Any, max_norm: float) -> Any:
    """``clip_grad_norm_`` that also takes sparse gradients (torch's has no sparse norm): the total L2 norm.

    Sparse gradients are scaled out of place: a new tensor, never one a collective may still hold
    (docs/training.md, "Sparse id tables on several CPU processes").
    """
    with_grads, total, scale = gradient_norm_and_scale(parameters, max_norm)
    for p in with_grads:
        if p.grad.is_sparse:
            p.grad = p.grad * scale.to(p.grad.dtype)
        else:
            p.grad.mul_(scale.to(p.grad.dtype))
    return total


def _mlflow_logger(job: dict[str, Any]) -> Any:
    """``log(metrics, step)`` to the driver's MLflow run, or a no-op without one."""
    info = job.get("mlflow")
    if not info:
        return lambda metrics, step: None
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=info["tracking_uri"])

    def log(metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(metric_key(k), float(v), now, step) for k, v in metrics.items() if math.isfinite(v)]
        client.log_batch(info["run_id"], metrics=batch)

    return log


def metric_key(name: str) -> str:
    """MLflow metric names allow no '@': ``val_ndcg@10`` -> ``val_ndcg_at_10``."""
    return name.replace("@", "_at_")


def train_fn(job: dict[str, Any]) -> dict[str, Any]:
    """Train on this rank; rank 0 returns the history (see the module docstring)."""
    import numpy as np
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    ckpt_dir = Path(job["checkpoint_dir"])
    done_file = ckpt_dir / "done.json"
    if done_file.is_file():  # a rerun after a finished training: nothing to do
        return dict(json.loads(done_file.read_text()), resumed_from=None, already_done=True)

    torch.set_num_threads(int(job.get("torch_threads", 1)))
    use_gpu = bool(job.get("use_gpu")) and torch.cuda.is_available()
    if job.get("use_gpu") and not use_gpu:
        raise RuntimeError("train.use_gpu=true but CUDA is not available in the training process")
    device = torch.device(f"cuda:{local_rank}" if use_gpu else "cpu")
    if use_gpu:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_gpu else "gloo")
    seed = int(job["seed"])
    random.seed(seed + rank)
    np.random.seed(seed + rank)
    torch.manual_seed(seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)

    model = build_model(job).to(device)
    sparse = sparse_tables_usable(job, world, use_gpu)
    optimizers = make_optimizers(model, job, sparse)
    history: list[dict[str, float]] = []
    best = {"epoch": -1, "score": -math.inf}
    bad_epochs, start_epoch, resumed_from = 0, 0, None
    last = latest_checkpoint(ckpt_dir)
    if last is not None:
        state = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        for optimizer, optimizer_state in zip(optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(optimizer_state)
        history, best, bad_epochs = state["history"], state["best"], state["bad_epochs"]
        start_epoch, resumed_from = state["epoch"] + 1, str(last)
        logger.info("rank %d resumes after epoch %d from %s", rank, state["epoch"], last)
    # broadcast_buffers=False: the buffers (item text embeddings, categories, logQ) are constants every rank loads
    # from the same file; DDP's default re-broadcasts them before every forward, [n_items, 384] floats per step.
    # Sparse id tables stay out of DDP and are averaged by all_reduce_sparse_gradients (its docstring: why).
    synced_tables = keep_tables_out_of_ddp(model) if sparse and world > 1 else []
    ddp = (
        DistributedDataParallel(model, device_ids=[local_rank] if use_gpu else None, broadcast_buffers=False)
        if world > 1
        else model
    )

    ks: list[int] = list(job["ks"])
    monitor = job["monitor"]
    log_metrics = _mlflow_logger(job) if rank == 0 else (lambda metrics, step: None)
    popularity = torch.from_numpy(np.load(job["catalogue_path"])["item_popularity"]).to(device)
    # Ranking a user costs every item, so a split's pass costs users x items, both growing with the platform:
    # the loop ranks a seeded sample of at most max_eval_users per split (the same users every epoch).
    sample: dict[str, dict[str, Any]] = {
        split: {"fraction": eval_fraction(job.get(f"n_{split}_users", 0), job.get("max_eval_users")), "seed": seed}
        for split in ("valid", "test")
    }
    baseline: dict[str, float] = {}
    if start_epoch == 0:
        baseline = {f"val_mostpop_{k}": v for k, v in evaluate(model, job["valid_dir"], ks, rank, world, device, job["eval_batch_size"], popularity, **sample["valid"]).items() if k != "users"}
        log_metrics(baseline, 0)
        if rank == 0:
            _atomic_json(baseline, ckpt_dir / "baseline.json")

    n_items = model.spec.n_items
    all_items = torch.arange(n_items, device=device)
    gen = torch.Generator(device="cpu").manual_seed(seed * 1000 + rank)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_gpu and job.get("bf16") else _null_context()
    stopped_early = False
    converter = job["converter"]
    reader_kwargs = {"cur_shard": rank, "shard_count": world, "seed": seed + rank} if world > 1 else {"seed": seed}
    epoch = start_epoch
    from petastorm.pytorch import BatchedDataLoader

    with converter.make_torch_dataloader(
        batch_size=job["batch_size"],
        num_epochs=None,  # an endless stream: each epoch takes exactly steps_per_epoch batches on every rank
        workers_count=1,
        shuffling_queue_capacity=job.get("shuffle_capacity", 0),
        # Column batches straight to tensors: petastorm's default loader builds one Python dict per row.
        data_loader_fn=BatchedDataLoader,
        **reader_kwargs,
    ) as loader:
        batches = iter(loader)
        # A resumed run trains exactly as an uninterrupted one would (the crash tests compare the tables it leads
        # to): the stream is a function of the seed, so the batches the finished epochs consumed are skipped
        # (read, not trained on), and every epoch seeds its own randomness (dropout, extra negatives).
        for _ in range(start_epoch * job["steps_per_epoch"]):
            next(batches)
        for epoch in range(start_epoch, job["epochs"]):
            if bad_epochs >= job["patience"]:
                stopped_early = True
                break
            torch.manual_seed(seed * 1000 + epoch)  # the same on every rank, as the initial weights
            gen.manual_seed(seed * 1000 + 7919 * (epoch + 1) + rank)
            model.train()
            t0, loss_sum = time.perf_counter(), 0.0
            for _ in range(job["steps_per_epoch"]):
                batch = next(batches)
                user_idx, item_idx = batch["user_idx"].long().to(device), batch["item_idx"].long().to(device)
                seq, nbrs = batch["seq"].long().to(device), batch["neighbours"].long().to(device)
                # With a full softmax every item is a negative (the loss's exact softmax over the catalogue).
                neg = all_items if model.spec.full_softmax else (
                    torch.randint(n_items, (job["extra_negatives"],), generator=gen).to(device)
                    if job["extra_negatives"] else None)
                with autocast:
                    u, v, v_neg = ddp(user_idx, seq, nbrs, item_idx, neg)
                    loss = model.loss(u, v, item_idx, v_neg, neg)
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if synced_tables:
                    all_reduce_sparse_gradients(synced_tables, world)
                clip_gradients(model.parameters(), job.get("grad_clip", 5.0))
                for optimizer in optimizers:
                    optimizer.step()
                loss_sum += float(loss.detach())
            seconds = time.perf_counter() - t0
            stats = torch.tensor([loss_sum, float(job["steps_per_epoch"])], dtype=torch.float64, device=device)
            if world > 1:
                dist.all_reduce(stats)
            val = evaluate(model, job["valid_dir"], ks, rank, world, device, job["eval_batch_size"], **sample["valid"])
            row = {
                "epoch": float(epoch),
                "train_loss": float(stats[0] / stats[1]),
                "epoch_seconds": seconds,
                "examples_per_second_per_process": job["steps_per_epoch"] * job["batch_size"] / max(seconds, 1e-9),
                **{f"val_{k}": v for k, v in val.items() if k != "users"},
            }
            history.append(row)
            score = val[monitor]
            if score > best["score"] + 1e-12:
                best, bad_epochs = {"epoch": epoch, "score": score}, 0
                if rank == 0:
                    _atomic_save({"model": model.state_dict(), "epoch": epoch}, ckpt_dir / "best.pt")
            else:
                bad_epochs += 1
            if rank == 0:
                _atomic_save(
                    {
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizers": [optimizer.state_dict() for optimizer in optimizers],
                        "history": history,
                        "best": best,
                        "bad_epochs": bad_epochs,
                    },
                    ckpt_dir / f"epoch-{epoch:03d}.pt",
                )
                log_metrics({k: v for k, v in row.items() if k != "epoch"}, epoch)
                logger.info("epoch %d: loss %.4f, val %s %.4f (best %.4f @ %d)", epoch, row["train_loss"], monitor, score, best["score"], best["epoch"])
            if world > 1:
                dist.barrier()  # the epoch's checkpoint is on disk before any rank goes on (or dies)
            _fault_point(f"train.epoch.{epoch}")
    if world > 1:
        dist.barrier()  # best.pt is written before anyone reads it
    best_state = torch.load(ckpt_dir / "best.pt", map_location=device, weights_only=False)
    model.load_state_dict(best_state["model"])
    test = evaluate(model, job["test_dir"], ks, rank, world, device, job["eval_batch_size"], **sample["test"])
    test_pop = evaluate(model, job["test_dir"], ks, rank, world, device, job["eval_batch_size"], popularity, **sample["test"])
    result = {
        "history": history,
        "best_epoch": best["epoch"],
        "best_score": best["score"],
        "monitor": monitor,
        "stopped_early": stopped_early or bad_epochs >= job["patience"],
        "epochs_run": len(history),
        "test": {k: v for k, v in test.items()},
        "test_mostpop": {k: v for k, v in test_pop.items()},
        "val_mostpop": baseline or _previous_baseline(ckpt_dir),
        "world_size": world,
        "device": str(device),
    }
    if rank == 0:
        log_metrics({f"test_{k}": v for k, v in test.items() if k != "users"}, epoch)
        log_metrics({f"test_mostpop_{k}": v for k, v in test_pop.items() if k != "users"}, epoch)
        _atomic_json(result, done_file)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return dict(result, resumed_from=resumed_from, already_done=False)


def _previous_baseline(ckpt_dir: Path) -> dict[str, float]:
    f = ckpt_dir / "baseline.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def _fault_point(name: str) -> None:
    from socialrec.faults import checkpoint

    checkpoint(name)


class _null_context:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
