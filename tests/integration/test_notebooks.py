"""The notebooks in ``notebooks/`` run top to bottom without an error, in a kernel on this interpreter.

01, 03 and 04 read the lake of ``make run`` (the ``default_run`` fixture) and must leave it as it was; 02 runs
every stage on a tiny synthetic platform in a folder of its own. The notebooks are also checked as stored: no
outputs, and short code cells (the logic lives in ``socialrec``, mostly ``socialrec.explore``).
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from deltalake import DeltaTable
from nbclient import NotebookClient

from tests.conftest import hand_reference_to_crash_chain, job_env

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ON_MAKE_RUN = ("01_explore_dataset.ipynb", "03_user_recommendations.ipynb", "04_evaluation_report.ipynb")
STAGE_BY_STAGE = "02_pipeline_stage_by_stage.ipynb"
KERNEL = "socialrec-notebook-test"
CELL_TIMEOUT_S = 300  # per cell; the slowest (02's train and evaluate stages) take well under a minute
MAX_CELL_LINES = 15


def test_notebooks_are_stored_without_outputs_and_with_short_cells() -> None:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == sorted((*ON_MAKE_RUN, STAGE_BY_STAGE))
    for name in names:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            where = f"{name} cell {i}"
            assert cell.outputs == [] and cell.execution_count is None, f"{where}: clear outputs before committing"
            lines = cell.source.strip().splitlines()
            assert 0 < len(lines) <= MAX_CELL_LINES, f"{where}: {len(lines)} lines; move logic into socialrec"
            assert not re.search(r"^\s*(def|class)\s|\blambda\b", cell.source, re.M), (
                f"{where}: defines a function; it belongs in socialrec (e.g. socialrec.explore)")


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec that runs ipykernel on this very interpreter (the venv's), found first on JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def execute(name: str, root: Path, kernel: str) -> nbformat.NotebookNode:
    """Run every cell of the notebook with ``SOCIALREC_NOTEBOOK_ROOT=root``, then one that prints the kernel's
    interpreter; returns the executed notebook."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    env = job_env(SOCIALREC_NOTEBOOK_ROOT=str(root))  # a Spark as small as the tests', C1-compiled JVM
    env.pop("MPLBACKEND", None)  # inline plots
    client = NotebookClient(nb, kernel_name=kernel, timeout=CELL_TIMEOUT_S, startup_timeout=120,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    t0 = time.perf_counter()
    client.execute(env=env)  # raises CellExecutionError, naming the cell, on the first error
    seconds = time.perf_counter() - t0
    assert nb.cells[-1].outputs[0]["text"].strip() == sys.executable, "the kernel ran another interpreter"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert any(o.get("data", {}).get("image/png") for c in nb.cells for o in c.get("outputs", [])) or \
        name == STAGE_BY_STAGE, f"{name}: no plot came out"
    print(f"{name}: {seconds:.1f}s")
    return nb


def lake_versions(lake: Path) -> dict[str, int]:
    return {str(log.parent.relative_to(lake)): DeltaTable(str(log.parent)).version()
            for log in sorted(lake.glob("*/*/_delta_log"))}


@pytest.mark.slow
def test_stage_by_stage_notebook_on_a_tiny_platform(tmp_path: Path, kernel: str) -> None:
    repo_reports = set((REPO / "reports").glob("*"))
    execute(STAGE_BY_STAGE, tmp_path, kernel)
    root = tmp_path / "tiny-platform"
    # the crash test's uninterrupted reference (tests/integration/crash_chain.py): same platform, same settings
    hand_reference_to_crash_chain(root, "notebook 02")
    versions = lake_versions(root / "lake")
    for table in ("silver/events", "gold/neighbourhoods", "gold/examples", "gold/recommendations", "gold/evaluation"):
        assert versions.get(table, 0) >= 1, f"{table} was not written: {versions}"
    # everything under its own root: the evaluation report too, not the repository's reports/ (local.yaml's)
    assert list(root.glob("reports/synthetic-temporal-*/report.md"))
    assert set((REPO / "reports").glob("*")) == repo_reports


@pytest.mark.slow
@pytest.mark.parametrize("name", ON_MAKE_RUN)
def test_notebook_on_the_make_run_lake_only_reads_it(name: str, default_run, kernel: str) -> None:  # type: ignore[no-untyped-def]
    root: Path = default_run["root"]
    before = lake_versions(root / "lake")
    assert "gold/recommendations" in before and "gold/evaluation" in before
    execute(name, root, kernel)
    assert lake_versions(root / "lake") == before, "the notebook wrote to the make run lake"
