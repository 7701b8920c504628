"""Driver-memory limits: estimates before driver-side work, Spark's result-size cap, clear messages."""
from __future__ import annotations

import pytest

from socialrec.pipelines.graph import stats_engine
from socialrec.resources import (
    ResourceLimitError,
    driver_budget_bytes,
    ensure_fits_on_driver,
    explain_failure,
    max_result_size,
    parse_size,
)


def with_spark(cfg, **changes):  # type: ignore[no-untyped-def]
    return cfg.model_copy(update={"spark": cfg.spark.model_copy(update=changes)})


@pytest.mark.parametrize(("text", "expected"), [
    ("4g", 4 << 30), ("512m", 512 << 20), ("1.5g", 3 << 29), ("2048", 2048), ("64k", 64 << 10), ("2GiB", 2 << 30),
])
def test_parse_size_reads_jvm_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="not a memory size: 'lots'"):
        parse_size("lots")


def test_the_session_caps_results_at_the_driver_budget(spark, cfg) -> None:  # type: ignore[no-untyped-def]
    # the test config's 2g driver, a quarter of it per driver-side step
    assert driver_budget_bytes(cfg) == parse_size(cfg.spark.driver_memory) // 4
    assert spark.sparkContext.getConf().get("spark.driver.maxResultSize") == max_result_size(cfg) == "512m"
    assert max_result_size(with_spark(cfg, max_result_size="3g")) == "3g"
    assert max_result_size(with_spark(cfg, driver_memory=None)) is None  # a cluster's driver: spark-submit sizes it


def test_work_over_the_budget_fails_before_it_starts_naming_the_settings(spark, cfg) -> None:  # type: ignore[no-untyped-def]
    ensure_fits_on_driver(spark, cfg, "a small step", rows=1000, bytes_per_row=100, hint="use less")
    with pytest.raises(ResourceLimitError) as err:
        ensure_fits_on_driver(spark, cfg, "evaluating x", rows=10_000_000, bytes_per_row=200, hint="sample users")
    msg = str(err.value)
    assert msg.startswith("evaluating x needs about 1.9 GiB on the driver (10,000,000 rows x ~200 B)")
    assert "budget of 512.0 MiB (spark.driver.memory=2g x spark.driver_collect_fraction=0.25)" in msg
    assert msg.endswith("Raise spark.driver_memory (spark-submit --driver-memory on a cluster) or sample users.")


def test_graph_stats_leave_the_driver_when_the_graph_does_not_fit(spark, cfg) -> None:  # type: ignore[no-untyped-def]
    assert stats_engine(spark, cfg, edges=1000, vertices=100) == "igraph"
    over_limit = cfg.graph.igraph_max_edges + 1
    assert stats_engine(spark, cfg, edges=over_limit, vertices=100) == "spark"
    tight = with_spark(cfg, driver_collect_fraction=1e-6)  # about 2 KiB for the edge list
    assert stats_engine(spark, tight, edges=1000, vertices=100) == "spark"


def test_jvm_failures_become_clear_errors_and_others_pass_through() -> None:
    refused = explain_failure(RuntimeError(
        "Job aborted due to stage failure: Total size of serialized results of 1 tasks (1030.0 KiB) is bigger than "
        "spark.driver.maxResultSize (1024.0 B)\n\tat org.apache.spark..."))
    assert isinstance(refused, ResourceLimitError)
    assert "(Total size of serialized results of 1 tasks (1030.0 KiB) is bigger than spark.driver.maxResultSize (1024.0 B))" in str(refused)
    oom = explain_failure(RuntimeError("An error occurred while calling o42.collect.\n: java.lang.OutOfMemoryError: Java heap space"))
    assert isinstance(oom, ResourceLimitError) and "Raise spark.driver_memory" in str(oom)
    assert explain_failure(ValueError("something else")) is None
