"""One summary of the benchmarks: ``bench/results/<date>.json`` and ``<date>.md`` with plots (``make bench``'s last step).

Reads the newest ``bench/results/<name>-<date>.json`` of each benchmark (on or before ``--date``), writes them
together into ``bench/results/<date>.json``, and a Markdown summary ``bench/results/<date>.md`` with the headline
figure of each and, for the scale run (``bench/scale.py``), the per-stage table (seconds and peak memory per size,
the largest/smallest ratio) and plots under ``bench/results/<date>/``: seconds per stage per size, peak memory
per stage per size, and each stage's seconds against events (log-log, next to a linear slope).

    python -m bench.summarise [--date YYYY-MM-DD]
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from bench import RESULTS, bench_date

_NAMED = re.compile(r"^(?P<name>[a-z][a-z-]*)-(?P<date>\d{4}-\d{2}-\d{2})\.json$")


def newest_results(date: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """benchmark name -> (file name, content) of its newest file dated on or before ``date``."""
    found: dict[str, tuple[str, Path]] = {}
    for path in RESULTS.glob("*.json"):
        m = _NAMED.match(path.name)
        if m and m["date"] <= date and (m["name"] not in found or found[m["name"]][0] < m["date"]):
            found[m["name"]] = (m["date"], path)
    return {name: (path.name, json.loads(path.read_text())) for name, (_d, path) in sorted(found.items())}


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _per_size(r: dict[str, Any], a: tuple[str, ...], b: tuple[str, ...], fmt: str) -> str:
    """``fmt`` for each size of ``r["sizes"]`` with both figures (paths ``a`` and ``b`` in it) and their ratio."""
    parts = []
    for n, s in r.get("sizes", {}).items():
        x, y = _get(s, *a), _get(s, *b)
        if x and y:
            parts.append(fmt.format(n=int(n), a=x, b=y, ratio=x / y))
    return "; ".join(parts)


def headline(name: str, r: dict[str, Any]) -> str:
    """One line per benchmark: its main comparison, as the benchmark itself computed it."""
    if name == "ingest-clean":
        return _per_size(r, ("medians", "spark", "total_s"), ("medians", "duckdb", "total_s"),
                         "{n:,} events: Spark {a:.0f} s vs DuckDB {b:.1f} s (x{ratio:.1f})")
    if name == "embeddings":
        return (f"in the pipeline / plain sentence-transformers, texts/s: {r.get('ratio_warm')} warm, "
                f"{r.get('ratio_cold')} cold (target >= {r.get('target_ratio')})")
    if name == "graph":
        ratio = r.get("ratio", {})
        return (f"{ratio.get('sizes')} edges (x{ratio.get('edges')}): sampling x{ratio.get('sampling_time')}, "
                f"social proof x{ratio.get('social_proof_time')} in time")
    if name == "training":
        m = r.get("median", {})
        return (f"examples/s per process: 1 proc {m.get('train_1proc_examples_per_s_per_process', 0):.0f}, "
                f"2 procs {m.get('train_2proc_examples_per_s_per_process', 0):.0f}; petastorm/plain pyarrow loading "
                f"{_get(r, 'ratios', 'petastorm_vs_plain') or 0:.2f}"
                + (f"; sparse / dense id tables, 2 procs: x{_get(r, 'ratios', 'sparse_vs_dense_id_tables_2proc'):.2f} "
                   f"({r.get('users', 0):,} users, {r.get('items', 0):,} items)"
                   if _get(r, "ratios", "sparse_vs_dense_id_tables_2proc") else ""))
    if name == "lake":
        return f"staged / arrow write path, time: {r.get('staged_over_arrow_time')}"
    if name == "recommend":
        return _per_size(r, ("spark", "exact", "users_per_s"), ("peer", "exact", "users_per_s"),
                         "{n:,} users exact: Spark {a:,} users/s vs one process {b:,} (x{ratio:.2f})")
    if name == "features":
        m, par = r.get("medians", {}), r.get("parity", {})
        return (f"Spark {_get(m, 'spark', 'seconds') or 0:.1f} s vs DuckDB {_get(m, 'duckdb', 'seconds') or 0:.1f} s "
                f"(x{_get(r, 'spark_over_duckdb', 'time')}), outputs identical: {par.get('identical')}")
    if name == "scale":
        sc = r.get("scaling") or {}
        if sc:
            return (f"{sc['from']:,} -> {sc['to']:,} events (x{sc['size_ratio']:.0f}): whole pipeline "
                    f"x{sc['total_ratio']} in time")
        return "sizes run: " + ", ".join(f"{int(n):,}" for n in r.get("sizes", {}))
    return "see the file"


def peer_rows(found: dict[str, tuple[str, dict[str, Any]]]) -> list[tuple[str, str, str, float | None]]:
    """(stage, what was compared, peer, socialrec time / peer time): each from a benchmark that ran both side by
    side in one invocation (below 1: socialrec is faster)."""
    rows: list[tuple[str, str, str, float | None]] = []

    def res(name: str) -> dict[str, Any]:
        return found[name][1] if name in found else {}

    for n, size in res("ingest-clean").get("sizes", {}).items():
        ratio = size.get("spark_over_duckdb") or {}
        if ratio.get("total_time"):  # the phases do different work (bronze Delta tables vs an in-memory load)
            rows.append(("ingest + clean", f"{int(n):,} events, feed to silver (ingest x{ratio.get('ingest_time')}, "
                         f"clean x{ratio.get('clean_time')})", "DuckDB SQL (bench/duckdb_clean.sql), same audit "
                         f"counts: {_get(size, 'parity', 'identical')}", ratio["total_time"]))
    feats = res("features")
    if feats.get("spark_over_duckdb"):
        rows.append(("features", f"user/item features + sequences ({feats.get('lake', '')})",
                     "DuckDB SQL (bench/features.py), outputs identical: "
                     f"{_get(feats, 'parity', 'identical')}", feats["spark_over_duckdb"]["time"]))
    emb = res("embeddings")
    if emb.get("ratio_warm"):
        rows.append(("embeddings", f"{_get(emb, 'input', 'texts') or 0:,} real item texts, MiniLM",
                     "plain sentence-transformers, one process", round(1 / emb["ratio_warm"], 2)))
    tr = res("training")
    plain = _get(tr, "ratios", "socialrec_vs_plain_torch")
    if plain:
        rows.append(("train", f"{tr.get('steps')} steps of batch {tr.get('batch_size')}, examples/s",
                     "plain torch loop, one process, 2 threads", round(1 / plain, 2)))
    for n, size in res("recommend").get("sizes", {}).items():
        a, b = _get(size, "spark", "exact", "users_per_s"), _get(size, "peer", "exact", "users_per_s")
        if a and b:
            rows.append(("recommend (scoring)", f"{int(n):,} users x {_get(res('recommend'), 'params', 'items') or 0:,} "
                         "items, exact top-k", "brute force in one process (faiss IndexFlatIP, 2 threads)",
                         round(b / a, 2)))
    return rows


def scale_section(r: dict[str, Any], plots: Path, rel: str) -> list[str]:
    sizes = {int(n): s for n, s in r.get("sizes", {}).items() if s.get("runs")}
    if not sizes:
        return []
    stages = [st["stage"] for st in next(iter(sizes.values()))["runs"][0]]

    def figure(n: int, stage: str, key: str) -> float | None:
        m = sizes[n].get("medians", {}).get(stage)
        if m:
            return m[key]
        done = [st for st in sizes[n]["runs"][-1] if st["stage"] == stage and st["stage_s"] is not None]
        return done[0][key] if done else None

    order = sorted(sizes)
    head = "| stage | " + " | ".join(f"{n:,} events: s / peak MiB" for n in order) + " |"
    lines = ["## Scale run (`bench/scale.py`)", "", f"`{r.get('command')}`, {r.get('repeats')} repeat(s), "
             f"train epochs {r.get('epochs')}, baselines {r.get('baselines')}, driver memory {r.get('driver_memory')}."
             + "".join(f" Resumed {x.get('at')}: `{x.get('command')}`." for x in r.get("resumed", [])),
             "", head, "|" + "---|" * (len(order) + 1)]
    for stage in stages:
        cells = []
        for n in order:
            s, mem = figure(n, stage, "stage_s"), figure(n, stage, "peak_rss_mib")
            pending = ("failed" if sizes[n].get("failed") == stage
                       else "stopped while running" if sizes[n].get("running") == stage else "not run yet")
            cells.append(pending if s is None else f"{s:,.1f} / {mem:,}")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    sc = r.get("scaling") or {}
    if not sc or sc.get("to") != order[-1]:  # the largest size is still running (or stopped): what it has so far
        sc = _partial_scaling(order, stages, figure) or sc
    if sc:
        lines += ["", ("" if sc.get("complete", True) else "So far (the largest size is not finished): ") + f"Time ratio {sc['to']:,} / {sc['from']:,} events (size ratio {sc['size_ratio']:.0f}): "
                  + ", ".join(f"{s} x{v}" for s, v in sc["stage_ratio"].items()) + f"; whole pipeline x{sc['total_ratio']}."]
        if sc.get("cpu_ratio"):
            lines += ["", "CPU-seconds ratio of each stage's process tree (what the work costs, whatever else used the "
                      "machine meanwhile: see each stage's `others_cpu_pct` in the JSON): "
                      + ", ".join(f"{s} x{v}" for s, v in sc["cpu_ratio"].items()) + "."]
    others = {(n, st["stage"]): st.get("others_cpu_pct") for n, sz in sizes.items() for st in sz["runs"][-1]}
    busy = {k: v for k, v in others.items() if v is not None and v > 15}
    if busy:
        lines += ["", "Stages during which other processes used more than 15% of the machine (their seconds are "
                  "inflated): " + ", ".join(f"{st} at {n:,} ({v}%)" for (n, st), v in sorted(busy.items())) + "."]
    peak = max((figure(n, s, "peak_rss_mib") or 0) for n in order for s in stages)
    lines += ["", f"Highest peak memory of any stage: {peak:,} MiB (limit {r.get('memory_limit_gib')} GiB)."]
    failed = {n: s["failed"] for n, s in sizes.items() if "failed" in s}
    if failed:
        lines += ["", "Failed: " + ", ".join(f"{n:,} events at {st}" for n, st in failed.items())]
    lines += _scale_plots(sizes, order, stages, figure, plots, rel)
    return lines


def _partial_scaling(order: list[int], stages: list[str], figure: Any) -> dict[str, Any]:
    """The largest size against a tenth of it (else the smallest), for the stages both have finished."""
    if len(order) < 2:
        return {}
    hi = order[-1]
    lo = hi // 10 if hi // 10 in order else order[0]
    both = [s for s in stages if figure(hi, s, "stage_s") and figure(lo, s, "stage_s")]
    if not both:
        return {}
    return {"from": lo, "to": hi, "size_ratio": hi / lo, "complete": False,
            "stage_ratio": {s: round(figure(hi, s, "stage_s") / figure(lo, s, "stage_s"), 2) for s in both},
            "total_ratio": round(sum(figure(hi, s, "stage_s") for s in both) / sum(figure(lo, s, "stage_s") for s in both), 2),
            "cpu_ratio": {s: round(figure(hi, s, "tree_cpu_s") / figure(lo, s, "tree_cpu_s"), 2) for s in both
                          if figure(hi, s, "tree_cpu_s") and figure(lo, s, "tree_cpu_s")}}


def _scale_plots(sizes: dict[int, Any], order: list[int], stages: list[str], figure: Any, plots: Path,
                 rel: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    plots.mkdir(parents=True, exist_ok=True)
    out = []
    x = np.arange(len(stages))
    width = 0.8 / max(1, len(order))
    for key, label, name in (("stage_s", "seconds", "scale-time.png"), ("peak_rss_mib", "peak memory (PSS of the process tree, MiB)", "scale-memory.png")):
        fig, ax = plt.subplots(figsize=(10, 4))
        for i, n in enumerate(order):
            ax.bar(x + i * width, [figure(n, s, key) or 0 for s in stages], width, label=f"{n:,} events")
        ax.set_xticks(x + width * (len(order) - 1) / 2, stages, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.legend()
        fig.tight_layout()
        fig.savefig(plots / name, dpi=100)
        plt.close(fig)
        out += ["", f"![{label} per stage]({rel}/{name})"]
    if len(order) >= 2:
        fig, ax = plt.subplots(figsize=(6, 5))
        for s in stages:
            ys = [figure(n, s, "stage_s") for n in order]
            if all(y for y in ys):
                ax.loglog(order, ys, marker="o", label=s)
        first = [figure(order[0], s, "stage_s") or 0 for s in stages]
        base = max(first) if first else 1
        ax.loglog(order, [base * n / order[0] for n in order], "k--", label="linear")
        ax.set_xlabel("events")
        ax.set_ylabel("seconds")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(plots / "scale-curves.png", dpi=100)
        plt.close(fig)
        out += ["", f"![scaling curves]({rel}/scale-curves.png)"]
    return out


def run_section(manifest: dict[str, Any], name: str) -> list[str]:
    """How a ``make bench`` run (``bench.all``) went: its invocations and, per step, the seconds and where it ran."""
    invs = manifest.get("invocations", [])
    commits = sorted({(i.get("code") or {}).get("commit") or "?" for i in invs})
    md = [f"## This run: `make bench`, {manifest['benchmark_run']} (`{name}`)", "",
          f"{len(invs)} invocation(s) on code {', '.join(c[:12] for c in commits)}"
          + (" (**more than one version of the code**)" if len(commits) > 1 else "")
          + ": each step runs whole in one invocation, so the comparisons inside a benchmark are side by side.", "",
          "| step | status | seconds | invocation | started | command |", "|---|---|---|---|---|---|"]
    for step, rec in manifest["steps"].items():
        attempts = rec.get("attempts", [])
        last = attempts[-1] if attempts else {}
        secs = sum(a.get("seconds") or 0 for a in attempts)
        tries = f" ({len(attempts)} attempts)" if len(attempts) > 1 else ""
        md.append(f"| {step} | {rec['status']}{tries} | {secs:,.0f} | {last.get('invocation', '-')} | "
                  f"{last.get('started_at', '-')} | `{last.get('command', '')}` |")
    return md + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--date", default=bench_date())
    ap.add_argument("--run", type=Path, default=None,
                    help="a make bench run's manifest (bench/results/<date>-run.json): the summary says which results "
                         "that run wrote and how it ran")
    args = ap.parse_args()
    found = newest_results(args.date)
    combined: dict[str, Any] = {"date": args.date,
                                "benchmarks": {name: {"file": f, **r} for name, (f, r) in found.items()}}
    md = [f"# Benchmarks, {args.date}", ""]
    in_run: set[str] = set()
    if args.run:
        manifest = json.loads(args.run.read_text())
        combined["run"] = manifest
        in_run = {s["results_file"] for s in manifest["steps"].values() if s["status"] == "done"}
        md += run_section(manifest, args.run.name)
    md += ["Newest result of each benchmark on or before this date (medians of several runs; ratios from runs made "
           f"side by side in one invocation). Raw figures: `{args.date}.json` and each benchmark's own file."
           + (" *this run*: written by the run above; the others are older files, kept for reference." if args.run
              else ""), "", "| benchmark | file | headline |", "|---|---|---|"]
    for name, (f, r) in found.items():
        mark = " (*this run*)" if f in in_run else ""
        md.append(f"| {name} | `{f}`{mark} | {headline(name, r)} |")
    (RESULTS / f"{args.date}.json").write_text(json.dumps(combined, indent=2) + "\n")
    if "scale" in found:
        md += [""] + scale_section(found["scale"][1], RESULTS / args.date, args.date)
    peers = peer_rows(found)
    if peers:
        md += ["", "## Against a peer", "", "What a user would write instead on one machine, run side by side with "
               "socialrec's code in one invocation of each benchmark. Time ratio socialrec / peer (below 1: socialrec "
               "is faster).", "", "| stage | workload | peer | time ratio |", "|---|---|---|---|"]
        md += [f"| {st} | {what} | {peer} | {'-' if ratio is None else f'x{ratio}'} |" for st, what, peer, ratio in peers]
    (RESULTS / f"{args.date}.md").write_text("\n".join(md) + "\n")
    print(f"written {RESULTS / f'{args.date}.json'} and {RESULTS / f'{args.date}.md'}")


if __name__ == "__main__":
    main()
