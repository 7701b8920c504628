"""The features benchmark's DuckDB SQL rounds like Spark (real Spark, real DuckDB): its parity check compares them."""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bench.features import duckdb_round_half_up

# Shares a user's category counts can make: 7/160 = 0.04375 is 0.043749999... in binary (DuckDB's round says
# 0.0437, Spark's 0.0438); 53/160 and 3/20000 likewise; 1/8 is exact.
FRACTIONS = [(7, 160), (53, 160), (3, 20000), (2469, 20000), (1, 80000), (49, 400), (1, 8), (1, 3), (2, 3), (5, 5)]


def test_duckdb_rounds_shares_half_up_like_spark(spark: SparkSession) -> None:
    import duckdb

    df = spark.createDataFrame(FRACTIONS, "n long, m long")
    ours = [r["share"] for r in df.select(F.round(F.col("n") / F.col("m"), 4).alias("share")).collect()]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, n BIGINT, m BIGINT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, n, m) for i, (n, m) in enumerate(FRACTIONS)])
    theirs = [r[0] for r in con.execute(f"SELECT {duckdb_round_half_up('n / m', 4)} FROM t ORDER BY i").fetchall()]
    binary = [r[0] for r in con.execute("SELECT round(n / m, 4) FROM t ORDER BY i").fetchall()]
    assert theirs == ours
    assert ours[:3] == [0.0438, 0.3313, 0.0002] and binary[:3] == [0.0437, 0.3312, 0.0001]  # why the helper exists
