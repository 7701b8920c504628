"""Before/after of one pipeline stage: the same prepared lake, two code revisions, run alternately.

Profiling a stage leads to a change; this measures it. The stages before ``--stage`` run once (working tree) on
``bench.scale``'s synthetic platform of ``--events`` (the kept feed ``var/bench/scale/feed-<N>`` is reused), the
lake is copied aside, and then, ``--repeats`` times, ``--stage`` runs on a fresh copy of it with the code of
``--before`` (a git revision, checked out in a temporary worktree) and with the working tree, alternately, each
in a fresh ``jobs.run_all --only <stage>`` process with a Spark event log. Per run: the stage's seconds, the
process wall time, and from the event log the executors' run/CPU/GC seconds, spill and shuffle bytes (less
sensitive than seconds to whatever else shares the machine). ``--extra-conf`` adds a third variant: the working
tree with extra Spark settings (JSON). The silver and gold tables the last runs leave are compared row by row
(DuckDB ``EXCEPT ALL``, run timestamps aside) so a speed-up cannot hide a changed result. Writes
``bench/results/ab-<stage>-<date>.json``.

    python -m bench.ab_stage --stage clean --events 1M --before e23b5bb [--repeats 2] [--extra-conf '{...}']

(``bench/results/clean-before-after-2026-11-24.json`` was measured with this procedure, as an ad-hoc script.)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import bench_date, save_results
from bench.eventlog import profile
from bench.ingest_clean import KEY_ENV, load_avg, machine, parse_size
from bench.scale import BENCH_KEY, SCRATCH, STAGES, synthetic

REPO = Path(__file__).resolve().parent.parent
_TIMESTAMPS = {"quarantined_at", "audited_at", "ingested_at", "_ingested_at", "generated_at", "computed_at"}


def _sets(root: Path, n: int, conf: dict[str, str]) -> list[str]:
    kv = {"paths.root": str(root), "data.dataset": "synthetic", "data.path": str(SCRATCH / f"feed-{n}"),
          "data.synthetic": json.dumps(synthetic(n, 10.0)), "logging.to_file": "false", "spark.driver_memory": "8g",
          "spark.conf": json.dumps(conf)}
    return [x for k, v in kv.items() for x in ("--set", f"{k}={v}")]


def _job(stage: str, root: Path, n: int, conf: dict[str, str], cwd: Path, log: Path) -> dict[str, Any]:
    env = dict(os.environ, COLUMNS="200")
    env.setdefault(KEY_ENV, BENCH_KEY)
    t0 = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, "-m", "jobs.run_all", "--env", "local", "--only", stage,
                               *_sets(root, n, conf)], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    m = re.search(rf"stage {stage} done in ([0-9.]+)s", log.read_text(errors="replace"))
    return {"exit": code, "stage_s": float(m.group(1)) if m else None, "process_wall_s": round(time.perf_counter() - t0, 1),
            "load_avg_1m_after": round(os.getloadavg()[0], 2)}


def _tables(lake: Path) -> dict[str, list[str]]:
    from deltalake import DeltaTable

    out = {}
    for layer in ("silver", "gold"):
        for t in sorted((lake / layer).glob("*/_delta_log")):
            out[f"{layer}.{t.parent.name}"] = [u.removeprefix("file://") for u in DeltaTable(str(t.parent)).file_uris()]
    return out


def compare_lakes(a: Path, b: Path) -> dict[str, Any]:
    """Per table: rows only in ``a`` and only in ``b`` (multisets, run timestamps left out)."""
    import duckdb

    con = duckdb.connect()
    ta, tb = _tables(a), _tables(b)
    report: dict[str, Any] = {}
    for name in sorted(set(ta) | set(tb)):
        if not ta.get(name) or not tb.get(name):
            report[name] = {"rows_a": len(ta.get(name, [])), "rows_b": len(tb.get(name, [])), "note": "empty on a side"}
            continue
        cols = [c for c in con.execute(f"SELECT * FROM read_parquet({ta[name]!r}) LIMIT 0").fetchdf().columns
                if c not in _TIMESTAMPS]
        sel = ", ".join(f'"{c}"' for c in cols)
        ra, rb = f"SELECT {sel} FROM read_parquet({ta[name]!r})", f"SELECT {sel} FROM read_parquet({tb[name]!r})"
        only_a = con.execute(f"SELECT count(*) FROM ({ra} EXCEPT ALL {rb})").fetchone()
        only_b = con.execute(f"SELECT count(*) FROM ({rb} EXCEPT ALL {ra})").fetchone()
        rows = con.execute(f"SELECT count(*) FROM ({ra})").fetchone()
        report[name] = {"rows": rows[0] if rows else 0, "only_before": only_a[0] if only_a else 0,
                        "only_after": only_b[0] if only_b else 0}
    report["identical"] = all(v.get("only_before") == 0 and v.get("only_after") == 0 for v in report.values()
                              if isinstance(v, dict) and "rows" in v)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", required=True, choices=STAGES[1:])
    ap.add_argument("--events", default="1M")
    ap.add_argument("--before", required=True, help="git revision of the 'before' code")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--extra-conf", default=None, help="JSON Spark settings for a third variant (working tree)")
    args = ap.parse_args()
    n = parse_size(args.events)
    if not (SCRATCH / f"feed-{n}").is_dir():
        raise SystemExit(f"no feed at {SCRATCH / f'feed-{n}'}: run python -m bench.scale --sizes {args.events} first")
    work = REPO / "var" / "bench" / f"ab-{args.stage}-{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    base_conf = {"spark.ui.showConsoleProgress": "false"}
    prep = []
    for stage in STAGES[: STAGES.index(args.stage)]:
        prep.append({"stage": stage, **_job(stage, work / "base", n, base_conf, REPO, work / f"prep-{stage}.log")})
        if prep[-1]["exit"] != 0:
            raise SystemExit(f"preparing the lake: {stage} failed, see {work / f'prep-{stage}.log'}")
    tree = Path(tempfile.mkdtemp(prefix="socialrec-ab-")) / "before"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.before], cwd=REPO, check=True,
                   capture_output=True)
    variants: list[tuple[str, Path, dict[str, str]]] = [("before", tree, {}), ("after", REPO, {})]
    if args.extra_conf:
        variants.append(("after+conf", REPO, json.loads(args.extra_conf)))
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v, _, _ in variants}
    try:
        for r in range(args.repeats):
            for label, cwd, extra in variants:
                root = work / f"{label}-{r}"
                shutil.copytree(work / "base", root)
                logs = work / f"ev-{label}-{r}"
                logs.mkdir()
                conf = {**base_conf, **extra, "spark.eventLog.enabled": "true", "spark.eventLog.dir": logs.as_uri()}
                res = _job(args.stage, root, n, conf, cwd, work / f"{label}-{r}.log")
                apps = sorted(logs.glob("eventlog_v2_*"))
                if apps:
                    t = profile(apps[0])["totals"]
                    res["spark"] = {k: round(t[k], 1) for k in ("tasks", "run_s", "cpu_s", "gc_s", "spill_disk_mib",
                                                                 "shuffle_read_mib", "shuffle_write_mib")}
                runs[label].append(res)
                print(f"r{r + 1} {label:<10} {res['stage_s']} s  {res.get('spark', {})}", flush=True)
                if r < args.repeats - 1:
                    shutil.rmtree(root)
        parity = compare_lakes(work / f"before-{args.repeats - 1}" / "lake", work / f"after-{args.repeats - 1}" / "lake")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False, capture_output=True)
    results = {
        "benchmark": f"ab-{args.stage}", "date": bench_date(),
        "command": " ".join(["python -m bench.ab_stage", *sys.argv[1:]]), "events": n, "before": args.before,
        "after": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        + " + working tree", "machine": machine(), "load_avg": load_avg(), "prepare": prep, "runs": runs,
        "medians_s": {k: statistics.median(x["stage_s"] for x in v if x["stage_s"] is not None) for k, v in runs.items() if v},
        "parity": parity,
    }
    print(f"median seconds {results['medians_s']}; results identical: {parity['identical']}; "
          f"written {save_results(f'ab-{args.stage}', results)}")


if __name__ == "__main__":
    main()
