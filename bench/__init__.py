"""Benchmarks (``make bench``): each module measures medians of several runs and writes its results here."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def save_results(name: str, results: dict[str, Any]) -> Path:
    """Write ``results`` to ``bench/results/<name>-<date>.json`` atomically (a killed run leaves the old file)."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}-{results['date']}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(out)
    return out
