"""The scale run: the whole pipeline on synthetic platforms of growing size, stage by stage (issue 10).

For each size N (events; users N/10, items N/100, a follow graph of ``--follows`` mean out-degree, so 10M events
come with 1M users and about 10M social edges) a synthetic platform is generated once under
``var/bench/scale/feed-<N>/`` (a kept feed is reused), then every stage of ``make run`` runs in a fresh
``python -m jobs.run_all --only <stage>`` process on a lake of its own (``var/bench/scale/run-<N>/``), in order:
init_lake, ingest, clean, embeddings, graph, features, examples, train (``--epochs``, default 1), recommend,
evaluate (baselines ``--baselines``, default most_popular and ALS). This process samples the job's whole process
tree (the Python driver, the JVM, Python workers, training ranks) every 200 ms for its peak memory (the sum of
the processes' PSS, so that pages forked processes share count once).

Per stage: the stage's own seconds (what ``run_all`` logs, without the ~10 s Spark start of each process), the
process's wall seconds, peak RSS of the tree, CPU seconds of the tree, and the output rows it logged. Across
sizes: the ratio of each stage's seconds at the largest size to the smallest (close to the size ratio is
linear). ``--repeats`` > 1 reruns the stages on a fresh lake and reports medians.

Writes ``bench/results/scale-<date>.json`` (every run's raw figures, the machine, the command), and
``bench/summarise.py`` turns it into the Markdown summary with plots.

    python -m bench.scale [--sizes 1M,3M,10M] [--repeats 1] [--epochs 1] [--baselines most_popular,als]
                          [--driver-memory 8g] [--keep-data] [--event-log]
                          [--resume bench/results/scale-<date>.json [--rerun train,...]]
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from bench import save_results
from bench.ingest_clean import KEY_ENV, TreeRss, load_avg, mib, parse_size, results_header, run_worker

REPO = Path(__file__).resolve().parent.parent
SCRATCH = REPO / "var" / "bench" / "scale"
SEED = 20261124
BENCH_KEY = "socialrec-bench-scale-fixed-pseudonym-key"
STAGES = ("init_lake", "ingest", "clean", "embeddings", "graph", "features", "examples", "train", "recommend",
          "evaluate")
MEMORY_LIMIT_GIB = 16  # issue 10: every stage's peak stays under this on the 24 GiB machine
_STAGE_DONE = re.compile(r"stage (\w+) done in ([0-9.]+)s")


class StageTree(TreeRss):
    """:class:`TreeRss` with two changes for a job process the benchmark waits for.

    Memory is the sum of the tree's **PSS** (proportional set size), not RSS: Python workers forked from one
    daemon, and a JVM that forks a helper, share pages that a sum of RSS would count once per process. CPU
    seconds are summed from each process's last sample (a process that has exited can no longer be asked),
    and the other processes' share of the machine follows from that.
    """

    def __init__(self, interval: float = 0.2, max_share: float = 0.1) -> None:
        super().__init__(interval)
        self.cpu_by_pid: dict[int, float] = {}
        # Reading PSS walks each process's page tables: at 10M events (a 10 GiB JVM) 5 samples a second took up
        # to 80% of a core, slowing the stage measured. The pause after a sample grows with what it cost, so the
        # sampler stays under ``max_share`` of one core; its own CPU time is reported.
        self.max_share = max_share
        self.sampler_cpu_s = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            t0, c0 = time.perf_counter(), time.thread_time()
            self._sample()
            cost = time.perf_counter() - t0
            self.sampler_cpu_s += time.thread_time() - c0
            self._stop.wait(max(self.interval, cost * (1 - self.max_share) / self.max_share))

    def _sample(self) -> None:
        pss: dict[str, int] = {}
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # exited between listing and reading
                pss[f"{child.name()}:{child.pid}"] = child.memory_full_info().pss
                c = child.cpu_times()
                self.cpu_by_pid[child.pid] = c.user + c.system
        own = self.proc.memory_info().rss
        total = max(0, own - self.self_start) + sum(pss.values())
        self.self_peak = max(self.self_peak, own)
        self.children_peak = max(self.children_peak, sum(pss.values()))
        if total > self.growth_plus_children_peak:
            self.growth_plus_children_peak = total
            self.at_peak = {"self (growth)": mib(max(0, own - self.self_start)), **{k: mib(v) for k, v in pss.items()}}
        self.samples += 1

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        capacity = (time.perf_counter() - self._t0) * (psutil.cpu_count() or 1)
        busy = psutil.cpu_times()
        machine = sum(busy) - busy.idle - getattr(busy, "iowait", 0.0) - self._busy0
        self.own_cpu_s = round(sum(self.cpu_by_pid.values()), 1)
        other = max(0.0, machine - self.own_cpu_s)
        self.other_cpu_pct = round(100 * other / capacity, 1) if capacity > 0 else None


def synthetic(n: int, follows: float) -> dict[str, Any]:
    return {"events": n, "users": max(10, n // 10), "items": max(10, n // 100), "avg_follows": follows,
            "batches": 2, "seed": SEED}


def shuffle_partitions(n: int, args: argparse.Namespace) -> int:
    """Shuffle partitions for ``n`` events: ``conf/local.yaml``'s 4 up to 1M events, then one per
    ``--events-per-partition``, so a task's share of a shuffle stays about the same at every size (the 10M
    graph stage with 4 partitions spilled 7.4 GB in one 4-task stage). AQE still coalesces small shuffles."""
    return max(4, -(-n // args.events_per_partition)) if args.events_per_partition > 0 else 4


def overrides(n: int, args: argparse.Namespace) -> list[str]:
    """The ``local`` configuration, pointed at this size's feed and lake, as ``--set`` arguments."""
    root = SCRATCH / f"run-{n}"
    sets = {
        "paths.root": str(root),
        "data.dataset": "synthetic",
        "data.path": str(SCRATCH / f"feed-{n}"),
        "data.synthetic": json.dumps(synthetic(n, args.follows)),
        "logging.to_file": "false",
        "train.epochs": str(args.epochs),
        "evaluate.baselines.models": json.dumps(args.baselines),
        "evaluate.reports_dir": str(root / "reports"),
        "spark.driver_memory": args.driver_memory,
        "spark.shuffle_partitions": str(shuffle_partitions(n, args)),
    }
    if args.event_log:
        logs = SCRATCH / "event-logs"
        logs.mkdir(parents=True, exist_ok=True)
        sets["spark.conf"] = json.dumps({"spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file://{logs}",
                                         "spark.ui.showConsoleProgress": "false"})
    out = []
    for k, v in sets.items():
        out += ["--set", f"{k}={v}"]
    return out


def run_stage(stage: str, n: int, args: argparse.Namespace, log_dir: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """One stage in a fresh job process; its output goes to ``log_dir/<stage>.log``; ``extra``: more job args."""
    env = dict(os.environ)
    env.setdefault(KEY_ENV, BENCH_KEY)
    env["COLUMNS"] = "200"
    cmd = [sys.executable, "-m", "jobs.run_all", "--env", "local", "--only", stage, *overrides(n, args), *extra]
    log = log_dir / f"{stage}.log"
    event_logs = SCRATCH / "event-logs"
    before = set(event_logs.iterdir()) if args.event_log and event_logs.exists() else set()
    t0 = time.perf_counter()
    with open(log, "w") as out, StageTree() as rss:
        code = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    done = {m.group(1): float(m.group(2)) for m in _STAGE_DONE.finditer(text)}
    result = {
        "stage": stage,
        "exit_code": code,
        "stage_s": done.get(stage),
        "process_wall_s": round(wall, 2),
        "peak_rss_mib": mib(rss.growth_plus_children_peak),  # PSS of the tree (StageTree)
        "peak_pss_by_process_mib": rss.at_peak,
        "tree_cpu_s": rss.own_cpu_s,
        "others_cpu_pct": rss.other_cpu_pct,  # includes the sampler's own share, below
        "pss_samples": rss.samples,
        "sampler_cpu_s": round(rss.sampler_cpu_s, 1),
        "log": str(log.relative_to(REPO)),
    }
    if args.event_log and event_logs.exists():  # the stage's application(s): python -m bench.eventlog <dir>
        result["event_logs"] = sorted(str(p.relative_to(REPO)) for p in set(event_logs.iterdir()) - before)
    if code != 0 or stage not in done:
        result["error_tail"] = text[-3000:]
    return result


def bench_size(n: int, args: argparse.Namespace, console: Any, done: dict[str, Any] | None = None,
               save: Any = None) -> dict[str, Any]:
    """All stages at size ``n``; ``done`` is this size's entry from an interrupted run (``--resume``): its
    finished stages are kept and the run goes on from the first stage it lacks, on the lake it left.
    ``save(entry)`` is called after every stage, so a run killed mid-size loses at most one stage."""
    synth = synthetic(n, args.follows)
    feed = SCRATCH / f"feed-{n}"
    entry: dict[str, Any] = dict(done or {})
    if entry.get("synthetic") not in (None, synth):
        raise SystemExit(f"--resume: size {n} was run with {entry['synthetic']}, not {synth}")
    entry.setdefault("started_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    entry["synthetic"] = synth
    parts = shuffle_partitions(n, args)
    if entry.get("runs") and entry.get("shuffle_partitions", 4) != parts:
        raise SystemExit(f"--resume: size {n} was run with {entry.get('shuffle_partitions', 4)} shuffle partitions, "
                         f"not {parts}; pass the same --events-per-partition")
    entry["shuffle_partitions"] = parts
    if "generate" not in entry or not feed.exists():  # the feed is under var/: gone on another machine
        console.print(f"[bold]{n:,} events[/bold]: generating the platform ({synth}) ...")
        gen = run_worker("generate", {"feed": str(feed), "synthetic": synth})
        console.print(f"  {gen['input_lines_total']:,} input lines ({gen['input_lines']}), {gen['feed_mib']} MiB, "
                      f"{gen['seconds']} s{'' if gen['generated'] else ' (kept feed reused)'}")
        entry["generate"] = gen
    repeats: list[list[dict[str, Any]]] = entry.setdefault("runs", [])
    entry.pop("failed", None)
    for r in range(args.repeats):
        root = SCRATCH / f"run-{n}"
        log_dir = SCRATCH / "logs" / f"{n}-r{r + 1}"
        if r < len(repeats):
            stages = [s for s in repeats[r] if s["exit_code"] == 0 and s["stage_s"] is not None]
            repeats[r] = stages
            if len(stages) == len(STAGES):
                continue
            if root.exists():
                console.print(f"  r{r + 1}: resuming after {stages[-1]['stage'] if stages else 'nothing'}")
            else:  # e.g. another machine: the stages done so far cannot be continued, so this repeat starts over
                console.print(f"  r{r + 1}: the lake {root} is gone; its {len(stages)} finished stages are dropped "
                              "and the repeat starts over")
                entry.setdefault("dropped_partial_runs", []).append(stages)
                entry.pop("running", None)
                stages = []
                repeats[r] = stages
                shutil.rmtree(log_dir, ignore_errors=True)
        else:
            shutil.rmtree(root, ignore_errors=True)  # a fresh lake, MLflow store and checkpoints per repeat
            shutil.rmtree(log_dir, ignore_errors=True)
            stages = []
            repeats.append(stages)
        log_dir.mkdir(parents=True, exist_ok=True)
        for stage in STAGES[len(stages):]:
            interrupted = entry.pop("running", None) == stage
            entry["running"] = stage  # saved: a resumed run knows this stage was cut short and says so
            if save:
                save(entry)
            res = run_stage(stage, n, args, log_dir)
            entry.pop("running", None)
            res["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            if interrupted:
                res["resumed_after_interruption"] = True  # its seconds are the rerun's, not a whole stage's
            stages.append(res)
            console.print(f"  r{r + 1} {stage:<10} {res['stage_s'] or float('nan'):8.1f} s  "
                          f"(process {res['process_wall_s']:.1f} s, peak {res['peak_rss_mib']:,} MiB, "
                          f"CPU {res['tree_cpu_s']:.0f} s, others {res['others_cpu_pct']}%)")
            if res["exit_code"] != 0 or res["stage_s"] is None:
                console.print(f"[red]  {stage} failed (exit {res['exit_code']}); see {res['log']}[/red]")
                entry["failed"] = stage
                if save:
                    save(entry)
                return entry
            if save:
                save(entry)
    if not args.keep_data:
        shutil.rmtree(SCRATCH / f"run-{n}", ignore_errors=True)
    entry["medians"] = medians(repeats)
    return entry


def rerun_stages(n: int, args: argparse.Namespace, console: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """``--rerun``: the given stages again, in pipeline order, on size ``n``'s kept lake (each repeat's lake is
    the last one, so only a single-repeat size can be rerun). A stage's new figures replace its old ones, which
    are kept under ``superseded`` with the time they were replaced."""
    repeats = entry["runs"]
    if len(repeats) != 1:
        raise SystemExit(f"--rerun: size {n} has {len(repeats)} repeats, and only the last one's lake is kept")
    log_dir = SCRATCH / "logs" / f"{n}-r1"
    for stage in (s for s in STAGES if s in args.rerun):
        i = STAGES.index(stage)
        old = repeats[0][i]
        # A rerun of train must train: its key is registered already (by the first run, or by evaluate), and the
        # stage would otherwise report the seconds of finding it.
        res = run_stage(stage, n, args, log_dir, ("--set", "train.retrain=true") if stage == "train" else ())
        res["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        res["rerun_of"] = old.get("finished_at")
        console.print(f"  {n:,} rerun {stage:<10} {res['stage_s'] or float('nan'):8.1f} s (was {old['stage_s']} s; "
                      f"process {res['process_wall_s']:.1f} s, peak {res['peak_rss_mib']:,} MiB, CPU {res['tree_cpu_s']:.0f} s)")
        if res["exit_code"] != 0 or res["stage_s"] is None:
            raise SystemExit(f"--rerun: {stage} at {n:,} failed (exit {res['exit_code']}); see {res['log']}; the "
                             "results file is unchanged")
        entry.setdefault("superseded", []).append({**old, "superseded_at": res["finished_at"]})
        repeats[0][i] = res
    entry["medians"] = medians(repeats)
    return entry


def medians(repeats: list[list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    out = {}
    for i, stage in enumerate(STAGES):
        runs = [rep[i] for rep in repeats]
        out[stage] = {
            "stage_s": round(statistics.median(r["stage_s"] for r in runs), 2),
            "process_wall_s": round(statistics.median(r["process_wall_s"] for r in runs), 2),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "tree_cpu_s": round(statistics.median(r["tree_cpu_s"] for r in runs), 1),
        }
    return out


def scaling(sizes: dict[str, Any]) -> dict[str, Any]:
    """Per stage: seconds at the largest completed size over the size a tenth of it (issue 10's 10M/1M), or
    over the smallest completed size when there is none, next to the size ratio."""
    done = sorted((int(n) for n, res in sizes.items() if "medians" in res))
    if len(done) < 2:
        return {}
    hi = done[-1]
    lo = hi // 10 if hi // 10 in done else done[0]
    a, b = sizes[str(lo)]["medians"], sizes[str(hi)]["medians"]
    per_stage = {s: round(b[s]["stage_s"] / a[s]["stage_s"], 2) if a[s]["stage_s"] else None for s in STAGES}
    total = (sum(b[s]["stage_s"] for s in STAGES) / sum(a[s]["stage_s"] for s in STAGES))
    # CPU seconds of the stage's process tree: what the work costs, whatever else ran on the machine meanwhile
    cpu = {s: round(b[s]["tree_cpu_s"] / a[s]["tree_cpu_s"], 2) if a[s]["tree_cpu_s"] else None for s in STAGES}
    return {"from": lo, "to": hi, "size_ratio": hi / lo, "stage_ratio": per_stage, "total_ratio": round(total, 2),
            "cpu_ratio": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1M,3M,10M", help="comma-separated event counts (1M, 200k allowed)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1, help="training epochs (issue 10: one)")
    ap.add_argument("--follows", type=float, default=10.0, help="mean out-degree of the follow graph")
    ap.add_argument("--baselines", default="most_popular,als", help="evaluate's baselines (comma-separated)")
    ap.add_argument("--driver-memory", default="8g", help="spark.driver_memory of every stage's process")
    ap.add_argument("--keep-data", action="store_true", help="keep the last lake of each size (feeds are kept)")
    ap.add_argument("--event-log", action="store_true", help="Spark event logs under var/bench/scale/event-logs")
    ap.add_argument("--events-per-partition", type=int, default=250_000,
                    help="spark.shuffle_partitions = max(4, N / this) per size; 0 = always 4 (conf/local.yaml)")
    ap.add_argument("--resume", type=Path, default=None,
                    help="a scale-<date>.json of an interrupted run: keep its finished sizes and stages, go on from "
                         "there (on the lakes it left) and write into that file")
    ap.add_argument("--rerun", default="",
                    help="with --resume: run these stages (comma-separated) again at every finished size whose lake "
                         "was kept, replacing their figures; the earlier ones stay under 'superseded' (a fix that "
                         "landed after the run, measured on the same lake)")
    args = ap.parse_args()
    args.rerun = [s.strip() for s in args.rerun.split(",") if s.strip()]
    if unknown := sorted(set(args.rerun) - set(STAGES)):
        ap.error(f"--rerun: unknown stages {unknown}; stages are {', '.join(STAGES)}")
    if args.rerun and not args.resume:
        ap.error("--rerun needs --resume (the results file whose stages it reruns)")
    args.baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    if args.repeats < 1 or args.epochs < 1:
        ap.error("--repeats and --epochs: at least 1")
    os.environ.setdefault(KEY_ENV, BENCH_KEY)

    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=160)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    header = results_header("scale", "bench.scale", args.repeats)
    if args.resume:
        results: dict[str, Any] = json.loads(args.resume.read_text())
        results.setdefault("resumed", []).append(
            {"at": header["started_at"], "command": header["command"], "machine": header["machine"],
             "load_avg": header["load_avg_start"]})
    else:
        results = {**header, "epochs": args.epochs, "baselines": args.baselines, "driver_memory": args.driver_memory,
                   "memory_limit_gib": MEMORY_LIMIT_GIB, "sizes": {}}
    for n in (parse_size(s) for s in args.sizes.split(",") if s.strip()):
        key = str(n)
        if "medians" in results["sizes"].get(key, {}):
            if args.rerun and (SCRATCH / f"run-{n}").exists():
                results["sizes"][key] = rerun_stages(n, args, console, results["sizes"][key])
                results["scaling"] = scaling(results["sizes"])
                save_results("scale", results)
            else:
                console.print(f"{n:,} events: done in {args.resume}, kept"
                              + (" (its lake is gone: nothing rerun)" if args.rerun else ""))
            continue

        def save(entry: dict[str, Any], key: str = key) -> None:
            results["sizes"][key] = entry
            save_results("scale", results)

        results["sizes"][key] = bench_size(n, args, console, results["sizes"].get(key), save)
        results["scaling"] = scaling(results["sizes"])
        out = save_results("scale", results)  # after every size: a long run killed later keeps what it measured
        if "failed" in results["sizes"][key]:
            break
    results["load_avg_end"] = load_avg()
    out = save_results("scale", results)
    console.print(f"written {out.relative_to(REPO)}; summary: python -m bench.summarise")
    failed = [f"{int(n):,} events: {s['failed']}" for n, s in results["sizes"].items() if "failed" in s]
    if failed:  # a caller (make bench) must not take a stopped run for a finished one
        raise SystemExit(f"stages failed ({'; '.join(failed)}): fix and resume with --resume {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
