"""Ingest: a batch lands with lineage; re-ingesting it replaces exactly that batch."""
from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.lake import Lake
from socialrec.pipelines import ingest
from socialrec.schema.tables import BRONZE_BATCHES, BRONZE_EVENTS, BRONZE_USERS
from tests.conftest import lake_cfg


def write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def test_reingesting_a_batch_replaces_it_and_leaves_other_batches(spark: SparkSession, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "feed"
    ev = '{{"event_id": "{0}", "user_id": "u1", "item_id": "i1", "event_type": "view", "ts": "2024-03-01"}}'
    write(feed / "b1" / "events.jsonl", [ev.format("e1"), ev.format("e2"), "not json"])
    write(feed / "b1" / "users.jsonl", ['{"user_id": "u1"}'])
    write(feed / "b2" / "events.jsonl", [ev.format("e3")])
    c = lake_cfg(cfg, tmp_path, dataset="feed", path=str(feed))
    first = ingest.run(spark, c)
    assert first.ingested == {"b1": {"users": 1, "events": 3}, "b2": {"events": 1}}
    lake = Lake(spark, c)
    raw = lake.read(BRONZE_EVENTS).where(F.col("_batch_id") == "b1").orderBy("_raw").collect()
    # "not json" sorts first; it is kept as it arrived, with the reason it could not be parsed
    assert [r["_parse_error"] is not None for r in raw] == [True, False, False]
    assert raw[0]["_raw"] == "not json" and raw[0]["event_id"] is None
    assert raw[1]["_raw"] == ev.format("e1") and raw[1]["_source"] == "platform" and raw[1]["event_id"] == "e1"

    # Without --force nothing is re-read; with it (or naming the batch) the batch is replaced.
    assert ingest.run(spark, c).skipped == ["b1", "b2"]
    write(feed / "b1" / "events.jsonl", [ev.format("e9")])
    (feed / "b1" / "users.jsonl").unlink()
    again = ingest.run(spark, c, batches=["b1"])
    assert again.ingested == {"b1": {"events": 1}}
    ids = sorted(r["event_id"] for r in lake.read(BRONZE_EVENTS).collect())
    assert ids == ["e3", "e9"]  # b1 replaced (its old rows gone), b2 untouched
    assert lake.read(BRONZE_USERS).count() == 0  # a stream the batch no longer has is emptied too
    marker = {r["batch_id"]: r["streams"] for r in lake.read(BRONZE_BATCHES).collect()}
    assert marker == {"b1": ["events"], "b2": ["events"]}
