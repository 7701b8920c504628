"""Where a Spark job's time went, from its event log (``spark.eventLog.enabled``; ``bench.scale --event-log``).

The Spark UI's stage table, offline and as text: for every stage of one application, its wall seconds, task
count, the executors' run and CPU seconds, JVM GC seconds, memory and disk spill, shuffle read and write, and
input read, with the job description and call site it belongs to; then the same summed per job description
(``setJobDescription`` / the pipeline's step names) and the SQL executions that took longest. Sorted by
executor run time, so the top rows are what to fix first.

    python -m bench.eventlog var/bench/scale/event-logs/local-1700000000000 [--top 20] [--json out.json]

Reads plain, ``.zstd`` (Spark 4's default codec, through the ``zstd`` command) and ``.lz4``-less logs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_METRICS = {
    "internal.metrics.executorRunTime": ("run_s", 1e-3),
    "internal.metrics.executorCpuTime": ("cpu_s", 1e-9),
    "internal.metrics.jvmGCTime": ("gc_s", 1e-3),
    "internal.metrics.memoryBytesSpilled": ("spill_mem_mib", 2**-20),
    "internal.metrics.diskBytesSpilled": ("spill_disk_mib", 2**-20),
    "internal.metrics.shuffle.write.bytesWritten": ("shuffle_write_mib", 2**-20),
    "internal.metrics.shuffle.read.localBytesRead": ("shuffle_read_mib", 2**-20),
    "internal.metrics.shuffle.read.remoteBytesRead": ("shuffle_read_mib", 2**-20),
    "internal.metrics.input.bytesRead": ("input_mib", 2**-20),
    "internal.metrics.output.bytesWritten": ("output_mib", 2**-20),
    "internal.metrics.resultSize": ("result_mib", 2**-20),
}
FIELDS = ("wall_s", "tasks", "run_s", "cpu_s", "gc_s", "spill_mem_mib", "spill_disk_mib", "shuffle_read_mib",
          "shuffle_write_mib", "input_mib", "output_mib", "result_mib")


def lines(path: Path) -> Iterator[dict[str, Any]]:
    """The events of one log file (a directory: Spark's rolling event log, all its parts in order)."""
    files = sorted(p for p in path.iterdir() if p.name.startswith("events_")) if path.is_dir() else [path]
    for f in files:
        if f.suffix == ".zstd":
            text = subprocess.run(["zstd", "-dc", str(f)], check=True, capture_output=True).stdout.decode()
        else:
            text = f.read_text(errors="replace")
        for line in text.splitlines():
            if line.strip():
                yield json.loads(line)


def profile(path: Path) -> dict[str, Any]:
    """Per stage and per job description figures of one application's event log."""
    job_of_stage: dict[int, int] = {}
    job_desc: dict[int, str] = {}
    sql_desc: dict[int, str] = {}
    sql_start: dict[int, float] = {}
    sql: list[dict[str, Any]] = []
    stages: list[dict[str, Any]] = []
    app: dict[str, Any] = {}
    for ev in lines(path):
        kind = ev.get("Event", "")
        if kind == "SparkListenerApplicationStart":
            app = {"name": ev.get("App Name"), "id": ev.get("App ID"), "start_ms": ev.get("Timestamp")}
        elif kind == "SparkListenerApplicationEnd":
            app["end_ms"] = ev.get("Timestamp")
        elif kind == "SparkListenerJobStart":
            props = ev.get("Properties") or {}
            desc = props.get("spark.job.description") or props.get("callSite.short") or ""
            job_desc[ev["Job ID"]] = desc
            for sid in ev.get("Stage IDs", []):
                job_of_stage[sid] = ev["Job ID"]
        elif kind.endswith("SparkListenerSQLExecutionStart"):
            sql_desc[ev["executionId"]] = ev.get("description", "")
            sql_start[ev["executionId"]] = ev.get("time", 0)
        elif kind.endswith("SparkListenerSQLExecutionEnd"):
            eid = ev["executionId"]
            if eid in sql_start:
                sql.append({"execution": eid, "wall_s": (ev.get("time", 0) - sql_start[eid]) / 1e3,
                            "description": sql_desc.get(eid, "")[:160]})
        elif kind == "SparkListenerStageCompleted":
            info = ev["Stage Info"]
            row: dict[str, Any] = dict.fromkeys(FIELDS, 0.0)
            row["stage"] = info["Stage ID"]
            row["name"] = info.get("Stage Name", "")[:80]
            row["tasks"] = info.get("Number of Tasks", 0)
            start, end = info.get("Submission Time"), info.get("Completion Time")
            row["wall_s"] = (end - start) / 1e3 if start and end else 0.0
            for acc in info.get("Accumulables", []):
                metric = _METRICS.get(acc.get("Name", ""))
                if metric:
                    try:
                        row[metric[0]] += float(acc["Value"]) * metric[1]
                    except (TypeError, ValueError):
                        continue
            row["job"] = job_of_stage.get(row["stage"])
            row["description"] = job_desc.get(row["job"], "") if row["job"] is not None else ""
            stages.append(row)
    by_desc: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0.0))
    for row in stages:
        agg = by_desc[row["description"] or row["name"]]
        for f in FIELDS:
            agg[f] += row[f]
    if "start_ms" in app and "end_ms" in app:
        app["wall_s"] = (app["end_ms"] - app["start_ms"]) / 1e3
    return {
        "app": app,
        "stages": sorted(stages, key=lambda r: -r["run_s"]),
        "by_description": sorted(({"description": k, **v} for k, v in by_desc.items()), key=lambda r: -r["run_s"]),
        "sql": sorted(sql, key=lambda r: -r["wall_s"]),
        "totals": {f: sum(r[f] for r in stages) for f in FIELDS},
    }


def _fmt(v: Any) -> str:
    return f"{v:,.1f}" if isinstance(v, float) else str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", type=Path, help="an event log file (or a rolling event log directory)")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None, help="also write the whole profile here")
    args = ap.parse_args()
    prof = profile(args.log)
    from rich.console import Console
    from rich.table import Table

    console = Console(width=220)
    console.print(f"{prof['app']}  totals: " + ", ".join(f"{k} {_fmt(v)}" for k, v in prof["totals"].items()))
    cols = ("wall_s", "tasks", "run_s", "cpu_s", "gc_s", "spill_disk_mib", "shuffle_read_mib", "shuffle_write_mib",
            "input_mib")
    t = Table(title=f"by job description (top {args.top} by executor run time)")
    t.add_column("description", overflow="fold", max_width=70)
    for c in cols:
        t.add_column(c, justify="right")
    for r in prof["by_description"][: args.top]:
        t.add_row(r["description"], *(_fmt(r[c]) for c in cols))
    console.print(t)
    t = Table(title=f"stages (top {args.top} by executor run time)")
    t.add_column("stage", justify="right")
    t.add_column("job: description / stage name", overflow="fold", max_width=70)
    for c in cols:
        t.add_column(c, justify="right")
    for r in prof["stages"][: args.top]:
        t.add_row(str(r["stage"]), f"{r['job']}: {r['description']} / {r['name']}", *(_fmt(r[c]) for c in cols))
    console.print(t)
    if args.json:
        args.json.write_text(json.dumps(prof, indent=1) + "\n")


if __name__ == "__main__":
    main()
