"""The documentation stays true to the code: generated pages are current, commands named in the docs exist, the
Airflow DAG runs the pipeline's stages in order and docs/cluster.md covers every job. No Spark session."""
from __future__ import annotations

import ast
import re
import typing
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field
from pyspark.sql.types import ArrayType, IntegerType, StringType, StructField, StructType

from socialrec import docgen
from socialrec.config import AppConfig
from socialrec.schema.tables import TableSpec, all_tables

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
DAG_FILE = REPO / "deploy" / "airflow" / "socialrec_dag.py"
JOBS = sorted(p.stem for p in (REPO / "jobs").glob("*.py") if p.stem != "__init__")


# ------------------------------------------------------------------------------------------ generated pages


@pytest.mark.parametrize("name", sorted(docgen.GENERATED))
def test_generated_page_is_current(name: str) -> None:
    path = DOCS / name
    assert path.is_file(), f"{path} is missing: run `make docs`"
    assert path.read_text(encoding="utf-8") == docgen.GENERATED[name](), (
        f"docs/{name} is stale (the code changed): run `make docs` (python -m socialrec.docgen) and commit it"
    )


def test_generation_is_deterministic() -> None:
    for render in docgen.GENERATED.values():
        assert render() == render()


def test_contracts_list_every_registered_table_and_column() -> None:
    text = docgen.contracts_markdown()
    for spec in all_tables():
        assert f"## `{spec.qualified_name}`" in text
        for column in spec.column_names:
            assert f"| `{column}` |" in text


def test_a_new_table_shows_up_with_keys_partitions_personal_columns_and_types() -> None:
    spec = TableSpec(  # not registered: the registry stays as the library declares it
        name="docgen_probe",
        layer="gold",
        schema=StructType(
            [
                StructField("user_id", StringType(), False),
                StructField("day", StringType(), False),
                StructField("scores", ArrayType(IntegerType(), False), True),
                StructField("why", ArrayType(StructType([StructField("kind", StringType())])), True),
            ]
        ),
        keys=("user_id", "day"),
        partition_by=("day",),
        pii={"user_id": "pseudonym"},
        description="A probe table | with a pipe.",
    )
    text = docgen.contracts_markdown([spec])
    assert "## `gold.docgen_probe`" in text and "1 tables:" in text
    assert "- **keys**: `user_id`, `day`" in text
    assert "- **partitioned by**: `day`" in text
    assert "- **personal data**: `user_id` (pseudonym)" in text
    assert "| `user_id` | `string` | no |" in text
    assert "| `scores` | `array<int> (no null elements)` | yes |" in text
    assert "| `why[].kind` | `string` | yes |" in text  # nested struct fields get rows of their own
    assert "A probe table \\| with a pipe." in text  # escaped inside the summary table


def _dotted_keys(model: type[BaseModel], prefix: str = "") -> list[tuple[str, bool]]:
    """``(dotted key, is a section)`` for every key of ``model``, nested sections included."""
    keys = []
    for name, field in model.model_fields.items():
        section = isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        keys.append((f"{prefix}{name}", section))
        if section:
            keys += _dotted_keys(typing.cast(type[BaseModel], field.annotation), f"{prefix}{name}.")
    return keys


def test_configuration_lists_every_section_and_key_with_allowed_values() -> None:
    text = docgen.configuration_markdown()
    for key, section in _dotted_keys(AppConfig):
        assert (f"## `{key}`" if section else f"| `{key}` |") in text, key
    assert "| `lake.engine` | `enum` | `auto` | `auto`, `delta-rs`, `delta-spark` |" in text
    assert "| `spark.shuffle_partitions` | `int` | `4` | &gt;= 1 |" in text
    # Strings YAML would read as something else are shown quoted, as they must be given to --set.
    assert '`"on"`' in text and '`"2024-01-01"`' in text
    for layer in ("conf/base.yaml", "conf/<env>.yaml", "SOCIALREC__SECTION__KEY", "--set section.key=value"):
        assert layer in text


class _Inner(BaseModel):
    """A nested probe section."""

    mode: Literal["fast", "slow"] = Field("fast", description="How fast.")


class _Probe(BaseModel):
    """The probe root."""

    inner: _Inner = Field(default_factory=_Inner)
    count: int = Field(3, ge=1, description="How many.")
    ratio: float | None = Field(None, gt=0, lt=1)


def test_a_new_section_and_key_show_up(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("inner:\n  mode: slow\n")
    text = docgen.configuration_markdown(tmp_path, root=_Probe)
    assert "## `inner`" in text and "A nested probe section." in text
    assert "| `inner.mode` | `enum` | `fast` | `fast`, `slow` | How fast. |" in text
    assert "| `count` | `int` | `3` | &gt;= 1 | How many. |" in text
    assert "| `ratio` | `float \\| null` | null | &gt; 0 &lt; 1 or null |" in text
    assert "| `inner.mode` | `slow` |" in text  # the overlay table, from the YAML files
    assert "Environment variables: `SOCIALREC__INNER__<KEY>`." in text


def test_check_names_stale_pages_and_write_fixes_them(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def stale() -> set[str]:
        found = {Path(str(r.args[0])).name for r in caplog.records if r.levelname == "ERROR" and "is stale" in r.msg}
        caplog.clear()
        return found

    caplog.set_level("INFO", logger="socialrec.docgen")
    assert docgen.main(["--check", "--docs-dir", str(tmp_path)]) == 1
    assert stale() == {"contracts.md", "configuration.md"}
    assert docgen.main(["--docs-dir", str(tmp_path)]) == 0
    assert {Path(str(r.args[0])).name for r in caplog.records if r.msg.startswith("wrote")} == {"contracts.md", "configuration.md"}
    caplog.clear()
    assert docgen.main(["--check", "--docs-dir", str(tmp_path)]) == 0
    assert stale() == set()
    (tmp_path / "contracts.md").write_text("edited by hand\n")
    assert docgen.main(["--check", "--docs-dir", str(tmp_path)]) == 1
    assert stale() == {"contracts.md"}


# --------------------------------------------------------------------------------- commands the docs name


def _doc_files() -> list[Path]:
    return sorted(DOCS.glob("*.md")) + [REPO / "README.md"]


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-zA-Z_-]+):", (REPO / "Makefile").read_text(), flags=re.MULTILINE))


def test_every_python_module_and_make_target_the_docs_name_exists() -> None:
    import importlib.util

    targets = _make_targets()
    missing = []
    for doc in _doc_files():
        text = doc.read_text(encoding="utf-8")
        for module in set(re.findall(r"python -m ((?:jobs|socialrec|bench)(?:\.\w+)+)", text)):
            if importlib.util.find_spec(module) is None:
                missing.append(f"{doc.name}: python -m {module}")
        for target in set(re.findall(r"(?:`|^\s*)make ([a-z][a-z-]*)", text, flags=re.MULTILINE)):
            if target not in targets:
                missing.append(f"{doc.name}: make {target}")
    assert not missing, missing


# ------------------------------------------------------------------------------------- cluster deployment


def test_cluster_doc_has_a_spark_submit_command_for_every_job() -> None:
    text = (DOCS / "cluster.md").read_text(encoding="utf-8")
    missing = [job for job in JOBS if not re.search(rf"spark-submit[^\n]*\\?\n?[^\n]*jobs/{job}\.py", text)]
    assert not missing, f"docs/cluster.md has no spark-submit command for jobs {missing}"


def _dag_tasks() -> tuple[dict[str, tuple[str, str]], list[str]]:
    """``{variable: (task_id, job)}`` of the ``submit(...)`` tasks, and the variables in ``>>`` chain order."""
    tree = ast.parse(DAG_FILE.read_text(encoding="utf-8"), filename=str(DAG_FILE))
    tasks: dict[str, tuple[str, str]] = {}
    chains: list[list[str]] = []

    def flatten(node: ast.expr) -> list[str]:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
            return flatten(node.left) + flatten(node.right)
        assert isinstance(node, ast.Name), ast.dump(node)
        return [node.id]

    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "submit"
        ):
            target = node.targets[0]
            assert isinstance(target, ast.Name)
            task_id, job = (a.value if isinstance(a, ast.Constant) else None for a in node.value.args[:2])
            assert isinstance(task_id, str) and isinstance(job, str), "submit(stage, job) takes two literal strings"
            tasks[target.id] = (task_id, job)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.BinOp) and isinstance(node.value.op, ast.RShift):
            chains.append(flatten(node.value))
    assert len(chains) == 1, f"expected one task chain, found {chains}"
    return tasks, chains[0]


def test_airflow_dag_runs_the_pipeline_stages_in_order_with_existing_jobs() -> None:
    from socialrec.pipelines.all import STAGES

    tasks, chain = _dag_tasks()
    assert sorted(chain) == sorted(tasks), "every task is in the chain exactly once"
    assert [tasks[var][0] for var in chain] == [name for name, _ in STAGES], (
        "deploy/airflow/socialrec_dag.py is out of step with socialrec.pipelines.all.STAGES"
    )
    for task_id, job in tasks.values():
        assert (REPO / "jobs" / f"{job}.py").is_file(), f"task {task_id}: jobs/{job}.py does not exist"
    source = DAG_FILE.read_text(encoding="utf-8")
    assert "SparkSubmitOperator(" in source and '"--env", "cluster"' in source
