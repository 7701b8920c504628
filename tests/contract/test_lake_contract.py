"""One contract suite for the lake, run against every engine and write path.

delta-spark cases run where its JVM classes load and skip with the reason elsewhere.
"""
from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampType
from pyspark.testing import assertDataFrameEqual

from socialrec.errors import EngineUnavailableError, LakeConflictError, LakeError, SchemaMismatchError
from socialrec.lake import Lake, Txn, sql_in
from socialrec.lake.delta_rs import DeltaRsEngine
from socialrec.schema.tables import TableSpec
from socialrec.spark import delta_spark_loadable

DELTA_SPARK_SKIP = (
    "delta-spark engine: io.delta.sql.DeltaSparkSessionExtension is not loadable in this JVM "
    "(the Delta jars were not resolved: Maven Central was unreachable at `make setup`)"
)

EVENTS = TableSpec(
    name="contract_events",
    layer="gold",
    schema=StructType(
        [
            StructField("event_id", StringType(), False),
            StructField("user_id", StringType(), False),
            StructField("value", DoubleType()),
            StructField("ts", TimestampType()),
        ]
    ),
    keys=("event_id",),
    pii={"user_id": "pseudonym"},
    description="contract-test table",
)
BATCHED = TableSpec(
    name="contract_batched",
    layer="gold",
    schema=StructType(
        [
            StructField("k", StringType(), False),
            StructField("n", LongType()),
            StructField("batch_id", StringType(), False),
        ]
    ),
    keys=("k",),
    partition_by=("batch_id",),
    description="contract-test partitioned table",
)
T0 = dt.datetime(2024, 1, 1, 12, 0, 0)


@pytest.fixture(params=["delta-rs/arrow", "delta-rs/staged", "delta-spark"])
def lake(request, spark, fresh_cfg) -> Lake:  # type: ignore[no-untyped-def]
    engine_name, _, path = request.param.partition("/")
    if engine_name == "delta-spark":
        if not delta_spark_loadable(spark):
            pytest.skip(DELTA_SPARK_SKIP)
        from socialrec.lake.delta_spark import DeltaSparkEngine

        return Lake(spark, fresh_cfg, DeltaSparkEngine(spark))
    return Lake(spark, fresh_cfg, DeltaRsEngine(spark, write_path=path))  # type: ignore[arg-type]


def events(spark, rows):  # type: ignore[no-untyped-def]
    return spark.createDataFrame(rows, EVENTS.schema)


def test_ensure_creates_empty_table_from_contract(lake: Lake) -> None:
    assert not lake.exists(EVENTS)
    lake.ensure(EVENTS)
    lake.ensure(EVENTS)  # idempotent
    assert lake.exists(EVENTS)
    assert lake.version(EVENTS) == 0
    assertDataFrameEqual(lake.read(EVENTS), lake.spark.createDataFrame([], EVENTS.schema))
    assert [f.name for f in lake.read(EVENTS).schema] == EVENTS.column_names


def test_append_then_read_back(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    rows = [("e1", "u1", 1.0, T0), ("e2", "u2", None, T0)]
    commit = lake.append(events(spark, rows), EVENTS)
    assert commit.committed and commit.version == 1
    assertDataFrameEqual(lake.read(EVENTS), events(spark, rows))


def test_write_with_wrong_schema_lists_every_difference(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    bad = spark.createDataFrame([("e1", 1, "x")], "event_id string, user_id bigint, extra string")
    with pytest.raises(SchemaMismatchError) as err:
        lake.append(bad, EVENTS)
    assert err.value.differences == [
        "column 'user_id' is bigint, contract says string",
        "missing column 'value' (double)",
        "missing column 'ts' (timestamp)",
        "unexpected column 'extra' (string)",
    ]
    assert lake.version(EVENTS) == 0  # nothing was committed


def test_same_batch_txn_twice_changes_nothing(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    df = events(spark, [("e1", "u1", 1.0, T0)])
    first = lake.append(df, EVENTS, txn=Txn("ingest/events", 1))
    again = lake.append(df, EVENTS, txn=Txn("ingest/events", 1))
    assert first.committed and not again.committed
    assert again.version == first.version
    merged_again = lake.merge(df, EVENTS, txn=Txn("ingest/events", 1))
    assert not merged_again.committed
    nxt = lake.append(events(spark, [("e2", "u2", 2.0, T0)]), EVENTS, txn=Txn("ingest/events", 2))
    assert nxt.committed
    assertDataFrameEqual(lake.read(EVENTS), events(spark, [("e1", "u1", 1.0, T0), ("e2", "u2", 2.0, T0)]))


def test_overwrite_whole_table(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    lake.append(events(spark, [("e1", "u1", 1.0, T0)]), EVENTS)
    lake.overwrite(events(spark, [("e9", "u9", 9.0, T0)]), EVENTS)
    assertDataFrameEqual(lake.read(EVENTS), events(spark, [("e9", "u9", 9.0, T0)]))


def test_overwrite_only_matching_partitions(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(BATCHED)
    first = spark.createDataFrame([("a", 1, "b1"), ("b", 2, "b2"), ("c", 3, "b3")], BATCHED.schema)
    lake.append(first, BATCHED)
    replacement = spark.createDataFrame([("a2", 10, "b1"), ("b2", 20, "b2")], BATCHED.schema)
    lake.overwrite(replacement, BATCHED, partitions={"batch_id": ["b1", "b2"]})
    expected = spark.createDataFrame([("a2", 10, "b1"), ("b2", 20, "b2"), ("c", 3, "b3")], BATCHED.schema)
    assertDataFrameEqual(lake.read(BATCHED), expected)


def test_overwrite_filter_must_name_partition_columns(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    if lake.engine_name == "delta-spark":
        pytest.skip("delta-spark's replaceWhere accepts any predicate")
    lake.ensure(BATCHED)
    df = spark.createDataFrame([("a", 1, "b1")], BATCHED.schema)
    with pytest.raises(LakeError, match="not partition columns"):
        lake.overwrite(df, BATCHED, partitions={"k": "a"})


def test_merge_upserts_on_contract_keys(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    lake.append(events(spark, [("e1", "u1", 1.0, T0), ("e2", "u2", 2.0, T0)]), EVENTS)
    lake.merge(events(spark, [("e2", "u2", 5.0, T0), ("e3", "u3", 3.0, T0)]), EVENTS)
    expected = [("e1", "u1", 1.0, T0), ("e2", "u2", 5.0, T0), ("e3", "u3", 3.0, T0)]
    assertDataFrameEqual(lake.read(EVENTS), events(spark, expected))


def test_merge_insert_only_keeps_existing_rows(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    lake.append(events(spark, [("e1", "u1", 1.0, T0)]), EVENTS)
    lake.merge(events(spark, [("e1", "u1", 7.0, T0), ("e4", "u4", 4.0, T0)]), EVENTS, update=False)
    assertDataFrameEqual(lake.read(EVENTS), events(spark, [("e1", "u1", 1.0, T0), ("e4", "u4", 4.0, T0)]))


def test_delete_by_predicate_and_time_travel(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    rows = [("e1", "u1", 1.0, T0), ("e2", "u2", 2.0, T0), ("e3", "u1", 3.0, T0)]
    lake.append(events(spark, rows), EVENTS)
    commit = lake.delete(EVENTS, sql_in("user_id", ["u1"]))
    assert commit.committed and commit.version == 2
    assertDataFrameEqual(lake.read(EVENTS), events(spark, [("e2", "u2", 2.0, T0)]))
    assertDataFrameEqual(lake.read(EVENTS, version=1), events(spark, rows))
    assertDataFrameEqual(lake.read(EVENTS, version=0), spark.createDataFrame([], EVENTS.schema))
    ops = [h["operation"] for h in lake.history(EVENTS)]
    assert ops[0] == "DELETE" and ops[-1] == "CREATE TABLE" and len(ops) == 3


def _data_files(root: str) -> list[Path]:
    return [p for p in Path(root).rglob("*.parquet") if "_delta_log" not in p.parts]


def test_vacuum_removes_deleted_rows_from_every_data_file(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    lake.append(events(spark, [("e1", "forget-me-7f3a", 1.0, T0), ("e2", "u2", 2.0, T0)]), EVENTS)
    assert lake.delete_matching(EVENTS, "user_id", ["forget-me-7f3a"]).committed
    assert any(b"forget-me-7f3a" in p.read_bytes() for p in _data_files(lake.location(EVENTS)))
    removed = lake.vacuum(EVENTS, retention_hours=0)
    assert removed
    assert not any(b"forget-me-7f3a" in p.read_bytes() for p in _data_files(lake.location(EVENTS)))
    # The transaction log carries no min/max stats of personal columns either.
    log = Path(lake.location(EVENTS)) / "_delta_log"
    assert not any(b"forget-me-7f3a" in p.read_bytes() for p in log.iterdir() if p.is_file())
    assertDataFrameEqual(lake.read(EVENTS), events(spark, [("e2", "u2", 2.0, T0)]))


def test_delete_matching_tokens_in_json_records_leaves_longer_ids_alone(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    rows = [
        ("e1", '{"user":"raw-42"}', 1.0, T0),      # the id, quoted: deleted
        ("e2", '{"user":"raw-7"}', 2.0, T0),
        ("e3", "raw-42,i1,view", 3.0, T0),         # the id in a CSV line: deleted
        ("e4", '{"user":"raw-421"}', 4.0, T0),     # a longer id that starts with it: kept
        ("e5", '{"user":"xraw-42"}', 5.0, T0),     # ... or ends with it: kept
        ("e6", "a(b)raw-42", 6.0, T0),             # regex metacharacters around a token: deleted
    ]
    lake.append(events(spark, rows), EVENTS)
    commit = lake.delete_matching(EVENTS, "user_id", ["raw-42"], how="token")
    assert commit.committed
    assertDataFrameEqual(lake.read(EVENTS), events(spark, [rows[1], rows[3], rows[4]]))
    # metacharacters in the id itself are literal, not a pattern
    lake.append(events(spark, [("e7", '{"user":"a.b(c)"}', 7.0, T0), ("e8", '{"user":"aXb(c)"}', 8.0, T0)]), EVENTS)
    assert lake.delete_matching(EVENTS, "user_id", ["a.b(c)"], how="token").committed
    assert sorted(r["event_id"] for r in lake.read(EVENTS).collect()) == ["e2", "e4", "e5", "e8"]
    assert not lake.delete_matching(EVENTS, "user_id", ["nobody"]).committed


def test_time_travel_to_a_vacuumed_version_says_so(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    if lake.engine_name == "delta-spark":
        pytest.skip("delta-spark raises its own FileNotFound-style error")
    lake.ensure(EVENTS)
    lake.append(events(spark, [("e1", "u1", 1.0, T0)]), EVENTS)
    lake.overwrite(events(spark, [("e2", "u2", 1.0, T0)]), EVENTS)
    lake.vacuum(EVENTS, retention_hours=0)
    with pytest.raises(LakeError, match="vacuum"):
        lake.read(EVENTS, version=1)


def test_concurrent_appends_never_lose_a_write(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            lake.append(events(spark, [(f"e{i}", f"u{i}", float(i), T0)]), EVENTS)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected = [(f"e{i}", f"u{i}", float(i), T0) for i in range(4)]
    assertDataFrameEqual(lake.read(EVENTS), events(spark, expected))


def test_concurrent_merges_both_commit_or_one_fails_clearly(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    lake.append(events(spark, [("e0", "u0", 0.0, T0)]), EVENTS)
    outcome: dict[int, BaseException | None] = {}
    barrier = threading.Barrier(2)

    def upsert(i: int) -> None:
        barrier.wait()
        try:
            lake.merge(events(spark, [("e0", "u0", float(i), T0), (f"n{i}", f"u{i}", float(i), T0)]), EVENTS)
            outcome[i] = None
        except BaseException as exc:  # noqa: BLE001
            outcome[i] = exc

    threads = [threading.Thread(target=upsert, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = {r["event_id"]: r["value"] for r in lake.read(EVENTS).collect()}
    for i, exc in outcome.items():
        if exc is None:
            assert f"n{i}" in rows, f"writer {i} reported success but its row is missing (lost write)"
        else:
            assert isinstance(exc, LakeConflictError), exc
            assert f"n{i}" not in rows
    assert any(exc is None for exc in outcome.values())
    assert rows["e0"] in (1.0, 2.0)


def test_tables_are_queryable_by_layer_and_name(lake: Lake, spark) -> None:  # type: ignore[no-untyped-def]
    lake.ensure(EVENTS)
    lake.ensure(BATCHED)
    lake.append(events(spark, [("e1", "u1", 1.0, T0), ("e2", "u1", 2.0, T0)]), EVENTS)
    lake.append(spark.createDataFrame([("a", 1, "b1"), ("b", 2, "b2")], BATCHED.schema), BATCHED)
    assert set(lake.register_sql([EVENTS, BATCHED])) == {"gold.contract_events", "gold.contract_batched"}
    got = spark.sql("SELECT user_id, SUM(value) AS total FROM gold.contract_events GROUP BY user_id")
    assertDataFrameEqual(got, [Row(user_id="u1", total=3.0)])
    assertDataFrameEqual(spark.sql("SELECT k FROM gold.contract_batched WHERE batch_id = 'b2'"), [Row(k="b")])
    # A later commit is visible after re-registering (a new snapshot).
    lake.delete(EVENTS, "event_id = 'e2'")
    lake.register_sql([EVENTS])
    assertDataFrameEqual(spark.sql("SELECT event_id FROM gold.contract_events"), [Row(event_id="e1")])


def test_explicit_delta_spark_without_jars_fails_clearly(spark, fresh_cfg) -> None:  # type: ignore[no-untyped-def]
    if delta_spark_loadable(spark):
        pytest.skip("the Delta jars are loadable here")
    cfg = fresh_cfg.model_copy(update={"lake": fresh_cfg.lake.model_copy(update={"engine": "delta-spark"})})
    with pytest.raises(EngineUnavailableError, match="make setup"):
        Lake(spark, cfg)


def test_auto_write_path_uses_plan_size(spark) -> None:  # type: ignore[no-untyped-def]
    engine = DeltaRsEngine(spark, "auto", arrow_max_bytes=1 << 20)
    small = spark.range(0, 1000).selectExpr("cast(id as string) as event_id")
    assert engine.choose_write_path(small) == "arrow"
    # Unknown size (a Python RDD's plan has no statistics) is treated as large: never collect blindly.
    unknown = spark.sparkContext.parallelize([("e1",)]).toDF(["event_id"])
    assert engine.choose_write_path(unknown) == "staged"
    big = spark.range(0, 50_000_000).selectExpr("cast(id as string) as event_id")
    assert DeltaRsEngine(spark, "auto", arrow_max_bytes=1 << 20).choose_write_path(big) == "staged"
