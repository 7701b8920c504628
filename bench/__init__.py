"""Benchmarks (``make bench``): each module measures medians of several runs and writes its results here."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
BENCH_DATE_ENV = "SOCIALREC_BENCH_DATE"


def bench_date() -> str:
    """The date a result is filed under: ``$SOCIALREC_BENCH_DATE`` when a ``make bench`` run (``bench.all``) set
    it, so every benchmark of one run shares the run's date even when the run is resumed on a later day; else
    today."""
    pinned = os.environ.get(BENCH_DATE_ENV, "").strip()
    if not pinned:
        return dt.date.today().isoformat()
    try:
        return dt.date.fromisoformat(pinned).isoformat()
    except ValueError:
        raise SystemExit(f"${BENCH_DATE_ENV}={pinned!r} is not a date (YYYY-MM-DD)") from None


def save_results(name: str, results: dict[str, Any]) -> Path:
    """Write ``results`` to ``bench/results/<name>-<date>.json`` atomically (a killed run leaves the old file)."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}-{results['date']}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(out)
    return out
