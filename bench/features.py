"""Features benchmark: the features stage's transforms in Spark vs the same features in DuckDB (issue 10's peer).

Input: a lake with ``silver.events``, ``silver.items`` and ``silver.reviews`` (``--lake``, the ``paths.root`` of a
run; by default the scale run's 10M-event lake, kept by ``bench.scale --keep-data``). Both engines compute the
three gold feature tables as of the same cutoff (just after the source's latest event, as ``make run`` does):
``user_features`` (counts by event type and window, recency, active days, category and price affinity),
``item_features`` (decayed popularity, conversion, rating stats, review counts) and ``user_sequences`` (the last
``features.sequence_length`` events), and write them to Parquet:

* **spark**: :mod:`socialrec.features.behaviour` (what the stage runs), ``local[2]``, reading the Delta tables
  through the lake, writing with ``DataFrame.write.parquet``;
* **duckdb**: what a user would write instead on one machine: the same definitions in SQL
  (:data:`DUCKDB_SQL`), 2 threads, reading the tables' Parquet files (the Delta snapshot's file list) and
  ``COPY ... TO`` Parquet.

Each run is a fresh process (its own JVM or DuckDB). Median seconds of ``--repeats`` each, run alternately side
by side in one invocation, peak memory of the process tree, and a **parity check**: every row and column of the
two outputs compared (doubles to 1e-9 relative, the affinity JSON as a map), so the ratio compares equal work.
Writes ``bench/results/features-<date>.json``.

    python -m bench.features [--lake var/bench/scale/run-10000000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import save_results
from bench.ingest_clean import TreeRss, load_avg, mib, results_header

REPO = Path(__file__).resolve().parent.parent
RESULT_MARK = "BENCH-RESULT "
SOURCE = "synthetic"
TABLES = ("user_features", "item_features", "user_sequences")

def duckdb_round_half_up(expr: str, digits: int) -> str:
    """DuckDB SQL for Spark's ``round(double, digits)``: Spark rounds the double's decimal string half up
    (``BigDecimal.valueOf``), DuckDB the binary value (0.12345 is 0.123449999... there, so 0.1234 where Spark
    says 0.1235); through the string and a DECIMAL, the two agree."""
    return f"CAST(round(CAST(CAST({expr} AS VARCHAR) AS DECIMAL(38, 20)), {digits}) AS DOUBLE)"


# The features of socialrec.features.behaviour, in DuckDB SQL. {cutoff} is a TIMESTAMP literal (UTC),
# {decay} = ln 2 / half-life in days, {length} the sequence length, {events}/{items}/{reviews} Parquet lists.
DUCKDB_SQL = """
CREATE TEMP VIEW ev AS
  SELECT user_id, item_id, event_id, event_type, value, ts,
         (epoch({cutoff}) - epoch(ts)) / 86400.0 AS age
  FROM read_parquet({events}) WHERE source = '{source}' AND ts < {cutoff};
CREATE TEMP VIEW it AS SELECT item_id, category AS cat, price FROM read_parquet({items}) WHERE source = '{source}';

COPY (
  WITH activity AS (
    SELECT user_id, {counts}, min(ts) AS first_ts, max(ts) AS last_ts, count(DISTINCT CAST(ts AS DATE)) AS active_days
    FROM ev GROUP BY user_id
  ), with_items AS (
    SELECT ev.user_id, ev.event_type, it.cat, it.price FROM ev LEFT JOIN it USING (item_id)
  ), prices AS (
    SELECT user_id, avg(price) FILTER (WHERE event_type = 'view') AS price_mean_viewed,
           avg(price) FILTER (WHERE event_type = 'purchase') AS price_mean_purchased
    FROM with_items GROUP BY user_id
  ), per_cat AS (
    SELECT user_id, cat, count(*) AS n FROM with_items WHERE cat IS NOT NULL GROUP BY user_id, cat
  ), ranked AS (
    SELECT user_id, cat, {share} AS share,
           row_number() OVER (PARTITION BY user_id ORDER BY n DESC, cat) AS rnk
    FROM per_cat QUALIFY rnk <= 5
  ), affinity AS (
    SELECT user_id, arg_min(cat, rnk) AS top_category,
           to_json(map(list(cat ORDER BY rnk), list(share ORDER BY rnk)))::VARCHAR AS category_affinity
    FROM ranked GROUP BY user_id
  )
  SELECT a.user_id, {cutoff} AS cutoff_ts, '{source}' AS source, {count_names}, a.first_ts, a.last_ts,
         (epoch({cutoff}) - epoch(a.last_ts)) / 86400.0 AS recency_days, a.active_days, f.top_category,
         f.category_affinity, p.price_mean_viewed, p.price_mean_purchased
  FROM activity a LEFT JOIN prices p USING (user_id) LEFT JOIN affinity f USING (user_id)
) TO {out_user_features} (FORMAT parquet);

COPY (
  WITH per_user AS (
    SELECT item_id, user_id, bool_or(event_type = 'view') AS viewed, bool_or(event_type = 'purchase') AS bought
    FROM ev GROUP BY item_id, user_id
  ), conversion AS (
    SELECT item_id, count(*) FILTER (WHERE viewed AND bought) AS converted FROM per_user GROUP BY item_id
  ), stats AS (
    SELECT item_id, sum(exp(-{decay} * age)) AS popularity_decayed, count(*) AS n_events,
           count(DISTINCT user_id) AS n_users,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'view') AS n_viewers,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'purchase') AS n_purchasers,
           avg(value) FILTER (WHERE event_type = 'rating') AS rating_mean,
           count(*) FILTER (WHERE event_type = 'rating') AS rating_count
    FROM ev GROUP BY item_id
  ), rv AS (
    SELECT item_id, count(*) AS review_count FROM read_parquet({reviews})
    WHERE source = '{source}' AND ts < {cutoff} GROUP BY item_id
  )
  SELECT coalesce(s.item_id, rv.item_id) AS item_id, {cutoff} AS cutoff_ts, '{source}' AS source,
         coalesce(s.popularity_decayed, 0.0) AS popularity_decayed, coalesce(s.n_events, 0) AS n_events,
         coalesce(s.n_users, 0) AS n_users, coalesce(s.n_viewers, 0) AS n_viewers,
         coalesce(s.n_purchasers, 0) AS n_purchasers,
         CASE WHEN s.n_viewers > 0 THEN c.converted / s.n_viewers END AS conversion_view_purchase,
         s.rating_mean, coalesce(s.rating_count, 0) AS rating_count, coalesce(rv.review_count, 0) AS review_count
  FROM stats s LEFT JOIN conversion c USING (item_id) FULL OUTER JOIN rv ON s.item_id = rv.item_id
) TO {out_item_features} (FORMAT parquet);

COPY (
  WITH recent AS (
    SELECT user_id, item_id, event_type, ts, event_id FROM ev
    QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, event_id DESC) <= {length}
  )
  SELECT user_id, {cutoff} AS cutoff_ts, '{source}' AS source,
         list(item_id ORDER BY ts, event_id, item_id, event_type) AS item_ids,
         list(event_type ORDER BY ts, event_id, item_id, event_type) AS event_types,
         list(ts ORDER BY ts, event_id, item_id, event_type) AS event_ts
  FROM recent GROUP BY user_id
) TO {out_user_sequences} (FORMAT parquet);
"""


def _settings(lake_root: Path) -> dict[str, Any]:
    from socialrec.config import load_config

    cfg = load_config("local", {"paths.root": str(lake_root), "logging.to_file": False})
    return {"half_life_days": cfg.features.half_life_days, "length": cfg.features.sequence_length}


def worker_spark(args: dict[str, Any]) -> dict[str, Any]:
    """The features stage's transforms in Spark, written to Parquet (cutoff found as the stage finds it)."""
    from socialrec.config import load_config
    from socialrec.features.behaviour import item_features, user_features, user_sequences
    from socialrec.lake import Lake
    from socialrec.logs import configure_logging
    from socialrec.pipelines.features import default_cutoff
    from socialrec.schema.tables import SILVER_EVENTS, SILVER_ITEMS, SILVER_REVIEWS
    from socialrec.spark import build_spark

    configure_logging("WARNING")
    out = Path(args["out"])
    shutil.rmtree(out, ignore_errors=True)
    cfg = load_config("local", {"paths.root": args["lake"], "logging.to_file": False,
                                "spark.driver_memory": args["driver_memory"],
                                "spark.conf": {"spark.ui.showConsoleProgress": "false"}})
    spark = build_spark(cfg)
    spark.range(1).count()
    lake = Lake(spark, cfg)
    with TreeRss() as mem:
        t0 = time.perf_counter()
        cutoff = default_cutoff(lake, SOURCE)
        mine = f"source = '{SOURCE}'"
        events, items = lake.read(SILVER_EVENTS).where(mine), lake.read(SILVER_ITEMS).where(mine)
        reviews = lake.read(SILVER_REVIEWS).where(mine)
        frames = {
            "user_features": user_features(events, items, cutoff, SOURCE),
            "item_features": item_features(events, reviews, cutoff, SOURCE, cfg.features.half_life_days),
            "user_sequences": user_sequences(events, cutoff, SOURCE, cfg.features.sequence_length),
        }
        for name, frame in frames.items():
            frame.write.mode("overwrite").parquet(str(out / name))
        seconds = time.perf_counter() - t0
    spark.stop()
    return {"seconds": round(seconds, 3), "cutoff": cutoff.isoformat(), "peak_mem_mib": mib(mem.growth_plus_children_peak),
            "cpu_s": mem.own_cpu_s, "other_cpu_pct": mem.other_cpu_pct}


def _files(table: Path) -> list[str]:
    from deltalake import DeltaTable

    return [u.removeprefix("file://") for u in DeltaTable(str(table)).file_uris()]


def worker_duckdb(args: dict[str, Any]) -> dict[str, Any]:
    """The same features in DuckDB SQL over the tables' Parquet files."""
    import duckdb

    from socialrec.schema import columns as C
    from socialrec.schema.tables import FEATURE_WINDOWS_DAYS

    out = Path(args["out"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    silver = Path(args["lake"]) / "lake" / "silver"
    with TreeRss() as mem:
        t0 = time.perf_counter()
        con = duckdb.connect(":memory:", config={"threads": args["threads"], "memory_limit": args["memory_limit"],
                                                 "temp_directory": str(out / "tmp"), "preserve_insertion_order": False})
        con.execute("SET TimeZone = 'UTC'")
        lists = {name: "[" + ", ".join(f"'{f}'" for f in _files(silver / name)) + "]" for name in ("events", "items", "reviews")}
        # The cutoff as the stage finds it: one second after the source's latest event.
        latest = con.execute(f"SELECT max(ts)::TIMESTAMP FROM read_parquet({lists['events']}) WHERE source = '{SOURCE}'").fetchone()
        assert latest is not None and latest[0] is not None
        cutoff = latest[0] + dt.timedelta(seconds=1)
        counts, names = [], []
        for t in C.EVENT_TYPES:
            for d in FEATURE_WINDOWS_DAYS:
                counts.append(f"count(*) FILTER (WHERE event_type = '{t}' AND age <= {d}) AS n_{t}_{d}d")
                names.append(f"a.n_{t}_{d}d")
            counts.append(f"count(*) FILTER (WHERE event_type = '{t}') AS n_{t}_all")
            names.append(f"a.n_{t}_all")
        sql = DUCKDB_SQL.format(
            cutoff=f"TIMESTAMP '{cutoff.isoformat(sep=' ')}'", source=SOURCE, decay=repr(math.log(2) / args["half_life_days"]),
            length=args["length"], events=lists["events"], items=lists["items"], reviews=lists["reviews"],
            counts=", ".join(counts), count_names=", ".join(names),
            share=duckdb_round_half_up("n / sum(n) OVER (PARTITION BY user_id)", 4),
            **{f"out_{t}": f"'{out / (t + '.parquet')}'" for t in TABLES},
        )
        con.execute(sql)
        con.close()
        seconds = time.perf_counter() - t0
    shutil.rmtree(out / "tmp", ignore_errors=True)
    return {"seconds": round(seconds, 3), "cutoff": cutoff.isoformat(), "peak_mem_mib": mib(mem.self_peak),
            "cpu_s": mem.own_cpu_s, "other_cpu_pct": mem.other_cpu_pct, "duckdb": duckdb.__version__}


def parity(spark_out: Path, duck_out: Path) -> dict[str, Any]:
    """Row-by-row, column-by-column comparison of the two engines' outputs (one table at a time)."""
    import numpy as np
    import pandas as pd

    keys = {"user_features": "user_id", "item_features": "item_id", "user_sequences": "user_id"}
    report: dict[str, Any] = {}
    for table, key in keys.items():
        a = pd.read_parquet(spark_out / table).sort_values(key).reset_index(drop=True)
        b = pd.read_parquet(duck_out / f"{table}.parquet").sort_values(key).reset_index(drop=True)
        entry: dict[str, Any] = {"rows_spark": len(a), "rows_duckdb": len(b), "columns_differing": {}}
        if len(a) != len(b) or not (a[key].to_numpy() == b[key].to_numpy()).all():
            entry["keys_equal"] = False
            report[table] = entry
            continue
        entry["keys_equal"] = True
        for col in a.columns:
            x, y = a[col], b[col]
            if col == "category_affinity":
                bad = sum(_affinity_differs(p, q) for p, q in zip(x, y, strict=True))
            elif col in ("item_ids", "event_types", "event_ts"):
                bad = sum(not np.array_equal(np.asarray(p), np.asarray(q)) for p, q in zip(x, y, strict=True))
            elif pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
                xf, yf = x.astype(float).to_numpy(), y.astype(float).to_numpy()
                same = np.isclose(xf, yf, rtol=1e-9, atol=1e-12) | (np.isnan(xf) & np.isnan(yf))
                bad = int((~same).sum())
            elif pd.api.types.is_datetime64_any_dtype(x):
                bad = int((x.dt.tz_localize(None) if x.dt.tz else x).ne(y.dt.tz_localize(None) if y.dt.tz else y).sum())
            else:
                bad = int((x.astype(object).where(x.notna(), None) != y.astype(object).where(y.notna(), None)).sum())
            if bad:
                entry["columns_differing"][col] = int(bad)
        report[table] = entry
    report["identical"] = all(t.get("keys_equal") and not t["columns_differing"] for t in report.values()
                              if isinstance(t, dict))
    return report


def _affinity_differs(p: str | None, q: str | None) -> bool:
    if p is None or q is None:
        return (p is None) != (q is None)
    a, b = json.loads(p), json.loads(q)
    return list(a) != list(b) or any(abs(float(a[k]) - float(b[k])) > 1e-9 for k in a)


WORKERS = {"spark": worker_spark, "duckdb": worker_duckdb}


def run_worker(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.features", "--worker", kind, "--worker-args", json.dumps(args)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} worker failed (exit {proc.returncode}): {proc.stdout[-2000:]}")
    return dict(json.loads(lines[-1][len(RESULT_MARK):]), process_wall_s=round(time.perf_counter() - t0, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lake", type=Path, default=REPO / "var" / "bench" / "scale" / "run-10000000",
                    help="paths.root of a lake with silver events/items/reviews of the synthetic source")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--driver-memory", default="8g")
    ap.add_argument("--memory-limit", default="8GB", help="DuckDB memory_limit")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--worker-args", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(RESULT_MARK + json.dumps(WORKERS[args.worker](json.loads(args.worker_args))), flush=True)
        return
    if not (args.lake / "lake" / "silver" / "events" / "_delta_log").is_dir():
        raise SystemExit(f"no silver.events under {args.lake}: run python -m bench.scale --sizes 10M --keep-data "
                         "(or pass --lake a paths.root that has one)")
    settings = _settings(args.lake)
    scratch = REPO / "var" / "bench" / "features"
    common = {"lake": str(args.lake.resolve()), "driver_memory": args.driver_memory, "threads": os.cpu_count() or 2,
              "memory_limit": args.memory_limit, **settings}
    results: dict[str, Any] = {
        **results_header("features", "bench.features", args.repeats), "lake": str(args.lake), "settings": settings,
        "runs": {"spark": [], "duckdb": []},
    }
    from rich.console import Console

    console = Console(width=160)
    for r in range(args.repeats):
        for kind in ("spark", "duckdb"):  # alternately, so drifts in the machine hit both
            res = run_worker(kind, dict(common, out=str(scratch / kind)))
            results["runs"][kind].append(res)
            console.print(f"r{r + 1} {kind:<6} {res['seconds']:8.1f} s  peak {res['peak_mem_mib']:,} MiB  "
                          f"CPU {res['cpu_s']:.0f} s  others {res['other_cpu_pct']}%")
    results["parity"] = parity(scratch / "spark", scratch / "duckdb")
    results["medians"] = {k: {"seconds": statistics.median(x["seconds"] for x in v),
                              "peak_mem_mib": max(x["peak_mem_mib"] for x in v)} for k, v in results["runs"].items()}
    m = results["medians"]
    results["spark_over_duckdb"] = {"time": round(m["spark"]["seconds"] / m["duckdb"]["seconds"], 2),
                                    "peak_mem": round(m["spark"]["peak_mem_mib"] / m["duckdb"]["peak_mem_mib"], 2)}
    results["load_avg_end"] = load_avg()
    out = save_results("features", results)
    shutil.rmtree(scratch, ignore_errors=True)
    console.print(f"median: Spark {m['spark']['seconds']:.1f} s vs DuckDB {m['duckdb']['seconds']:.1f} s "
                  f"(x{results['spark_over_duckdb']['time']}); parity identical={results['parity']['identical']}; "
                  f"written {out.relative_to(REPO)}")
    if not results["parity"]["identical"]:
        console.print(json.dumps(results["parity"], indent=1))


if __name__ == "__main__":
    main()
