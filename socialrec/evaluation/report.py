"""The evaluation report: Markdown tables and PNG plots from the long-format figures of one evaluation run.

Input is what ``gold.evaluation`` holds for the run (``model, seed, split, slice, metric, k, value, users``),
as pandas (a few thousand rows at most). Figures over several seeds are shown as mean ± std.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

ALL = "all"


def _cell(values: pd.Series) -> str:
    if len(values) > 1:
        return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"
    return f"{values.iloc[0]:.4f}"


def pivot(table: pd.DataFrame, split: str, metrics: Sequence[tuple[str, int]], slice_: str = ALL) -> pd.DataFrame:
    """One row per model, one column per ``metric@k``: mean (± std over seeds)."""
    t = table[(table["split"] == split) & (table["slice"] == slice_)]
    models = list(dict.fromkeys(t["model"]))
    rows = []
    for m in models:
        row: dict[str, Any] = {"model": m}
        for metric, k in metrics:
            v = t[(t["model"] == m) & (t["metric"] == metric) & (t["k"] == k)]["value"]
            row[f"{metric}@{k}"] = _cell(v) if len(v) else "-"
        seeds = t[t["model"] == m]["seed"].nunique()
        row["seeds"] = seeds
        rows.append(row)
    return pd.DataFrame(rows)


def headline_table(table: pd.DataFrame, split: str) -> pd.DataFrame:
    ks = sorted(set(table[table["metric"] == "ndcg"]["k"]))
    return pivot(table, split, [(m, k) for k in ks for m in ("recall", "ndcg")])


def _markdown(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _mean(table: pd.DataFrame, **where: Any) -> pd.DataFrame:
    t = table
    for col, val in where.items():
        t = t[t[col] == val]
    return t.groupby(["model", "k", "metric", "slice"], sort=False)["value"].mean().reset_index()


def _plots(table: pd.DataFrame, split: str, out: Path, ks: Sequence[int]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = _mean(table, split=split)
    models = list(dict.fromkeys(t["model"]))
    k = sorted(ks)[len(ks) // 2] if ks else 10

    def values(metric: str, kk: int, slice_: str = ALL) -> list[float]:
        sel = t[(t["metric"] == metric) & (t["k"] == kk) & (t["slice"] == slice_)]
        return [float(sel[sel["model"] == m]["value"].mean()) for m in models]

    def bars(ax: Any, series: dict[str, list[float]], title: str) -> None:
        """One group of bars per model, one bar per series."""
        width = 0.8 / max(len(series), 1)
        for i, (label, vals) in enumerate(series.items()):
            ax.bar([x + i * width for x in range(len(models))], vals, width, label=label)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(models))], models, rotation=30, ha="right")
        ax.set_title(title)
        ax.legend()

    plots = {
        "metrics.png": [({f"@{kk}": values(metric, kk) for kk in sorted(ks)}, f"{metric} ({split})")
                        for metric in ("recall", "ndcg")],
        "recall_by_popularity.png": [({b: values("recall", k, f"bucket:{b}") for b in ("head", "mid", "tail")},
                                      f"recall@{k} by item popularity bucket ({split})")],
        "coverage.png": [({f"@{kk}": values("coverage", kk) for kk in sorted(ks)}, f"catalogue coverage ({split})")],
    }
    for name, panels in plots.items():
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 2, 4), squeeze=False)
        for ax, (series, title) in zip(axes[0], panels, strict=True):
            bars(ax, series, title)
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
    names = list(plots)
    return names


def write_report(
    table: pd.DataFrame,
    out: Path,
    *,
    dataset: str,
    protocol: str,
    ks: Sequence[int],
    run_id: str,
    info: Mapping[str, Mapping[str, Any]],
    skipped: Mapping[str, str],
    sizes: Mapping[str, int],
) -> Path:
    """Write ``report.md`` and its plots into ``out``; returns the Markdown file."""
    out.mkdir(parents=True, exist_ok=True)
    splits = [s for s in ("test", "validation") if s in set(table["split"])]
    main_split = splits[0]
    ks = sorted(ks)
    k_mid = ks[len(ks) // 2]
    lines = [
        f"# Evaluation: {dataset}, {protocol} protocol",
        "",
        f"MLflow run `{run_id}`. Full ranking over all items minus each user's earlier items; figures are means "
        "over users (± std over training seeds where there are several). Rows of `gold.evaluation` with this run id "
        "hold every figure below.",
        "",
        "Sizes: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()),
        "",
    ]
    for split in splits:
        lines += [f"## Accuracy ({split})", "", _markdown(headline_table(table, split)), ""]
    lines += ["![accuracy per model](metrics.png)", ""]
    beyond = pivot(table, main_split, [(m, k_mid) for m in ("coverage", "gini", "novelty", "ild_category", "ild_embedding")])
    lines += [f"## Beyond accuracy ({main_split}, lists cut at {k_mid})", "", _markdown(beyond), "",
              "![coverage](coverage.png)", ""]
    slice_names = [s for s in ("cold", "warm", "social", "no_social") if s in set(table["slice"])]
    t = table[(table["split"] == main_split) & (table["metric"] == "ndcg") & (table["k"] == k_mid)]
    rows = []
    for m in dict.fromkeys(t["model"]):
        row: dict[str, Any] = {"model": m}
        for s in [ALL, *slice_names]:
            v = t[(t["model"] == m) & (t["slice"] == s)]
            row[f"{s} (users)"] = f"{v['value'].mean():.4f} ({int(v['users'].iloc[0]) if len(v) else 0})" if len(v) else "-"
        rows.append(row)
    lines += [f"## NDCG@{k_mid} by user slice ({main_split})", "",
              "cold: at most `evaluate.cold_user_max` training items; social: has sampled 1-hop neighbours.", "",
              _markdown(pd.DataFrame(rows)), ""]
    buckets = pivot(table, main_split, [("recall", k_mid)], slice_="bucket:head").rename(columns={f"recall@{k_mid}": "head"})
    for b in ("mid", "tail"):
        buckets[b] = pivot(table, main_split, [("recall", k_mid)], slice_=f"bucket:{b}")[f"recall@{k_mid}"]
    lines += [f"## Recall@{k_mid} by item popularity ({main_split})", "",
              "head: the most popular items holding the first third of training interactions; mid: the next third; "
              "tail: the rest.", "", _markdown(buckets.drop(columns=["seeds"])), "",
              "![recall by popularity bucket](recall_by_popularity.png)", ""]
    if info:
        lines += ["## Models", ""]
        for name, i in info.items():
            lines.append(f"- **{name}**: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in i.items()))
        lines.append("")
    if skipped:
        lines += ["## Skipped", ""] + [f"- **{k}**: {v}" for k, v in skipped.items()] + [""]
    _plots(table, main_split, out, ks)
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
