from __future__ import annotations

import pytest
from pyspark.sql.types import LongType, StringType, StructField, StructType

from socialrec.errors import SchemaMismatchError
from socialrec.schema import columns as C
from socialrec.schema.tables import TableSpec, all_tables, get_table
from socialrec.schema.validate import conform, schema_differences


def test_every_design_silver_contract_is_registered() -> None:
    names = {s.qualified_name for s in all_tables()}
    for t in ("users", "items", "events", "social_edges", "reviews", "quarantine", "audit"):
        assert f"silver.{t}" in names
    assert get_table("silver.events").keys == (C.EVENT_ID,)
    assert get_table("silver.social_edges").keys == (C.SRC_USER_ID, C.DST_USER_ID, C.RELATION)


def test_spec_rejects_keys_that_are_not_columns() -> None:
    with pytest.raises(ValueError, match="unknown columns"):
        TableSpec("x", "gold", StructType([StructField("a", StringType())]), ("b",), "bad")


def test_schema_differences_lists_every_difference() -> None:
    expected = StructType([StructField("a", StringType()), StructField("b", LongType())])
    actual = StructType([StructField("b", StringType()), StructField("c", LongType())])
    assert schema_differences(actual, expected) == [
        "missing column 'a' (string)",
        "column 'b' is string, contract says bigint",
        "unexpected column 'c' (bigint)",
    ]


def test_conform_reorders_and_rejects(spark) -> None:  # type: ignore[no-untyped-def]
    spec = TableSpec("t", "gold", StructType([StructField("a", StringType()), StructField("b", LongType())]), ("a",), "t")
    df = spark.createDataFrame([(1, "x")], "b bigint, a string")
    assert conform(df, spec).columns == ["a", "b"]
    with pytest.raises(SchemaMismatchError, match="missing column 'b'"):
        conform(df.drop("b"), spec)
