"""Quality benchmark (``make bench-quality``): the evaluation stage on the shared public datasets, against the
published figures the project targets (issue 8, DESIGN §7).

For each dataset a lake is built once under ``--root`` (ingest -> ... -> examples, the product's own stages),
then ``socialrec.pipelines.evaluate`` runs once per protocol in the same process: socialrec's model (each seed,
and each ablation under the temporal protocol), MostPopular, ItemKNN, EASE, ALS and LightGCN, all ranked over
all items minus the user's earlier items. Figures land in ``gold.evaluation`` and the report of each
evaluation, and are gathered into ``bench/results/quality-<date>.json`` with the targets side by side.

Targets (full ranking; the published figures use RecBole's random per-user split of implicit feedback):

* LastFM hetrec-2011, random 8:1:1: LightGCN within ±10% of 0.2064 Recall@10 / 0.1972 NDCG@10 (RecBole-GNN);
  socialrec at or above SEPT's 0.2127 / 0.2057.
* Ciao, random 7:1:2: socialrec at or above MHCN's 0.0621 Recall@20 / 0.0378 NDCG@20 (best published: RecDiff
  0.0712 / 0.0419).
* Temporal protocol: socialrec above every baseline on NDCG@20; ablations with several seeds (mean ± std).

The datasets live in ``../shared/datasets`` (never in the repo); a missing one is skipped with a message.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench import RESULTS, bench_date, save_results
from socialrec.config import load_config, parse_overrides
from socialrec.logs import configure_logging

logger = logging.getLogger("bench.quality")

PUBLISHED = {
    ("lastfm", "random"): {"k": 10, "lightgcn": (0.2064, 0.1972), "best_social": ("SEPT", 0.2127, 0.2057)},
    ("ciao", "random"): {"k": 20, "best_social": ("MHCN", 0.0621, 0.0378), "best": ("RecDiff", 0.0712, 0.0419)},
}
# socialrec's settings for the random protocol, tuned on *validation* only (bench/tune.py; every row is in
# bench/results/tune-*.json and docs/evaluation.md). Shared: the protocol's "sequence" is an unordered bag of
# training items, so a mean over up to 50 of them instead of a user id, stronger weight decay, a softer temperature
# and extra negatives (best of 8 settings on LastFM's validation NDCG@10, 2026-11-23). The temporal protocol keeps
# the defaults (conf/base.yaml). Baselines run with their published (RecBole) defaults, untuned.
RANDOM_PROTOCOL_PROFILE = {
    "train.model.use_user_id": False,
    "train.model.seq_encoder": "mean",
    "examples.sequence_length": 50,
    "train.weight_decay": 0.1,
    "train.model.temperature": 0.15,
    "train.extra_negatives": 512,
    "train.sparse_embeddings": False,
}
# Per dataset, on top (2026-11-25, the best on each dataset's own validation split, monitored at the published k):
# * LastFM (17.6k items): a softmax over the whole catalogue instead of sampled negatives (val NDCG@10 0.1801 ->
#   0.1847), weight decay 0.05 (0.1848; dim 128, temperature 0.1 / 0.2 and neighbour-item bags did not help). Dense
#   id-table gradients: the weight decay on every row every step is part of the setting.
# * Ciao (105k items, ~2.7 ratings per item): the LastFM setting overfits within the first epoch, so validation
#   every 100 steps (about a quarter epoch) and sparse id tables with SparseAdam (no decay on untouched rows;
#   val NDCG@20 0.0263 -> 0.0297), temperature 0.1 (0.0298; lr 0.001 and a full softmax over 105k items did not help).
RANDOM_PROTOCOL_DATASET_PROFILE: dict[str, dict[str, Any]] = {
    "lastfm": {"train.monitor": "ndcg@10", "train.model.full_softmax_max_items": 50_000, "train.weight_decay": 0.05},
    "ciao": {"train.monitor": "ndcg@20", "train.steps_per_epoch": 100, "train.sparse_embeddings": True,
             "train.model.temperature": 0.1},
}


def random_protocol_profile(dataset: str) -> dict[str, Any]:
    """socialrec's tuned overrides for ``dataset`` under the random protocol: the shared profile, then the
    dataset's own (none for a dataset that was not tuned)."""
    return {**RANDOM_PROTOCOL_PROFILE, **RANDOM_PROTOCOL_DATASET_PROFILE.get(dataset, {})}


# The temporal protocol keeps conf/base.yaml's model, but its target is NDCG@20, so early stopping (socialrec's and
# LightGCN's) watches that. Per dataset, on top: settings tuned on that dataset's temporal *validation* split.
TEMPORAL_PROTOCOL_PROFILE: dict[str, Any] = {"train.monitor": "ndcg@20"}
# * Ciao (2026-11-25, bench/results/tune-ciao-temporal-2026-11-25.json, val NDCG@20 mean of seeds 42-44): the
#   defaults peak within their first epoch (0.0115 +- 0.0017), so validation every 50 steps (about an eighth of an
#   epoch), and a user tower of the mean of the recent items with no user id embedding, which has little to learn
#   from ~33 training items per user (0.0141 +- 0.0006; every 100 steps 0.0139, user id kept 0.0132 and the
#   transformer kept 0.0137 on seed 42; extra negatives, no logQ correction and the random profile's
#   regularisation were worse).
TEMPORAL_PROTOCOL_DATASET_PROFILE: dict[str, dict[str, Any]] = {
    "ciao": {"train.steps_per_epoch": 50, "train.model.use_user_id": False, "train.model.seq_encoder": "mean"},
}


def protocol_profile(dataset: str, protocol: str) -> dict[str, Any]:
    """socialrec's overrides for ``dataset`` under ``protocol`` (the benchmark and ``bench.tune`` both start here)."""
    if protocol == "random":
        return random_protocol_profile(dataset)
    return {**TEMPORAL_PROTOCOL_PROFILE, **TEMPORAL_PROTOCOL_DATASET_PROFILE.get(dataset, {})}


BUILD_STAGES = ["init_lake", "ingest", "clean", "embeddings", "graph", "features", "examples"]


def _value(table: pd.DataFrame, model: str, split: str, metric: str, k: int) -> tuple[float, float, int]:
    v = table[(table["model"] == model) & (table["split"] == split) & (table["slice"] == "all")
              & (table["metric"] == metric) & (table["k"] == k)]["value"]
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)) if len(v) else (float("nan"), 0.0, 0)


def verdicts(dataset: str, protocol: str, table: pd.DataFrame) -> list[dict[str, Any]]:
    """Each target of this (dataset, protocol) with our figure and whether it is met."""
    out: list[dict[str, Any]] = []
    pub = PUBLISHED.get((dataset, protocol))
    if pub:
        k = pub["k"]
        sr = _value(table, "socialrec", "test", "recall", k)[0], _value(table, "socialrec", "test", "ndcg", k)[0]
        if "lightgcn" in pub:
            lg = _value(table, "lightgcn", "test", "recall", k)[0], _value(table, "lightgcn", "test", "ndcg", k)[0]
            for i, metric in enumerate(("recall", "ndcg")):
                target = pub["lightgcn"][i]
                out.append({"target": f"LightGCN {metric}@{k} within ±10% of {target}", "ours": lg[i],
                            "ratio": lg[i] / target, "met": abs(lg[i] / target - 1) <= 0.10})
        name, r, n = pub["best_social"]
        for metric, target, ours in (("recall", r, sr[0]), ("ndcg", n, sr[1])):
            out.append({"target": f"socialrec {metric}@{k} >= {name} {target}", "ours": ours, "ratio": ours / target,
                        "met": ours >= target})
    if protocol == "temporal":
        sr_ndcg = _value(table, "socialrec", "test", "ndcg", 20)[0]
        for model in dict.fromkeys(table["model"]):
            if model.startswith("socialrec"):
                continue
            theirs = _value(table, model, "test", "ndcg", 20)[0]
            out.append({"target": f"socialrec ndcg@20 > {model}", "ours": sr_ndcg, "theirs": theirs,
                        "ratio": sr_ndcg / theirs if theirs else float("inf"), "met": sr_ndcg > theirs})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="lastfm,ciao")
    parser.add_argument("--protocols", default="random,temporal")
    parser.add_argument("--seeds", default="42", help="socialrec training seeds, comma separated")
    parser.add_argument("--ablations", default="social,text,sequence",
                        help="ablations, run under the temporal protocol only (empty: none)")
    parser.add_argument("--epochs", type=int, default=20, help="socialrec's epoch cap (early stopping on validation)")
    parser.add_argument("--root", default="var/bench/quality")
    parser.add_argument("--no-profile", action="store_true", help="random protocol: socialrec's defaults, not the profile")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--resume", type=Path, default=None,
                        help="a quality-<date>.json of a stopped run: keep its finished (dataset, protocol) runs, run "
                             "the others (models already trained are reused) and write into that file")
    parser.add_argument("--run", type=Path, default=None,
                        help="make bench-quality's last step: print every target of quality-<date> and write "
                             "quality-<date>.md; runs nothing")
    parser.add_argument("--date", default=None, help="with --run: the run's date (default: $SOCIALREC_BENCH_DATE)")
    args = parser.parse_args()
    if args.run:
        report(RESULTS / f"quality-{args.date or bench_date()}.json", args.run)
        return
    configure_logging("INFO", None, "bench.quality")
    os.environ.setdefault("SOCIALREC_PSEUDONYM_KEY", "bench-quality-fixed-key-not-a-secret")
    from socialrec.pipelines import all as pipeline
    from socialrec.pipelines import evaluate
    from socialrec.spark import build_spark

    # Parsed the way every job parses --set (YAML scalars: --set train.ks=[10,20] is a list, not a string).
    sets = parse_overrides(args.overrides)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    ablations = [a for a in args.ablations.split(",") if a]
    settings = {k: v for k, v in vars(args).items() if k not in ("datasets", "protocols", "resume", "run", "date")}
    results: dict[str, Any] = {"date": bench_date(), "command": "python -m bench.quality " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if v not in (None, [], "", False)), "settings": settings,
        "runs": []}
    if args.resume and args.resume.exists():
        results = resumed_results(json.loads(args.resume.read_text()), settings, results["command"])
    done = {(r["dataset"], r["protocol"]) for r in results["runs"] if "protocol" in r and "failed" not in r}
    spark = None
    for dataset in [d for d in args.datasets.split(",") if d]:
        todo = [p for p in args.protocols.split(",") if p and (dataset, p) not in done]
        if not todo:
            logger.info("%s: every protocol done in %s, kept", dataset, args.resume)
            continue
        root = Path(args.root).resolve() / dataset
        base = {"paths.root": str(root), "data.dataset": dataset, "logging.to_file": False, "train.epochs": args.epochs,
                "evaluate.reports_dir": str(Path("reports").resolve())}
        base.update(sets)
        cfg = load_config("local", base)
        from socialrec.ingest import source_path

        folder = source_path(cfg)
        if not folder.is_dir():
            logger.warning("dataset %s skipped: %s not found (the shared datasets live beside the repo)", dataset, folder)
            results["runs"].append({"dataset": dataset, "skipped": f"{folder} not found"})
            continue
        spark = spark or build_spark(cfg)
        if not (root / "lake" / "gold" / "examples").exists():
            t0 = time.perf_counter()
            pipeline.run(spark, cfg, only=BUILD_STAGES)
            logger.info("%s lake built in %.0fs", dataset, time.perf_counter() - t0)
        for protocol in todo:
            over = dict(base, **{"evaluate.protocol": protocol, "evaluate.seeds": seeds,
                                 "evaluate.ablations": ablations if protocol == "temporal" else []})
            if protocol == "temporal" or not args.no_profile:
                # --no-profile leaves the random protocol on the defaults; --set wins over any profile.
                over = {**over, **protocol_profile(dataset, protocol), **sets}
            ecfg = load_config("local", over)
            t0 = time.perf_counter()
            try:
                summary = evaluate.run(spark, ecfg)
            except evaluate.EvaluationInputError as exc:
                # e.g. LastFM under the temporal protocol: every play count carries the snapshot's one timestamp.
                logger.warning("%s/%s skipped: %s", dataset, protocol, exc)
                results["runs"].append({"dataset": dataset, "protocol": protocol, "skipped": str(exc)})
                continue
            except Exception as exc:  # noqa: BLE001 - reported per run, the next run goes on
                logger.exception("%s/%s failed", dataset, protocol)
                results["runs"].append({"dataset": dataset, "protocol": protocol, "failed": repr(exc)})
                continue
            table = summary["table"]
            run = {"dataset": dataset, "protocol": protocol, "seconds": time.perf_counter() - t0,
                   "mlflow_run": summary["run_id"], "overrides": {k: v for k, v in over.items() if k != "paths.root"}, "report": summary["report"], "skipped": summary["skipped"],
                   "targets": verdicts(dataset, protocol, table),
                   "figures": table[table["slice"] == "all"].to_dict("records")}
            results["runs"].append(run)
            from rich.console import Console

            evaluate.print_summary(summary, Console())
            for v in run["targets"]:
                print(f"  {'MET ' if v['met'] else 'MISS'} {v['target']}: ours {v['ours']:.4f} (ratio {v['ratio']:.2f})")
            out = save_results("quality", results)
            logger.info("results so far in %s", out)
    out = save_results("quality", results)
    print("\n".join(target_lines(results)))
    print(f"results: {out}")
    failed = failed_runs(results)
    if failed:
        # Non-zero, so make bench-quality leaves the run unfinished and its next invocation retries just these
        # (a zero exit finished the 2026-11-25 run with Ciao random failed, and the next one started afresh).
        logger.error("%d evaluation(s) failed: %s; make bench-quality again retries them", len(failed), ", ".join(failed))
        raise SystemExit(1)


def failed_runs(results: dict[str, Any]) -> list[str]:
    """The ``dataset/protocol`` evaluations of ``results`` that failed (skipped ones did not)."""
    return [f"{r['dataset']}/{r.get('protocol', '-')}" for r in results["runs"] if "failed" in r]


def resumed_results(previous: dict[str, Any], settings: dict[str, Any], command: str) -> dict[str, Any]:
    """An interrupted run's results, ready to go on: only with the same settings (seeds, epochs, profile,
    overrides), failed runs and missing datasets dropped so they are tried again."""
    if previous.get("settings") != settings:
        raise SystemExit(f"--resume: that run had the settings {previous.get('settings')}, not {settings}")
    previous["runs"] = [r for r in previous["runs"] if "failed" not in r and "protocol" in r]
    previous.setdefault("resumed", []).append({"command": command, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                        time.gmtime())})
    return previous


def target_lines(results: dict[str, Any]) -> list[str]:
    """Every target of every (dataset, protocol) run in ``results``, one line each, MET or MISS."""
    lines = [f"quality targets ({results['command']}):"]
    for run in results["runs"]:
        head = f"{run['dataset']}/{run.get('protocol', '-')}"
        if "targets" not in run:
            lines.append(f"  {head}: {run.get('skipped') or run.get('failed')}")
            continue
        for v in run["targets"]:
            theirs = f", theirs {v['theirs']:.4f}" if "theirs" in v else ""
            std = _seed_std(run, v["target"])
            spread = f" ± {std:.4f}" if std is not None else ""
            # A target met or missed by less than the spread between seeds says little either way: say so.
            other = v.get("theirs", v["ours"] / v["ratio"] if v["ratio"] else None)
            noise = ", within one seed std" if std is not None and other is not None and abs(v["ours"] - other) < std else ""
            lines.append(f"  {head}: {'MET ' if v['met'] else 'MISS'} {v['target']}: ours {v['ours']:.4f}{spread}{theirs} "
                         f"(ratio {v['ratio']:.2f}{noise})")
    return lines


def _seed_std(run: dict[str, Any], target: str) -> float | None:
    """The std over seeds of socialrec's test figure that ``target`` ("socialrec ndcg@20 > ...") is about, from the
    run's recorded figures; None for a target on another model, or with fewer than two seeds recorded."""
    match = re.match(r"socialrec (\w+)@(\d+) ", target)
    if not match or "figures" not in run:
        return None
    values = [f["value"] for f in run["figures"] if f["model"] == "socialrec" and f["split"] == "test"
              and f["slice"] == "all" and f["metric"] == match[1] and f["k"] == int(match[2])]
    return statistics.stdev(values) if len(values) > 1 else None


def report(path: Path, manifest: Path) -> None:
    """``make bench-quality``'s last step: the targets of the whole run, printed and in ``quality-<date>.md``."""
    results = json.loads(path.read_text())
    lines = target_lines(results)
    print("\n".join(lines))
    md = [f"# Quality benchmark, {results['date']}", "", f"`make bench-quality`, run manifest `{manifest.name}`; "
          f"figures: `{path.name}`; each evaluation's report is named below.", "", "```", *lines, "```", ""]
    for run in results["runs"]:
        if "figures" in run:
            md += [f"- {run['dataset']}/{run['protocol']}: report `{run['report']}`, MLflow run `{run['mlflow_run']}`, "
                   f"{run['seconds']:.0f} s"]
    path.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
