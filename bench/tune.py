"""Tune socialrec's model on a shared dataset's **validation** split (issue 8: "early stopping and tuning use
validation only"): each variant is one training of socialrec on the protocol's training split, side by side.

    python -m bench.tune --dataset lastfm --protocol random \\
        --variant "profile:" \\
        --variant "full softmax: train.model.full_softmax_max_items=50000" \\
        --variant "earlier inputs: evaluate.random_sequences=earlier"

A variant is ``NAME: KEY=VALUE, KEY=VALUE`` (dotted configuration keys, values parsed as YAML scalars) applied on
top of the protocol's profile (``bench.quality.protocol_profile(dataset, protocol)``; ``--no-profile`` drops the
random protocol's). The lake is the quality benchmark's (``--root``, built once with the product's own stages); the
split is written as the evaluation writes it. Each training is registered like an evaluation model, so a variant
already trained (same training key) is reused, and ``make bench-quality`` reuses the one it picks.

Prints, per variant, the best epoch's validation figures (the choice is made on these) and writes
``bench/results/tune-<dataset>-<protocol>-<date>.json`` (a later invocation on the same day adds its variants to
that file). Test figures are recorded too, for the record only.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import yaml

from bench import RESULTS, bench_date, save_results
from bench.quality import BUILD_STAGES, protocol_profile
from socialrec.config import load_config
from socialrec.logs import configure_logging

logger = logging.getLogger("bench.tune")


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"NAME: a.b=1, c=x"`` -> ``("NAME", {"a.b": 1, "c": "x"})`` (values as YAML scalars)."""
    name, sep, body = text.partition(":")
    if not sep or not name.strip():
        raise SystemExit(f"--variant {text!r}: expected 'NAME: KEY=VALUE, ...'")
    overrides: dict[str, Any] = {}
    for part in (p.strip() for p in body.split(",")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise SystemExit(f"--variant {text!r}: {part!r} is not KEY=VALUE")
        overrides[key.strip()] = yaml.safe_load(value.strip())
    return name.strip(), overrides


def earlier_variants(path: Path) -> list[dict[str, Any]]:
    """The variants an earlier invocation of the same day wrote to ``path`` (none if it does not exist): a day's
    tuning is several invocations, and each adds its rows to the day's file rather than replacing them."""
    return list(json.loads(path.read_text())["variants"]) if path.exists() else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="lastfm")
    ap.add_argument("--protocol", default="random", choices=["random", "temporal"])
    ap.add_argument("--variant", action="append", default=[], help="NAME: KEY=VALUE, ... (repeatable)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--root", default="var/bench/quality")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variant] or [("profile", {})]
    configure_logging("INFO", None, "bench.tune")
    os.environ.setdefault("SOCIALREC_PSEUDONYM_KEY", "bench-quality-fixed-key-not-a-secret")
    from socialrec.ingest import adapter_for, source_path
    from socialrec.lake import Lake
    from socialrec.pipelines import all as pipeline
    from socialrec.pipelines import evaluate
    from socialrec.schema import columns as C
    from socialrec.schema.tables import GOLD_EXAMPLES
    from socialrec.spark import build_spark

    root = Path(args.root).resolve() / args.dataset
    base: dict[str, Any] = {"paths.root": str(root), "data.dataset": args.dataset, "logging.to_file": False,
                            "train.epochs": args.epochs, "evaluate.protocol": args.protocol}
    if args.protocol == "temporal" or not args.no_profile:
        base.update(protocol_profile(args.dataset, args.protocol))
    cfg = load_config("local", base)
    if not source_path(cfg).is_dir():
        raise SystemExit(f"dataset {args.dataset}: {source_path(cfg)} not found (the shared datasets live beside the repo)")
    spark = build_spark(cfg)
    if not (root / "lake" / "gold" / "examples").exists():
        pipeline.run(spark, cfg, only=BUILD_STAGES)
    lake = Lake(spark, cfg)
    source = adapter_for(cfg.data.dataset, cfg).name
    from pyspark.sql import functions as F

    evaluate.write_splits(lake, lake.read(GOLD_EXAMPLES).where(F.col(C.SOURCE) == source), cfg, source)
    results: dict[str, Any] = {"date": bench_date(), "dataset": args.dataset, "protocol": args.protocol,
                               "variants": []}
    results["variants"] = earlier_variants(RESULTS / f"tune-{args.dataset}-{args.protocol}-{results['date']}.json")
    first_new = len(results["variants"])
    for name, overrides in variants:
        vcfg = load_config("local", {**base, **overrides})
        t0 = time.perf_counter()
        summary = evaluate.train_variant(spark, vcfg, lake, source, None, args.seed)
        row = {"name": name, "seed": args.seed, "overrides": overrides, "seconds": round(time.perf_counter() - t0, 1),
               "base": {k: v for k, v in base.items() if k != "paths.root"}, "best_epoch": summary["best_epoch"], "epochs_run": summary["epochs_run"],
               "validation": summary["best_val"], "test_for_the_record": summary["test"],
               "training_key": summary["training_key"]}
        results["variants"].append(row)
        save_results(f"tune-{args.dataset}-{args.protocol}", results)
        monitor = cfg.train.monitor
        print(f"{name:<40} val {monitor} {row['validation'].get(monitor, float('nan')):.4f}  best epoch "
              f"{row['best_epoch']} / {row['epochs_run']}  ({row['seconds']:.0f} s)", flush=True)
    best = max(results["variants"][first_new:], key=lambda r: r["validation"].get(cfg.train.monitor, float("-inf")))
    print(f"best on validation {cfg.train.monitor}: {best['name']} {best['overrides']}")


if __name__ == "__main__":
    main()
