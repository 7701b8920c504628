"""Whole-pipeline accounting on every shared dataset that is present (skips with a message otherwise).

``make test`` runs it on the first ``SAMPLE_LINES`` lines of each file (every adapter, every rule, on real rows, in
a few seconds each); ``make test-full`` (``SOCIALREC_TEST_FULL=1``) on the whole files, where the figures that
only hold for a whole file (SOURCE.md's counts) are checked too.

The expected outcomes are computed here, independently, in plain Python from the raw files: every line is a
row; a repeated line is a duplicate; an invalid distinct line is quarantined; among valid lines with the same
key, each further identical content is a duplicate and each further different content a key conflict.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F

from socialrec.lake import Lake
from socialrec.pipelines import clean, ingest
from socialrec.schema.tables import SILVER_AUDIT, SILVER_QUARANTINE, SILVER_USERS
from tests.conftest import lake_cfg, shared_dataset

pytestmark = pytest.mark.slow

FULL = os.environ.get("SOCIALREC_TEST_FULL", "") not in ("", "0")
SAMPLE_LINES = 10_000

Row = tuple[str, tuple[Any, ...], tuple[Any, ...], bool]  # raw line, key, content, valid


def expected_outcomes(rows: Iterable[Row]) -> dict[str, int]:
    seen_lines: set[str] = set()
    duplicates = quarantined = 0
    contents: dict[tuple[Any, ...], set[tuple[Any, ...]]] = {}
    for line, key, content, valid in rows:
        if line in seen_lines:
            duplicates += 1
            continue
        seen_lines.add(line)
        if not valid:
            quarantined += 1
            continue
        versions = contents.setdefault(key, set())
        if content in versions:
            duplicates += 1
        versions.add(content)
    conflicts = sum(len(v) - 1 for v in contents.values())
    return {"kept": len(contents), "duplicates": duplicates, "quarantined": quarantined + conflicts}


def lines(path: Path, *, header: bool = False, encoding: str = "utf-8") -> list[str]:
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding=encoding, newline="") as fh:
        out = [ln.rstrip("\n").rstrip("\r") for ln in fh]
    return out[1:] if header else out


def dataset_files(folder: str, tmp_path: Path) -> Path:
    """The shared dataset's folder (``FULL``), or a copy whose text files keep only their first ``SAMPLE_LINES``
    lines, byte for byte (compressed and binary files are copied whole: the ones here are small)."""
    source = shared_dataset(folder)
    if FULL:
        return source
    sample = tmp_path / "sample" / folder
    for path in source.rglob("*"):
        target = sample / path.relative_to(source)
        if path.is_dir():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".gz", ".zip", ".mat"):
            shutil.copyfile(path, target)
            continue
        with open(path, "rb") as src, open(target, "wb") as dst:
            for i, line in enumerate(src):
                if i == SAMPLE_LINES:
                    break
                dst.write(line)
    return sample


def run_pipeline(spark, cfg, tmp_path: Path, dataset: str, d: Path) -> dict[tuple[str, str], dict[str, int]]:  # type: ignore[no-untyped-def]
    c = lake_cfg(cfg, tmp_path, dataset=dataset, path=str(d))
    ingest.run(spark, c)
    clean.run(spark, c)
    lake = Lake(spark, c)
    audit = lake.read(SILVER_AUDIT).groupBy("table_name", "batch_id").agg(
        F.sum("input_rows").alias("input"), F.sum("kept_rows").alias("kept"),
        F.sum("duplicate_rows").alias("duplicates"), F.sum("quarantined_rows").alias("quarantined"),
    )
    out = {}
    for r in audit.collect():
        counts = r.asDict()
        assert counts["input"] == counts["kept"] + counts["duplicates"] + counts["quarantined"]
        out[(r["table_name"], r["batch_id"])] = {k: counts[k] for k in ("input", "kept", "duplicates", "quarantined")}
    # Every quarantined row is in the quarantine table, with at least one reason.
    q = lake.read(SILVER_QUARANTINE).groupBy("table_name").count().collect()
    for r in q:
        assert r["count"] == sum(v["quarantined"] for (t, _b), v in out.items() if t == r["table_name"])
    assert lake.read(SILVER_QUARANTINE).where(F.size("reasons") == 0).count() == 0
    return out


def with_input(expected: dict[str, int], n: int) -> dict[str, int]:
    return {"input": n, **expected}


def test_filmtrust(spark, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = dataset_files("filmtrust", tmp_path)
    got = run_pipeline(spark, cfg, tmp_path, "filmtrust", d)
    ratings = [(ln, *ln.split(" ")) for ln in lines(d / "ratings.txt")]
    ev = [(ln, (u, i), (u, i, float(r)), 0.5 <= float(r) <= 4.0) for ln, u, i, r in ratings]
    assert got[("silver.events", "full")] == with_input(expected_outcomes(ev), len(ratings))
    trust = [(ln, *ln.split(" ")) for ln in lines(d / "trust.txt")]
    ed = [(ln, (a, b), (a, b, float(v)), a != b) for ln, a, b, v in trust]
    assert got[("silver.social_edges", "full")] == with_input(expected_outcomes(ed), len(trust))


def test_ciaodvd(spark, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = dataset_files("ciaodvd", tmp_path)
    got = run_pipeline(spark, cfg, tmp_path, "ciaodvd", d)
    rows = [(ln, *ln.split(",")) for ln in lines(d / "movie-ratings.txt")]
    ev = [(ln, (u, m), (u, m, int(r), dt), 1 <= int(r) <= 5) for ln, u, m, _g, _rid, r, dt in rows]
    assert got[("silver.events", "full")] == with_input(expected_outcomes(ev), len(rows))
    rv = [(ln, (rid,), (rid, u, m, int(r), dt), 1 <= int(r) <= 5) for ln, u, m, _g, rid, r, dt in rows]
    assert got[("silver.reviews", "full")] == with_input(expected_outcomes(rv), len(rows))
    # SOURCE.md: 320 rows repeat an earlier (user, movie) pair; each is a duplicate or a key conflict.
    repeats = len(rows) - len({(u, m) for _ln, u, m, *_ in rows})
    e = got[("silver.events", "full")]
    assert e["duplicates"] + e["quarantined"] == repeats


def test_ciao(spark, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = dataset_files("ciao", tmp_path)
    got = run_pipeline(spark, cfg, tmp_path, "ciao", d)
    rows = [(ln, *ln.split("\t")) for ln in lines(d / "rating_with_timestamp.tsv")]
    ev = [(ln, (u, p), (u, p, int(r), t), 1 <= int(r) <= 5) for ln, u, p, _c, r, _h, t in rows]
    assert got[("silver.events", "full")] == with_input(expected_outcomes(ev), len(rows))
    rv = [(ln, (u, p), (u, p, int(r), int(h), t), 1 <= int(r) <= 5) for ln, u, p, _c, r, h, t in rows]
    assert got[("silver.reviews", "full")] == with_input(expected_outcomes(rv), len(rows))
    trust = [(ln, *ln.split("\t")) for ln in lines(d / "trustnetwork.tsv")]
    ed = [(ln, (a, b), (a, b), a != b) for ln, a, b in trust]
    assert got[("silver.social_edges", "full")] == with_input(expected_outcomes(ed), len(trust))
    # The exact duplicate lines (SOURCE.md: 190 in the whole file) are among the duplicates; every user is derived.
    exact = len(rows) - len({ln for ln, *_ in rows})
    assert got[("silver.events", "full")]["duplicates"] >= exact
    assert exact == 190 or not FULL
    c = lake_cfg(cfg, tmp_path, dataset="ciao")
    users = {u for _ln, u, *_ in rows} | {a for _ln, a, _b in trust} | {b for _ln, _a, b in trust}
    assert Lake(spark, c).read(SILVER_USERS).count() == len(users)


def test_lastfm(spark, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = dataset_files("lastfm-hetrec2011", tmp_path)
    got = run_pipeline(spark, cfg, tmp_path, "lastfm", d)
    plays = [(ln, *ln.split("\t")) for ln in lines(d / "user_artists.dat", header=True)]
    ev = [(ln, (u, a), (u, a, float(w)), True) for ln, u, a, w in plays]
    assert got[("silver.events", "full")] == with_input(expected_outcomes(ev), len(plays))
    friends = [(ln, *ln.split("\t")) for ln in lines(d / "user_friends.dat", header=True)]
    # An undirected friendship listed in both directions is one edge plus one duplicate.
    ed = [(ln, tuple(sorted((a, b))), tuple(sorted((a, b))), a != b) for ln, a, b in friends]
    assert got[("silver.social_edges", "full")] == with_input(expected_outcomes(ed), len(friends))
    if FULL:  # every friendship is listed both ways in the whole file (a sample cuts some pairs in half)
        assert got[("silver.social_edges", "full")]["duplicates"] == len(friends) // 2


def test_amazon(spark, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = dataset_files("amazon-reviews-2018-small", tmp_path)
    got = run_pipeline(spark, cfg, tmp_path, "amazon", d)
    for batch in ("Gift_Cards", "Magazine_Subscriptions"):
        reviews = lines(d / f"{batch}_5.json.gz")
        parsed = [json.loads(ln) for ln in reviews]
        r = got[("silver.reviews", batch)]
        assert r["input"] == len(reviews)
        assert r["kept"] == len({(p["reviewerID"], p["asin"]) for p in parsed})
        assert r["duplicates"] >= len(reviews) - len(set(reviews))
        meta = lines(d / f"meta_{batch}.json.gz")
        i = got[("silver.items", batch)]
        assert i["input"] == len(meta)
        # Magazine metadata repeats 1,065 lines exactly (SOURCE.md): all found.
        assert i["duplicates"] >= len(meta) - len(set(meta))
        assert batch != "Magazine_Subscriptions" or len(meta) - len(set(meta)) == 1065
        # Each asin is kept once, unless every one of its rows was rejected (e.g. a junk price).
        asins = len({json.loads(m)["asin"] for m in meta})
        assert asins - i["quarantined"] <= i["kept"] <= asins
