from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from socialrec.lake import Lake
from socialrec.pipelines import lake_init
from socialrec.pipelines import sql as sql_stage
from socialrec.schema.tables import SILVER_EVENTS


def test_sql_job_queries_tables_by_name_in_every_format(spark, fresh_cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lake_init.run(spark, fresh_cfg)
    lake = Lake(spark, fresh_cfg)
    ts = dt.datetime(2024, 5, 1)
    rows = [("e1", "u1", "i1", "view", 1.0, ts, "s", "b1"), ("e2", "u1", "i2", "purchase", 1.0, ts, "s", "b1")]
    lake.append(spark.createDataFrame(rows, SILVER_EVENTS.schema), SILVER_EVENTS)
    query = "SELECT event_type, count(*) AS n FROM silver.events GROUP BY event_type ORDER BY event_type"

    out = io.StringIO()
    sql_stage.run(spark, fresh_cfg, query, "csv", 100, out)
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["event_type", "n"], ["purchase", "1"], ["view", "1"]]

    out = io.StringIO()
    sql_stage.run(spark, fresh_cfg, query, "json", 1, out)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [{"event_type": "purchase", "n": 1}]

    qfile = tmp_path / "q.sql"
    qfile.write_text(query)
    out = io.StringIO()
    sql_stage.run(spark, fresh_cfg, f"@{qfile}", "table", 100, out)
    assert "purchase" in out.getvalue() and "view" in out.getvalue()


READS = ["SELECT 1", "WITH a AS (SELECT 1 AS x) SELECT x FROM a", "SHOW TABLES IN silver", "DESCRIBE silver.events",
         "EXPLAIN SELECT 1", "SHOW COLUMNS IN silver.events"]
WRITES = {
    "INSERT INTO silver.events SELECT * FROM silver.events": "InsertIntoStatement",
    "INSERT OVERWRITE DIRECTORY '/tmp/x' SELECT 1": "InsertIntoDir",
    "CREATE TABLE t AS SELECT 1": "CreateTableAsSelect",
    "DROP TABLE silver.events": "DropTable",
    "DELETE FROM silver.events WHERE 1 = 1": "DeleteFromTable",
    "MERGE INTO a USING b ON a.x = b.x WHEN MATCHED THEN DELETE": "MergeIntoTable",
    "UPDATE silver.events SET value = 0": "UpdateTable",
    "TRUNCATE TABLE silver.events": "TruncateTable",
    "ALTER TABLE silver.events ADD COLUMNS (b int)": "AddColumns",
    "SET spark.sql.shuffle.partitions=1": "SetCommand",
    "CACHE TABLE silver.events": "CacheTable",
    "CREATE TEMP VIEW v AS SELECT 1": "CreateViewCommand",
    "ADD JAR /tmp/x.jar": "AddJarsCommand",
}


def test_analyst_sql_is_read_only(spark) -> None:  # type: ignore[no-untyped-def]
    from socialrec.pipelines.sql import ReadOnlyQueryError, ensure_read_only

    for query in READS:
        ensure_read_only(spark, query)
    for query, kind in WRITES.items():
        with pytest.raises(ReadOnlyQueryError, match=f"read-only: .*{kind}"):
            ensure_read_only(spark, query)
