"""Ingest + clean benchmark: the Spark pipeline next to a DuckDB single-machine reference, same raw feed.

For each size N (input events; users N/50, items N/100, 2 batches) a synthetic platform is generated once
under ``var/bench/ingest-clean/`` (``ensure_platform`` reuses a kept feed). Then, per repeat and engine:

* **spark** (the product): ``socialrec.pipelines.ingest.run`` + ``socialrec.pipelines.clean.run`` into a
  fresh lake, with the ``local`` configuration (``spark.driver_memory`` 6g, ``local[2]``);
* **duckdb** (a reference, not a second product): ``bench/duckdb_clean.sql``, the cleaning rules of
  docs/cleaning.md as SQL over the same ``.jsonl`` files, written as Parquet (no Delta, no bronze copy).

Every run is a fresh worker process (a fresh JVM for Spark); engine start-up (the Spark session, ~10 s) is
not in the timings and is reported apart. Wall time (ingest, clean, total), input lines per second and peak
memory are measured: the process-tree RSS is sampled every 50 ms by a thread in the worker; Spark = growth of
the Python driver (delta-rs writes run there) + RSS of its children (the JVM, Python UDF workers); DuckDB =
the worker's peak RSS (kernel high-water mark, baseline interpreter included). Reported: the median of the
repeats per engine, the ratio Spark/DuckDB, and the kept/duplicate/quarantined counts of both engines side by
side per table (parity). Writes ``bench/results/ingest-clean-<date>.json`` with every run's raw figures.

    python -m bench.ingest_clean [--sizes 1000000,10000000] [--repeats 3] [--engines spark,duckdb] [--keep-data]
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from bench import bench_date, save_results
from socialrec.config import AppConfig, SyntheticConfig, load_config
from socialrec.schema.columns import EVENT_TYPES, RELATIONS, STREAMS

REPO = Path(__file__).resolve().parent.parent
SCRATCH = REPO / "var" / "bench" / "ingest-clean"
SQL_FILE = Path(__file__).resolve().parent / "duckdb_clean.sql"
SOURCE = "synthetic"  # the source name the pipeline gives data.dataset=synthetic
SEED = SyntheticConfig().seed
# A fixed key, so pseudonyms (and hence content hashes and tie-breaks) are the same in every run. Used only
# when $SOCIALREC_PSEUDONYM_KEY is not set; the data is synthetic.
BENCH_KEY = "socialrec-bench-ingest-clean-fixed-pseudonym-key"
KEY_ENV = "SOCIALREC_PSEUDONYM_KEY"
RESULT_MARK = "BENCH-RESULT "
# Clean stream order (users and items before the streams that reference them), as socialrec.pipelines.clean.
STREAM_ORDER = ("users", "items", "events", "social_edges", "reviews")
# Silver content columns (socialrec.clean.outcomes.payload_columns, less items.tags: the canonical feed has
# none) and the column that orders versions of a key (outcomes.VERSION_TS).
PAYLOAD: dict[str, tuple[str, ...]] = {
    "users": ("user_id", "first_seen_ts", "attributes"),
    "items": ("item_id", "title", "description", "category", "brand", "price", "currency", "updated_ts"),
    "events": ("event_id", "user_id", "item_id", "event_type", "value", "ts"),
    "social_edges": ("src_user_id", "dst_user_id", "relation", "weight", "directed", "ts"),
    "reviews": ("review_id", "user_id", "item_id", "rating", "text", "helpfulness", "ts"),
}
VERSION_TS = {"users": "first_seen_ts", "items": "updated_ts", "events": "ts", "social_edges": "ts", "reviews": "ts"}
MIB = 2**20


# ------------------------------------------------------------------------------------------- measuring


class TreeRss:
    """Samples the RSS of this process and of all its descendants every ``interval`` seconds.

    Also estimates how much CPU *other* processes took meanwhile (the machine is shared): busy CPU time of
    the whole machine minus that of this process tree, as a share of the machine's capacity.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.self_start = self.proc.memory_info().rss
        self.self_peak = self.self_start
        self.children_peak = 0
        self.growth_plus_children_peak = 0  # max over samples of (self - self_start) + children
        self.at_peak: dict[str, int] = {}  # process -> RSS MiB at the sample of that peak
        self.samples = 0
        self.other_cpu_pct: float | None = None
        self.own_cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        own = self.proc.memory_info().rss
        rss: dict[str, int] = {}
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # exited between listing and reading
                rss[f"{child.name()}:{child.pid}"] = child.memory_info().rss
        children = sum(rss.values())
        self.self_peak = max(self.self_peak, own)
        self.children_peak = max(self.children_peak, children)
        total = max(0, own - self.self_start) + children
        if total > self.growth_plus_children_peak:
            self.growth_plus_children_peak = total
            self.at_peak = {"self (growth)": mib(max(0, own - self.self_start)), **{k: mib(v) for k, v in rss.items()}}
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def _cpu(self) -> tuple[float, float]:
        """(busy CPU seconds of the machine, CPU seconds of this process tree)."""
        t = psutil.cpu_times()
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0)
        own = 0.0
        for p in (self.proc, *self.proc.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                c = p.cpu_times()
                own += c.user + c.system
        return busy, own

    def __enter__(self) -> TreeRss:
        self._t0, (self._busy0, self._own0) = time.perf_counter(), self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        busy, own = self._cpu()
        capacity = (time.perf_counter() - self._t0) * (psutil.cpu_count() or 1)
        other = max(0.0, (busy - self._busy0) - (own - self._own0))
        self.other_cpu_pct = round(100 * other / capacity, 1) if capacity > 0 else None
        self.own_cpu_s = round(own - self._own0, 2)


def mib(n: float) -> int:
    return round(n / MIB)


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def results_header(benchmark: str, module: str, repeats: int) -> dict[str, Any]:
    """The fields every benchmark's results file starts with: what ran, when, how often, on what machine."""
    return {
        "benchmark": benchmark,
        "date": bench_date(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([f"python -m {module}", *sys.argv[1:]]),
        "repeats": repeats,
        "machine": machine(),
        "load_avg_start": load_avg(),
    }


# ------------------------------------------------------------------------------------------- config


def bench_config(feed: Path, synth: SyntheticConfig, lake: Path | None = None) -> AppConfig:
    """The ``local`` configuration pointed at the scratch folder and the generated feed."""
    overrides: dict[str, Any] = {
        "paths.root": str(SCRATCH),
        "data.dataset": "synthetic",
        "data.path": str(feed),
        "data.synthetic": synth.model_dump(mode="json"),
        "logging.level": "WARNING",
        "logging.to_file": False,
        "spark.conf": {"spark.ui.showConsoleProgress": "false"},  # no progress bars in the bench output
    }
    if lake is not None:
        overrides["paths.lake"] = str(lake)
    return load_config("local", overrides)


def synthetic_config(events: int) -> SyntheticConfig:
    return SyntheticConfig(events=events, users=max(10, events // 50), items=max(10, events // 100), batches=2, seed=SEED)


# ------------------------------------------------------------------------------------------- workers
# Each runs in its own process (``--worker``) and prints one result line: isolated memory figures, a fresh
# JVM per Spark run, and a lean parent.


def worker_generate(args: dict[str, Any]) -> dict[str, Any]:
    """Generate (or find up to date) the synthetic platform of one size."""
    from socialrec.synth import ensure_platform
    from socialrec.synth.generator import FIXED_KINDS

    feed, synth = Path(args["feed"]), SyntheticConfig(**args["synthetic"])
    cfg = bench_config(feed, synth)
    t0 = time.perf_counter()
    report = ensure_platform(
        feed, synth, platform_launch=cfg.clean.platform_launch, max_text_chars=cfg.clean.max_text_chars
    )
    seconds = time.perf_counter() - t0
    by_stream = {s: sum(b.get(s, 0) for b in report.rows.values()) for s in STREAMS}
    expected = {
        s: {
            "quarantined": sum(n for k, n in kinds.items() if k != "exact_duplicate" and k not in FIXED_KINDS),
            "duplicates_planted": kinds.get("exact_duplicate", 0),
            "fixed": sum(n for k, n in kinds.items() if k in FIXED_KINDS),
        }
        for s, kinds in report.dirt_by_stream.items()
    }
    return {
        "generated": report.generated,
        "seconds": round(seconds, 2),
        "rows": report.rows,
        "input_lines": by_stream,
        "input_lines_total": sum(by_stream.values()),
        "feed_mib": mib(sum(p.stat().st_size for p in feed.rglob("*.jsonl*"))),
        "manifest": expected,
        "peak_rss_mib": mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
    }


def worker_spark(args: dict[str, Any]) -> dict[str, Any]:
    """One Spark run: ingest + clean into a fresh lake."""
    from socialrec.lake import Lake
    from socialrec.logs import configure_logging
    from socialrec.pipelines import clean, ingest
    from socialrec.spark import build_spark

    configure_logging("WARNING")
    lake_dir = Path(args["lake"])
    shutil.rmtree(lake_dir, ignore_errors=True)
    cfg = bench_config(Path(args["feed"]), SyntheticConfig(**args["synthetic"]), lake_dir)
    t0 = time.perf_counter()
    spark = build_spark(cfg)
    spark.range(1).count()  # the JVM and the first executor are up
    startup = time.perf_counter() - t0
    engine = Lake(spark, cfg).engine_name
    with TreeRss() as mem:
        t0 = time.perf_counter()
        ingested = ingest.run(spark, cfg)
        t1 = time.perf_counter()
        audits = clean.run(spark, cfg)
        t2 = time.perf_counter()
    java = spark._jvm.System.getProperty("java.version") if spark._jvm is not None else None  # noqa: SLF001
    version = spark.version
    spark.stop()
    return {
        "startup_s": round(startup, 3),
        "ingest_s": round(t1 - t0, 3),
        "clean_s": round(t2 - t1, 3),
        "total_s": round(t2 - t0, 3),
        "peak_mem_mib": mib(mem.growth_plus_children_peak),
        "peak_driver_growth_mib": mib(mem.self_peak - mem.self_start),
        "peak_jvm_tree_mib": mib(mem.children_peak),
        "rss_at_peak_mib": mem.at_peak,
        "rss_samples": mem.samples,
        "cpu_s": mem.own_cpu_s,
        "other_cpu_pct": mem.other_cpu_pct,
        "input_lines": sum(n for rows in ingested.ingested.values() for n in rows.values()),
        "audit": [
            {"table": a.table, "batch": a.batch_id, "input": a.input_rows, "kept": a.kept_rows,
             "duplicates": a.duplicate_rows, "quarantined": a.quarantined_rows}
            for a in audits
        ],
        "spark": version,
        "java": java,
        "lake_engine": engine,
    }


def sql_sections(path: Path = SQL_FILE) -> dict[str, str]:
    """``-- name: <section>`` blocks of the SQL file."""
    sections: dict[str, str] = {}
    name: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"--\s*name:\s*(\w+)\s*$", line)
        if m:
            name = m.group(1)
            sections[name] = ""
        elif name is not None:
            sections[name] += line + "\n"
    return sections


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def render(sql: str, params: dict[str, str]) -> str:
    """Fill ``{{name}}`` placeholders (values are SQL text); a missing one is an error, not an empty string."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: params[m.group(1)], sql)


def stream_file(batch_dir: Path, stream: str) -> Path | None:
    for name in (f"{stream}.jsonl", f"{stream}.jsonl.gz"):
        if (batch_dir / name).is_file():
            return batch_dir / name
    return None


def worker_duckdb(args: dict[str, Any]) -> dict[str, Any]:
    """One DuckDB run of bench/duckdb_clean.sql over every batch of the feed; Parquet into ``out``."""
    import duckdb

    feed, out = Path(args["feed"]), Path(args["out"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    clean_cfg = args["clean"]
    sections = sql_sections()
    with TreeRss() as mem:
        t_start = time.perf_counter()
        con = duckdb.connect(
            ":memory:",
            config={
                "threads": args["threads"],
                "memory_limit": args["memory_limit"],
                "temp_directory": str(out / "tmp"),
                "preserve_insertion_order": False,
            },
        )
        base = {
            "source": lit(SOURCE),
            "max_id_chars": str(clean_cfg["max_id_chars"]),
            "max_title_chars": str(clean_cfg["max_title_chars"]),
            "max_text_chars": str(clean_cfg["max_text_chars"]),
            "max_short_chars": str(clean_cfg["max_short_chars"]),
            "platform_launch": lit(clean_cfg["platform_launch"]),
            "rating_min": "1.0",
            "rating_max": "5.0",
            "event_types": "(" + ", ".join(lit(t) for t in EVENT_TYPES) + ")",
            "relations": "(" + ", ".join(lit(r) for r in RELATIONS) + ")",
        }
        con.execute(render(sections["setup"], base))
        timings = {"load": 0.0, "judge": 0.0, "export": 0.0}

        def timed(phase: str, sql: str, params: dict[str, str]) -> None:
            t = time.perf_counter()
            con.execute(render(sql, params))
            timings[phase] += time.perf_counter() - t

        batches = sorted(d.name for d in feed.iterdir() if d.is_dir() and any(stream_file(d, s) for s in STREAMS))
        for batch in batches:
            ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            future_after = ingested_at + dt.timedelta(hours=float(clean_cfg["future_tolerance_hours"]))
            for stream in STREAM_ORDER:
                f = stream_file(feed / batch, stream)
                if f is None:
                    continue
                params = {
                    **base,
                    "batch": lit(batch),
                    "files": f"[{lit(str(f))}]",
                    "future_after": lit(future_after.isoformat(sep=" ")),
                    "payload": ", ".join(PAYLOAD[stream]),
                    "version_ts": VERSION_TS[stream],
                    "silver": f"silver_{stream}",
                    "table_name": lit(f"silver.{stream}"),
                    "stream_is_users": "true" if stream == "users" else "false",
                }
                timed("load", sections["load"], params)
                timed("judge", sections[f"type_{stream}"] + "DROP TABLE lines;\n", params)
                timed("judge", sections["judge"] + "DROP TABLE typed;\n", params)
                if stream == "users":
                    timed("judge", sections["users_seen_again"], params)
                timed("judge", sections["merge"] + "DROP TABLE judged;\n", params)
        outputs = {f"out_{s}": lit(str(out / f"silver_{s}.parquet")) for s in STREAMS}
        outputs |= {"out_quarantine": lit(str(out / "quarantine.parquet")), "out_audit": lit(str(out / "audit.parquet"))}
        timed("export", sections["export"], outputs)
        audit_cols = ["table_name", "batch_id", "input_rows", "kept_rows", "duplicate_rows", "quarantined_rows"]
        audit = con.execute(f"SELECT {', '.join(audit_cols)} FROM audit ORDER BY batch_id, table_name").fetchall()
        reasons = con.execute(
            "SELECT table_name, array_to_string(reasons, ',') AS r, count(*) FROM quarantine GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        con.close()
        total = time.perf_counter() - t_start
    shutil.rmtree(out / "tmp", ignore_errors=True)
    return {
        "ingest_s": round(timings["load"], 3),
        "clean_s": round(timings["judge"] + timings["export"], 3),
        "export_s": round(timings["export"], 3),
        "total_s": round(total, 3),
        "peak_mem_mib": mib(max(mem.self_peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)),
        "peak_growth_mib": mib(mem.self_peak - mem.self_start),
        "rss_samples": mem.samples,
        "cpu_s": mem.own_cpu_s,
        "other_cpu_pct": mem.other_cpu_pct,
        "input_lines": sum(r[2] for r in audit),
        "audit": [
            {"table": t, "batch": b, "input": i, "kept": k, "duplicates": d, "quarantined": q}
            for t, b, i, k, d, q in audit
        ],
        "quarantine_reasons": [{"table": t, "reasons": r, "rows": n} for t, r, n in reasons],
        "duckdb": duckdb.__version__,
        "threads": args["threads"],
        "memory_limit": args["memory_limit"],
    }


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "generate": worker_generate,
    "spark": worker_spark,
    "duckdb": worker_duckdb,
}


def run_worker(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run a worker in a fresh interpreter; its stderr passes through, its result comes back as JSON."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "bench.ingest_clean", "--worker", kind, "--worker-args", json.dumps(args)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stdout.splitlines()[-20:])
        raise RuntimeError(f"{kind} worker failed (exit {proc.returncode}); stdout tail:\n{tail}")
    result = json.loads(lines[-1][len(RESULT_MARK):])
    result["process_wall_s"] = round(wall, 3)
    return result


# ------------------------------------------------------------------------------------------- summary

FIGURES = ("ingest_s", "clean_s", "total_s", "peak_mem_mib")


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {f: round(statistics.median(r[f] for r in runs), 3) for f in FIGURES}
    out["peak_mem_mib"] = round(out["peak_mem_mib"])
    out["peak_mem_max_mib"] = max(r["peak_mem_mib"] for r in runs)
    out["rows_per_s"] = round(runs[0]["input_lines"] / out["total_s"]) if out["total_s"] else None
    out["other_cpu_pct"] = statistics.median(r["other_cpu_pct"] or 0.0 for r in runs)
    return out


def audit_by_table(audit: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for a in audit:
        t = totals.setdefault(a["table"], {"input": 0, "kept": 0, "duplicates": 0, "quarantined": 0})
        for k in t:
            t[k] += a[k]
    return dict(sorted(totals.items(), key=lambda kv: STREAM_ORDER.index(kv[0].split(".", 1)[1])))


def parity(spark_runs: list[dict[str, Any]], duck_runs: list[dict[str, Any]], manifest: dict[str, Any]) -> dict[str, Any]:
    """Per table, summed over batches: both engines' counts and where they differ."""
    s, d = audit_by_table(spark_runs[0]["audit"]), audit_by_table(duck_runs[0]["audit"])
    tables = {}
    for table in sorted(set(s) | set(d), key=lambda t: STREAM_ORDER.index(t.split(".", 1)[1])):
        a, b = s.get(table, {}), d.get(table, {})
        diff = {k: b.get(k, 0) - a.get(k, 0) for k in ("input", "kept", "duplicates", "quarantined") if b.get(k, 0) != a.get(k, 0)}
        tables[table] = {"spark": a, "duckdb": b, "duckdb_minus_spark": diff,
                         "manifest": manifest.get(table.split(".", 1)[1], {})}
    per_batch = {
        "spark": sorted((a["table"], a["batch"], a["kept"], a["duplicates"], a["quarantined"]) for a in spark_runs[0]["audit"]),
        "duckdb": sorted((a["table"], a["batch"], a["kept"], a["duplicates"], a["quarantined"]) for a in duck_runs[0]["audit"]),
    }
    return {
        "tables": tables,
        "identical": all(not t["duckdb_minus_spark"] for t in tables.values())
        and per_batch["spark"] == per_batch["duckdb"],
        "identical_per_batch": per_batch["spark"] == per_batch["duckdb"],
        "stable_across_repeats": {
            "spark": all(audit_by_table(r["audit"]) == s for r in spark_runs),
            "duckdb": all(audit_by_table(r["audit"]) == d for r in duck_runs),
        },
    }


def machine() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "cpu_count": psutil.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_model": model,
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pyspark": version("pyspark"),
        "duckdb": version("duckdb"),
        "deltalake": version("deltalake"),
    }


# ------------------------------------------------------------------------------------------- main


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1000000, 1M, 200k)")
    return int(float(m.group(1)) * {"": 1, "k": 10**3, "m": 10**6}[m.group(2).lower()])


@contextlib.contextmanager
def section(console: Any, title: str) -> Iterator[None]:
    t0 = time.perf_counter()
    console.print(f"[bold]{title}[/bold] ...")
    console.file.flush()
    yield
    console.print(f"  done in {time.perf_counter() - t0:.1f} s (load average {load_avg()})")
    console.file.flush()


def bench_size(n: int, args: argparse.Namespace, console: Any) -> dict[str, Any]:
    synth = synthetic_config(n)
    feed = SCRATCH / f"feed-{n}"
    cfg = bench_config(feed, synth)
    with section(console, f"{n:,} events: generating the feed (seed {SEED})"):
        gen = run_worker("generate", {"feed": str(feed), "synthetic": synth.model_dump(mode="json")})
    console.print(f"  {gen['input_lines_total']:,} input lines, {gen['feed_mib']} MiB"
                  f"{'' if gen['generated'] else ' (kept feed reused)'}")
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in args.engines}
    for r in range(args.repeats):
        for engine in args.engines:  # interleaved, so both engines see the same background load
            target = SCRATCH / f"{engine}-{n}-r{r}"
            worker_args: dict[str, Any] = {"feed": str(feed), "synthetic": synth.model_dump(mode="json")}
            if engine == "spark":
                worker_args["lake"] = str(target)
            else:
                worker_args |= {"out": str(target), "clean": cfg.clean.model_dump(mode="json"),
                                "threads": args.duckdb_threads, "memory_limit": args.duckdb_memory_limit}
            before = load_avg()
            with section(console, f"{n:,} events: {engine} run {r + 1}/{args.repeats}"):
                result = run_worker(engine, worker_args)
            result["load_avg_before"], result["load_avg_after"] = before, load_avg()
            console.print(f"  ingest {result['ingest_s']:.1f} s, clean {result['clean_s']:.1f} s, "
                          f"total {result['total_s']:.1f} s, peak {result['peak_mem_mib']} MiB, "
                          f"other processes' CPU {result['other_cpu_pct']}%")
            runs[engine].append(result)
            if not (args.keep_data and r == args.repeats - 1):
                shutil.rmtree(target, ignore_errors=True)
    if not args.keep_data:
        shutil.rmtree(feed, ignore_errors=True)
    out: dict[str, Any] = {
        "events": n,
        "synthetic": synth.model_dump(mode="json"),
        "feed": {k: gen[k] for k in ("input_lines", "input_lines_total", "feed_mib", "rows", "generated", "seconds",
                                     "peak_rss_mib")},
        "runs": runs,
        "medians": {e: medians(rs) for e, rs in runs.items()},
    }
    if "spark" in runs and "duckdb" in runs:
        ms, md = out["medians"]["spark"], out["medians"]["duckdb"]
        out["spark_over_duckdb"] = {
            "total_time": round(ms["total_s"] / md["total_s"], 2),
            "ingest_time": round(ms["ingest_s"] / md["ingest_s"], 2) if md["ingest_s"] else None,
            "clean_time": round(ms["clean_s"] / md["clean_s"], 2) if md["clean_s"] else None,
            "peak_mem": round(ms["peak_mem_mib"] / md["peak_mem_mib"], 2),
        }
        out["parity"] = parity(runs["spark"], runs["duckdb"], gen["manifest"])
    return out


def print_size(res: dict[str, Any], repeats: int, console: Any) -> None:
    from rich.table import Table

    n = res["events"]
    table = Table(title=f"ingest + clean, {n:,} events ({res['feed']['input_lines_total']:,} input lines), "
                        f"median of {repeats}")
    cols = ("engine", "ingest s", "clean s", "total s", "runs total s", "lines/s", "peak MiB", "load 1m",
            "others' CPU %")
    for col in cols:
        table.add_column(col, justify="left" if col == "engine" else "right")
    for engine, m in res["medians"].items():
        rs = res["runs"][engine]
        table.add_row(engine, f"{m['ingest_s']:.2f}", f"{m['clean_s']:.2f}", f"{m['total_s']:.2f}",
                      " ".join(f"{r['total_s']:.1f}" for r in rs), f"{m['rows_per_s']:,}", str(m["peak_mem_mib"]),
                      " ".join(f"{r['load_avg_before'][0]:.1f}" for r in rs),
                      " ".join(f"{r['other_cpu_pct']:.0f}" for r in rs))
    if "spark_over_duckdb" in res:
        # Only the totals compare like with like: DuckDB's "ingest" only reads lines (it parses JSON in clean).
        ratio = res["spark_over_duckdb"]
        table.add_row("spark/duckdb", "", "", f"[bold]{ratio['total_time']}x[/bold]", "", "",
                      f"[bold]{ratio['peak_mem']}x[/bold]", "", "")
    console.print(table)
    if "parity" not in res:
        return
    par = res["parity"]
    pt = Table(title=f"parity, {n:,} events: kept / duplicates / quarantined per table (all batches)")
    for col in ("table", "input", "spark", "duckdb", "difference", "manifest quarantined"):
        pt.add_column(col, justify="left" if col == "table" else "right")
    for table_name, t in par["tables"].items():
        fmt = lambda c: f"{c.get('kept', 0):,} / {c.get('duplicates', 0):,} / {c.get('quarantined', 0):,}"  # noqa: E731
        diff = ", ".join(f"{k} {v:+,}" for k, v in t["duckdb_minus_spark"].items()) or "[green]none[/green]"
        pt.add_row(table_name, f"{t['spark'].get('input', 0):,}", fmt(t["spark"]), fmt(t["duckdb"]), diff,
                   f"{t['manifest'].get('quarantined', 0):,}")
    console.print(pt)
    verdict = "[green]identical[/green]" if par["identical"] else "[red]DIFFERENT[/red] (see bench/README.md, parity)"
    console.print(f"parity: {verdict}; per batch identical: {par['identical_per_batch']}; "
                  f"stable across repeats: {par['stable_across_repeats']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000", help="comma-separated event counts (1M, 200k allowed)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engines", default="spark,duckdb", help="comma-separated: spark, duckdb")
    ap.add_argument("--keep-data", action="store_true",
                    help="keep the feeds (reused by the next run) and the last repeat's lake / Parquet outputs")
    ap.add_argument("--duckdb-threads", type=int, default=psutil.cpu_count() or 2)
    ap.add_argument("--duckdb-memory-limit", default=None,
                    help="DuckDB memory_limit (default: spark.driver_memory of the local config, same budget)")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--worker-args", help=argparse.SUPPRESS)
    args = ap.parse_args()
    # Before anything reads it (the Spark workers inherit the environment).
    os.environ.setdefault(KEY_ENV, BENCH_KEY)
    if args.worker:
        result = WORKERS[args.worker](json.loads(args.worker_args))
        print(RESULT_MARK + json.dumps(result), flush=True)
        return

    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # a log file: wide enough for the tables
        console = Console(width=150)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(args.engines) - {"spark", "duckdb"})
    if unknown or not args.engines or args.repeats < 1:
        ap.error(f"--engines: spark and/or duckdb (got {unknown or args.engines}); --repeats >= 1")
    local = load_config("local")
    if args.duckdb_memory_limit is None:
        args.duckdb_memory_limit = (local.spark.driver_memory or "4g").upper() + "B"
    SCRATCH.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        **results_header("ingest_clean", "bench.ingest_clean", args.repeats),
        "engines": args.engines,
        "spark_conf": {"master": local.spark.master, "driver_memory": local.spark.driver_memory,
                       "shuffle_partitions": local.spark.shuffle_partitions},
        "duckdb_conf": {"threads": args.duckdb_threads, "memory_limit": args.duckdb_memory_limit},
        "pseudonym_key": "environment" if os.environ[KEY_ENV] != BENCH_KEY else "fixed benchmark key",
        "sizes": {},
    }
    for n in sizes:
        res = bench_size(n, args, console)
        results["sizes"][str(n)] = res
        print_size(res, args.repeats, console)
    results["load_avg_end"] = load_avg()
    if not args.keep_data:
        shutil.rmtree(SCRATCH / "tmp", ignore_errors=True)  # the Spark workers' scratch (paths.tmp)
    # What the workers ran on (the first run of each engine says it).
    for res in results["sizes"].values():
        for r in (rs[0] for rs in res["runs"].values()):
            for key in ("spark", "java", "lake_engine", "duckdb"):
                if key in r:
                    results["machine"].setdefault(f"{key}_runtime", r[key])
    out = save_results("ingest-clean", results)
    console.print(f"load average: start {results['load_avg_start']}, end {results['load_avg_end']}")
    console.print(f"written {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
