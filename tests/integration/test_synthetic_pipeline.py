"""The synthetic platform end to end: the quarantine equals the planted dirt exactly, reruns are no-ops,
a forced re-clean converges, forgetting a user leaves no trace in any file, and rebuilding one source's examples
keeps another source's."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from socialrec.config import SyntheticConfig
from socialrec.lake import Lake
from socialrec.pipelines import clean, examples, ingest
from socialrec.pipelines.forget import forget_user, pseudonym_of, scan_lake
from socialrec.schema import columns as C
from socialrec.schema.tables import (
    BRONZE_BY_STREAM,
    GOLD_EXAMPLES,
    SILVER_AUDIT,
    SILVER_BY_STREAM,
    SILVER_ITEMS,
    SILVER_QUARANTINE,
    SILVER_USERS,
    all_tables,
)
from socialrec.synth import generate_platform
from tests.conftest import lake_cfg

pytestmark = pytest.mark.slow

SMALL = SyntheticConfig(users=300, items=200, events=6000, dirt_rate=0.02, batches=2, seed=7)
SOURCE = "synthetic"


@pytest.fixture(scope="module")
def platform(spark, cfg, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("synthetic")
    feed = root / "feed"
    report = generate_platform(feed, SMALL, platform_launch=cfg.clean.platform_launch, max_text_chars=cfg.clean.max_text_chars)
    c = lake_cfg(cfg, root, dataset="synthetic", path=str(feed), synthetic=SMALL)
    ingest.run(spark, c)
    audits = clean.run(spark, c)
    return {"cfg": c, "feed": feed, "report": report, "audits": audits, "lake": Lake(spark, c)}


def manifest(feed: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (feed / "_manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def expected_hash(entry: dict[str, Any], key: bytes) -> str:
    parts = [SOURCE, entry["batch"], entry["raw"]]
    if entry["stream"] == "events":
        try:
            row = json.loads(entry["raw"])
            value = row.get("event_type") if isinstance(row, dict) else None
        except ValueError:
            value = None
        parts.append("" if value is None else value if isinstance(value, str) else json.dumps(value))
    return hmac.new(key, "\u001f".join(parts).encode(), hashlib.sha256).hexdigest()


def test_quarantine_matches_the_planted_dirt_exactly(platform) -> None:  # type: ignore[no-untyped-def]
    key = os.environ["SOCIALREC_PSEUDONYM_KEY"].encode()
    entries = manifest(platform["feed"])
    want = {
        (SILVER_BY_STREAM[e["stream"]].qualified_name, expected_hash(e, key), tuple(e["reasons"]))
        for e in entries
        if e["outcome"] == "quarantined"
    }
    rows = platform["lake"].read(SILVER_QUARANTINE).where(F.col(C.SOURCE) == SOURCE).collect()
    got = {(r[C.TABLE], r[C.RECORD_HASH], tuple(r[C.REASONS])) for r in rows}
    assert len(want) > 20
    assert got == want
    # Every dirt kind the generator plants was met.
    assert {e["kind"] for e in entries} >= {"malformed_json", "key_conflict", "unknown_user", "mojibake"}


def test_duplicates_and_audit_add_up(platform) -> None:  # type: ignore[no-untyped-def]
    planted = Counter(SILVER_BY_STREAM[e["stream"]].qualified_name for e in manifest(platform["feed"]) if e["outcome"] == "duplicate")
    audit = platform["lake"].read(SILVER_AUDIT).where(F.col(C.SOURCE) == SOURCE).collect()
    dupes: Counter[str] = Counter()
    for r in audit:
        assert r[C.INPUT_ROWS] == r[C.KEPT_ROWS] + r[C.DUPLICATE_ROWS] + r[C.QUARANTINED_ROWS]
        dupes[r[C.TABLE]] += r[C.DUPLICATE_ROWS]
    assert +dupes == +planted
    written = platform["report"].rows
    for r in audit:
        stream = next(s for s, spec in SILVER_BY_STREAM.items() if spec.qualified_name == r[C.TABLE])
        assert r[C.INPUT_ROWS] == written[r[C.BATCH_ID]][stream]


def test_fixed_text_has_the_expected_clean_values(platform) -> None:  # type: ignore[no-untyped-def]
    lake: Lake = platform["lake"]
    key = os.environ["SOCIALREC_PSEUDONYM_KEY"].encode()
    fixed = [e for e in manifest(platform["feed"]) if e["outcome"] == "fixed"]
    assert fixed
    items = {r[C.ITEM_ID]: r for r in lake.read(SILVER_ITEMS).collect()}
    users = {r[C.USER_ID]: r for r in lake.read(SILVER_USERS).collect()}
    for e in fixed:
        row = json.loads(e["raw"])
        if e["stream"] == "items":
            silver = items[f"{SOURCE}:{row['item_id']}"]
            for field, value in e["expected"].items():
                assert silver[field] == value, (e["kind"], field)
        else:
            attributes = json.loads(users[pseudonym_of(row["user_id"], SOURCE, key)][C.ATTRIBUTES])
            for field, value in e["expected"].items():
                assert attributes[field] == value, (e["kind"], field)


def snapshot(lake: Lake) -> dict[str, DataFrame]:
    return {s.qualified_name: lake.read(s).drop(C.QUARANTINED_AT, C.AUDITED_AT) for s in (*SILVER_BY_STREAM.values(), SILVER_QUARANTINE, SILVER_AUDIT)}


def same_rows(a: DataFrame, b: DataFrame) -> bool:
    return a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0


def test_rerun_is_a_noop_and_forced_reclean_converges(spark, platform) -> None:  # type: ignore[no-untyped-def]
    lake: Lake = platform["lake"]
    c = platform["cfg"]
    versions = {s.qualified_name: lake.version(s) for s in all_tables() if lake.exists(s)}
    assert ingest.run(spark, c).ingested == {}
    assert clean.run(spark, c) == []
    assert {s.qualified_name: lake.version(s) for s in all_tables() if lake.exists(s)} == versions
    before = {k: v.localCheckpoint() for k, v in snapshot(lake).items()}
    clean.run(spark, c, force_batches=["b0001", "b0002"])
    after = snapshot(lake)
    for name, df in before.items():
        assert same_rows(df, after[name]), name


def test_forget_user_leaves_no_trace(spark, platform) -> None:  # type: ignore[no-untyped-def]
    lake: Lake = platform["lake"]
    c = platform["cfg"]
    key = os.environ["SOCIALREC_PSEUDONYM_KEY"].encode()
    # The most active follower: present in users, events, edges (both ends) and reviews.
    events = lake.read(BRONZE_BY_STREAM["events"]).groupBy(C.USER_ID).count()
    edges = lake.read(BRONZE_BY_STREAM["social_edges"]).select(F.col(C.DST_USER_ID).alias(C.USER_ID)).distinct()
    raw_id = events.join(edges, C.USER_ID).orderBy(F.desc("count"), C.USER_ID).first()[C.USER_ID]
    pseudonym = pseudonym_of(raw_id, SOURCE, key)
    assert scan_lake(spark, lake.root, [raw_id, pseudonym])  # the id is there before
    report = forget_user(spark, c, raw_id, SOURCE)
    assert report.remaining == []
    assert report.tables["silver.events"] and report.tables["bronze.events"] and report.tables["silver.social_edges"]
    # Independently of the job's own scan: no string in any Parquet file or commit log holds either id.
    hits = []
    for dirpath, _d, files in os.walk(lake.root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink() and not p.exists():
                continue
            if name.endswith(".parquet"):
                # DuckDB's own Parquet reader: independent of Spark and of the Arrow schema delta-rs embeds.
                blob = json.dumps(duckdb.sql(f"SELECT * FROM read_parquet('{p}')").fetchall(), default=str)
            else:
                blob = p.read_bytes().decode("utf-8", "replace")
            if raw_id in blob or pseudonym in blob:
                hits.append(str(p))
    assert hits == []
    assert lake.read(SILVER_USERS).where(F.col(C.USER_ID) == pseudonym).count() == 0



def test_rebuilding_examples_keeps_other_sources_rows(spark, platform) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    lake: Lake = platform["lake"]
    c = platform["cfg"]
    first = examples.run(spark, c)
    mine = lake.read(GOLD_EXAMPLES).where(F.col(C.SOURCE) == SOURCE).localCheckpoint()
    assert mine.count() == first["train"] + first["validation"] + first["test"] > 0
    # Another dataset's examples in the same lake (gold.examples is partitioned by split, not by source).
    other = spark.createDataFrame([("train", "u-other", 0, "i-other", 0, "e-other", "rating", datetime(2020, 1, 1),
                                    [1, 2], [3], "other-dataset")], GOLD_EXAMPLES.schema)
    lake.append(other, GOLD_EXAMPLES)
    again = examples.run(spark, c)
    assert again == first
    after = lake.read(GOLD_EXAMPLES)
    assert same_rows(after.where(F.col(C.SOURCE) == "other-dataset"), other)
    assert same_rows(after.where(F.col(C.SOURCE) == SOURCE), mine)
