"""Helpers the graph modules share: timestamp literals and order-independent sums."""
from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import Column
from pyspark.sql import functions as F

# Exact decimal for sums whose result must not depend on the order Spark adds rows in (which changes
# with partitioning): decimal addition is exact, so the sum is the same whatever the order. 18 fractional
# digits keep every double strength in (1e-18, 1e20) to ~17 significant digits.
EXACT = "decimal(38,18)"


def utc(ts: datetime) -> datetime:
    """``ts`` as an aware UTC datetime; a naive one is read as UTC (the project's convention).

    PySpark turns a naive datetime literal into an instant with the Python process's local time zone, so
    aware values make literals independent of ``TZ``.
    """
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def ts_lit(ts: datetime) -> Column:
    """A timestamp literal for ``ts`` (naive = UTC)."""
    return F.lit(utc(ts)).cast("timestamp")


def exact_sum(col: Column) -> Column:
    """Sum of a double column that is the same for any row order (decimal arithmetic), as a double."""
    return F.sum(col.cast(EXACT)).cast("double")
