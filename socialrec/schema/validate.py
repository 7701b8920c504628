"""Checks of DataFrames against contracts. Metadata only: nothing here runs a Spark action."""
from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import DataFrame
from pyspark.sql.types import ArrayType, DataType, MapType, StructType

from socialrec.errors import MissingColumnError, SchemaMismatchError
from socialrec.schema.tables import TableSpec


def require_columns(df: DataFrame, columns: Iterable[str], what: str = "DataFrame") -> None:
    """Raise :class:`MissingColumnError` listing missing and present columns."""
    present = df.columns
    missing = [c for c in columns if c not in present]
    if missing:
        raise MissingColumnError(missing, present, what)


def _type_string(dtype: DataType) -> str:
    """A type's shape without nullability (Spark marks most derived columns nullable)."""
    if isinstance(dtype, StructType):
        return "struct<" + ",".join(f"{f.name}:{_type_string(f.dataType)}" for f in dtype.fields) + ">"
    if isinstance(dtype, ArrayType):
        return f"array<{_type_string(dtype.elementType)}>"
    if isinstance(dtype, MapType):
        return f"map<{_type_string(dtype.keyType)},{_type_string(dtype.valueType)}>"
    return dtype.simpleString()


def schema_differences(actual: StructType, expected: StructType) -> list[str]:
    """Human-readable differences: missing columns, unexpected columns, type changes."""
    diffs: list[str] = []
    act = {f.name: f for f in actual.fields}
    exp = {f.name: f for f in expected.fields}
    for name, f in exp.items():
        if name not in act:
            diffs.append(f"missing column {name!r} ({_type_string(f.dataType)})")
        elif _type_string(act[name].dataType) != _type_string(f.dataType):
            diffs.append(
                f"column {name!r} is {_type_string(act[name].dataType)}, contract says {_type_string(f.dataType)}"
            )
    for name, f in act.items():
        if name not in exp:
            diffs.append(f"unexpected column {name!r} ({_type_string(f.dataType)})")
    return diffs


def conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Return ``df`` with the contract's column order, or raise :class:`SchemaMismatchError`."""
    diffs = schema_differences(df.schema, spec.schema)
    if diffs:
        raise SchemaMismatchError(spec.qualified_name, diffs)
    return df.select(*spec.column_names)
