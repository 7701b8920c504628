"""``make bench``: every benchmark, one after the other, as **one run that survives being stopped**.

    python -m bench.all [--suite bench|quality] [--fresh] [--allow-code-change] [--plan]

``--suite quality`` is ``make bench-quality`` (bench/quality.py on the shared datasets), run the same way, with its
manifest in ``bench/results/<date>-quality-run.json``.

On this 2-core machine the whole set takes longer than one working session (the 1M/3M/10M scale run alone is about
two hours), so a run is recorded step by step in ``bench/results/<date>-run.json``, the run's manifest:

* the run's **date** is fixed when it starts and handed to every benchmark (``$SOCIALREC_BENCH_DATE``), so all its
  result files are ``bench/results/<name>-<date>.json`` even when it is finished on a later day;
* every **step** (one benchmark module, one fresh process) is recorded when it starts and when it ends, with its
  exit code, seconds and the invocation it ran in;
* ``make bench`` again, after a stop (a killed session, Ctrl-C, a failed step), **resumes** the newest unfinished
  run: finished steps are kept, an unfinished one runs again from its start, except the scale run, which is
  resumed stage by stage (``bench.scale --resume``: only the stage that was cut short runs again);
* a run is only resumed on the **code it started with** (the last commit that touched the code, and no
  uncommitted change to it): a stopped run and a code change would otherwise mix two versions in one summary.
  ``--fresh`` starts a new run instead; ``--allow-code-change`` resumes anyway and records it;
* each step runs whole in one invocation, so every comparison a benchmark makes (Spark vs DuckDB, sparse vs dense,
  ...) is still between runs made side by side; only whole steps can be apart in time;
* the last step writes the summary (``bench.summarise --run``; for the quality suite ``bench.quality --run``, which
  prints every target of the run), which says which results belong to the run.

``--plan`` prints the steps, their commands and what the manifest says of each, and runs nothing.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import BENCH_DATE_ENV, RESULTS

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
# What a benchmark's figures depend on: a commit touching any of these makes a new version of the code.
CODE_PATHS: tuple[str, ...] = ("socialrec", "jobs", "conf", "bench/*.py", "bench/*.sql", "setup.py", "Makefile")


@dataclass(frozen=True)
class Step:
    """One benchmark of the run: ``python -m <module> <args>`` in a fresh process, writing
    ``bench/results/<results>-<date>.json``. ``resume_flag``: the module can go on from its own partial results
    file when it is passed as ``<resume_flag> <file>`` (the scale run)."""

    name: str
    module: str
    args: tuple[str, ...] = ()
    results: str = ""
    resume_flag: str | None = None
    needs: tuple[str, ...] = field(default=())

    def command(self, python: str, resume_from: Path | None = None) -> list[str]:
        extra = [self.resume_flag, str(resume_from)] if self.resume_flag and resume_from else []
        return [python, "-m", self.module, *self.args, *extra]


# The scale run comes first: it is the longest step, and the features benchmark reads the 10M lake it keeps.
# Sizes the scale run measures in the whole pipeline (10M events, ~10M edges) are not measured again by the
# per-stage benchmarks, whose job is the median of several runs and the comparison with a peer.
STEPS: tuple[Step, ...] = (
    Step("scale", "bench.scale", ("--sizes", "1M,3M,10M", "--keep-data", "--event-log"), "scale",
         resume_flag="--resume"),
    Step("features", "bench.features", ("--lake", "var/bench/scale/run-10000000", "--repeats", "3"), "features",
         needs=("scale",)),
    Step("lake", "bench.lake", (), "lake"),
    Step("ingest-clean", "bench.ingest_clean", ("--sizes", "1000000", "--repeats", "3"), "ingest-clean"),
    Step("embeddings", "bench.embeddings", ("--texts", "10000", "--repeats", "3"), "embeddings"),
    Step("graph", "bench.graph", ("--edges", "1000000,3000000", "--repeats", "3"), "graph"),
    Step("training", "bench.training", ("--users", "1000000", "--items", "100000", "--repeats", "3"), "training"),
    Step("recommend", "bench.recommend", ("--repeats", "3"), "recommend"),
)


QUALITY_STEPS: tuple[Step, ...] = (
    # One step: bench.quality goes on from its own file (--resume) at the first (dataset, protocol) it lacks, and
    # inside an evaluation the models already trained are reused by their training key (MLflow registry).
    Step("quality", "bench.quality", ("--datasets", "lastfm,ciao", "--protocols", "random,temporal",
                                      "--seeds", "42,43,44"), "quality", resume_flag="--resume"),
)


@dataclass(frozen=True)
class Suite:
    """A set of steps run as one resumable run: ``make bench`` (``bench``) or ``make bench-quality``
    (``quality``). ``final``: the module run once every step is done (its arguments get ``--date`` and
    ``--run <manifest>``); the run is finished when it succeeds."""

    name: str
    steps: tuple[Step, ...]
    final: str

    def manifest_name(self, date: str) -> str:
        # "<date>-run.json", not "run-<date>.json": bench.summarise reads every "<name>-<date>.json" as a benchmark.
        return f"{date}-run.json" if self.name == "bench" else f"{date}-{self.name}-run.json"


SUITES = {"bench": Suite("bench", STEPS, "bench.summarise"),
          "quality": Suite("quality", QUALITY_STEPS, "bench.quality")}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else ""


def code_version(repo: Path, paths: Sequence[str] = CODE_PATHS) -> dict[str, Any]:
    """The last commit that touched the code the figures depend on, and whether the work tree changes it."""
    return {"commit": _git(repo, "log", "-1", "--format=%H", "--", *paths) or None,
            "uncommitted": bool(_git(repo, "status", "--porcelain", "--untracked-files=no", "--", *paths))}


def unfinished_run(results: Path, suite: str = "bench") -> Path | None:
    """The newest manifest of ``suite`` whose run has not finished, if any."""
    for path in sorted(results.glob("*-run.json"), reverse=True):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if manifest.get("suite", "bench") == suite and not manifest.get("finished_at"):
            return path
    return None


def _save(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(path)  # atomic: a run killed while saving keeps the previous manifest


def open_run(results: Path, repo: Path, suite: Suite, *, fresh: bool, allow_code_change: bool,
             today: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The manifest to work on: the newest unfinished run of ``suite`` (unless ``fresh``), else a new run dated
    today."""
    version = code_version(repo)
    path = None if fresh else unfinished_run(results, suite.name)
    if path is not None:
        manifest: dict[str, Any] = json.loads(path.read_text())
        started = manifest["code"]
        if (version["commit"] != started["commit"] or version["uncommitted"]) and not allow_code_change:
            raise SystemExit(
                f"the unfinished benchmark run {path.name} started on code {started['commit']}; the code is now "
                f"{version['commit']}{' with uncommitted changes' if version['uncommitted'] else ''}. Finish it on "
                "that code, start a new run with --fresh, or resume anyway with --allow-code-change (recorded).")
        manifest["invocations"].append({"started_at": _now(), "code": version, "load_avg": _load_avg()})
        return path, manifest
    date = today or dt.date.today().isoformat()
    path = results / suite.manifest_name(date)
    manifest = {
        "benchmark_run": date, "suite": suite.name, "started_at": _now(), "finished_at": None, "code": version,
        "command": f"python -m bench.all --suite {suite.name}",
        "invocations": [{"started_at": _now(), "code": version, "load_avg": _load_avg()}],
        "steps": {s.name: {"module": s.module, "args": list(s.args), "results_file": f"{s.results}-{date}.json",
                           "status": "pending", "attempts": []} for s in suite.steps},
    }
    if version["uncommitted"]:
        logger.warning("the code has uncommitted changes: this run cannot be tied to a commit")
    return path, manifest


def _load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_steps(path: Path, manifest: dict[str, Any], steps: Sequence[Step], results: Path, repo: Path,
              python: str = sys.executable) -> int:
    """Run every step that is not done, in order, saving the manifest around each; returns the first non-zero
    exit code (the run stays unfinished and the next invocation starts at that step), else 0."""
    date = manifest["benchmark_run"]
    invocation = len(manifest["invocations"])
    env = {**os.environ, BENCH_DATE_ENV: date}
    _save(path, manifest)
    for step in steps:
        rec = manifest["steps"][step.name]
        if rec["status"] == "done":
            logger.info("step %s: done in invocation %s, kept", step.name, rec["attempts"][-1]["invocation"])
            continue
        missing = [n for n in step.needs if manifest["steps"][n]["status"] != "done"]
        if missing:
            raise SystemExit(f"step {step.name} needs {missing} done first")
        out = results / rec["results_file"]
        resume_from = out if step.resume_flag and rec["attempts"] and out.exists() else None
        cmd = step.command(python, resume_from)
        attempt: dict[str, Any] = {"invocation": invocation, "started_at": _now(), "command": " ".join(cmd[1:]),
                                   "finished_at": None, "exit_code": None}
        rec["attempts"].append(attempt)
        rec["status"] = "running"  # what a killed invocation leaves: the next one runs (or resumes) this step
        _save(path, manifest)
        logger.info("step %s: %s", step.name, " ".join(cmd[1:]))
        t0 = time.perf_counter()
        code = subprocess.run(cmd, cwd=repo, env=env, check=False).returncode
        attempt.update(finished_at=_now(), seconds=round(time.perf_counter() - t0, 1), exit_code=code)
        rec["status"] = "done" if code == 0 else "failed"
        _save(path, manifest)
        if code != 0:
            logger.error("step %s failed (exit %d); `make bench` again resumes the run at this step", step.name, code)
            return code
        if not out.exists():
            logger.warning("step %s finished but wrote no %s", step.name, out.name)
    return 0


def finish(path: Path, manifest: dict[str, Any], suite: Suite, repo: Path, python: str = sys.executable) -> int:
    """The suite's final module (the summary); the run is finished once it succeeds."""
    env = {**os.environ, BENCH_DATE_ENV: manifest["benchmark_run"]}
    code = subprocess.run([python, "-m", suite.final, "--date", manifest["benchmark_run"], "--run", str(path)],
                          cwd=repo, env=env, check=False).returncode
    if code == 0:
        manifest["finished_at"] = _now()
        _save(path, manifest)
    return code


def plan(manifest: dict[str, Any], steps: Sequence[Step]) -> list[str]:
    lines = [f"benchmark run {manifest['benchmark_run']} (code {manifest['code']['commit']}), "
             f"{len(manifest['invocations'])} invocation(s) so far"]
    for s in steps:
        rec = manifest["steps"][s.name]
        took = sum(a.get("seconds") or 0 for a in rec["attempts"])
        lines.append(f"  {s.name:<13} {rec['status']:<8} {took:8.0f} s  python -m {s.module} {' '.join(s.args)}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=sorted(SUITES), default="bench",
                    help="bench: make bench (every benchmark); quality: make bench-quality (the shared datasets)")
    ap.add_argument("--fresh", action="store_true", help="start a new run even if one is unfinished")
    ap.add_argument("--allow-code-change", action="store_true",
                    help="resume an unfinished run although the code changed since it started (recorded)")
    ap.add_argument("--plan", action="store_true", help="print the steps and their state; run nothing")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    RESULTS.mkdir(exist_ok=True)
    suite = SUITES[args.suite]
    path, manifest = open_run(RESULTS, REPO, suite, fresh=args.fresh,
                              allow_code_change=args.allow_code_change or args.plan)
    if args.plan:
        manifest["invocations"].pop()  # looking is not an invocation
        print("\n".join(plan(manifest, suite.steps)))
        return 0
    logger.info("%s run %s (%s), invocation %d", suite.name, manifest["benchmark_run"], path.name,
                len(manifest["invocations"]))
    code = run_steps(path, manifest, suite.steps, RESULTS, REPO)
    return code or finish(path, manifest, suite, REPO)


if __name__ == "__main__":
    sys.exit(main())
