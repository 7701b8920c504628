"""The five public-dataset adapters: tiny inline fixtures compared whole, error messages, and (slow) the real
shared datasets checked against counts and values computed independently in plain Python from the files."""
from __future__ import annotations

import collections
import gzip
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from socialrec.ingest import adapter_for
from socialrec.ingest.base import SourceAdapter, SourceMissingError, bronze_columns
from socialrec.ingest.datasets import (
    DATASETS,
    FULL_BATCH,
    AmazonAdapter,
    CiaoAdapter,
    CiaoDvdAdapter,
    FilmTrustAdapter,
    LastFmAdapter,
)
from socialrec.schema import columns as C
from tests.conftest import shared_dataset

ADAPTER_LINEAGE = (C.B_RAW, C.B_SOURCE_FILE, C.B_PARSE_ERROR)


# ------------------------------------------------------------------------------------------- helpers


def _write(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.write_bytes(text.encode(encoding))


def _write_gz(path: Path, lines: Sequence[str]) -> None:
    with gzip.open(path, "wb") as fh:
        fh.write(("\n".join(lines) + "\n").encode("utf-8"))


def _expected(spark: SparkSession, stream: str, rows: Sequence[Mapping[str, str | None]]) -> DataFrame:
    """A bronze-shaped frame (all strings, adapter lineage) from dicts; absent keys are null."""
    names = [*bronze_columns(stream), *ADAPTER_LINEAGE]
    unknown = {k for r in rows for k in r} - set(names)
    assert not unknown, f"test bug: {unknown} are not {stream} columns"
    schema = StructType([StructField(n, StringType()) for n in names])
    return spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows], schema)


def _comparable(df: DataFrame) -> DataFrame:
    """``_source_file`` reduced to the file name, so the comparison does not depend on the URI form."""
    return df.withColumn(C.B_SOURCE_FILE, F.regexp_extract(F.col(C.B_SOURCE_FILE), r"([^/]+)$", 1))


def _assert_stream(actual: DataFrame, expected: DataFrame) -> None:
    assert actual.columns == expected.columns
    assertDataFrameEqual(_comparable(actual), expected)


def _read_full(spark: SparkSession, adapter: SourceAdapter, path: Path) -> dict[str, DataFrame]:
    assert adapter.batches(path) == [FULL_BATCH]
    return adapter.read_batch(spark, path, FULL_BATCH)


def _bad(n: int, sep: str, got: int) -> str:
    return f"expected {n} fields separated by {sep!r}, got {got}"


# ------------------------------------------------------------------------------------ registry, errors


def test_registry_names_classes_and_default_folders(cfg) -> None:  # type: ignore[no-untyped-def]
    assert {
        "ciao": (CiaoAdapter, "ciao"),
        "ciaodvd": (CiaoDvdAdapter, "ciaodvd"),
        "filmtrust": (FilmTrustAdapter, "filmtrust"),
        "lastfm": (LastFmAdapter, "lastfm-hetrec2011"),
        "amazon": (AmazonAdapter, "amazon-reviews-2018-small"),
    } == DATASETS
    for name, (cls, _folder) in DATASETS.items():
        adapter = adapter_for(name, cfg)
        assert type(adapter) is cls
        assert adapter.name == name
        assert adapter.profile.references == "derive"
        assert adapter.profile.derive_ids


def test_profiles_carry_scale_launch_and_snapshot() -> None:
    assert (FilmTrustAdapter.profile.rating_min, FilmTrustAdapter.profile.rating_max) == (0.5, 4.0)
    assert FilmTrustAdapter.profile.snapshot_ts == "2011-06-30T00:00:00Z"
    assert LastFmAdapter.profile.snapshot_ts == "2011-05-01T00:00:00Z"
    assert CiaoAdapter.profile.snapshot_ts is None
    assert {cls.profile.launch for cls, _ in DATASETS.values()} == {
        "1999-06-01",
        "2005-01-01",
        "2002-01-01",
        "1995-07-01",
    }


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_missing_folder_is_a_clear_error(name: str, tmp_path: Path) -> None:
    adapter = DATASETS[name][0]()
    with pytest.raises(SourceMissingError, match=rf"^{name}: input folder .*nowhere not found.*docs/sources\.md"):
        adapter.batches(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("cls", "files"),
    [
        (CiaoAdapter, ["rating_with_timestamp.tsv", "trustnetwork.tsv", "catalog_ciao.txt"]),
        (CiaoDvdAdapter, ["movie-ratings.txt", "trusts.txt"]),
        (FilmTrustAdapter, ["ratings.txt", "trust.txt"]),
        (
            LastFmAdapter,
            ["user_artists.dat", "user_friends.dat", "artists.dat", "tags.dat", "user_taggedartists.dat"],
        ),
    ],
)
def test_missing_file_is_named(cls: type[SourceAdapter], files: list[str], tmp_path: Path) -> None:
    adapter = cls()
    with pytest.raises(SourceMissingError, match=re.escape(f"lacks {', '.join(files)}")):
        adapter.batches(tmp_path)
    # With all but the last file present, exactly that one is named (also when reading directly).
    for f in files[:-1]:
        _write(tmp_path / f, "")
    with pytest.raises(SourceMissingError, match=rf"lacks {re.escape(files[-1])}; see docs/sources\.md"):
        adapter.batches(tmp_path)
    with pytest.raises(SourceMissingError, match=rf"lacks {re.escape(files[-1])}"):
        adapter.read_batch(None, tmp_path, FULL_BATCH)  # type: ignore[arg-type]  # fails before Spark is used


def test_amazon_batches_are_complete_category_pairs(tmp_path: Path) -> None:
    adapter = AmazonAdapter()
    with pytest.raises(SourceMissingError, match="holds no <Category>_5.json.gz"):
        adapter.batches(tmp_path)
    for name in ("Gift_Cards_5.json.gz", "meta_Gift_Cards.json.gz", "Magazine_Subscriptions_5.json.gz"):
        _write_gz(tmp_path / name, ["{}"])
    with pytest.raises(SourceMissingError, match=r"lacks meta_Magazine_Subscriptions\.json\.gz"):
        adapter.batches(tmp_path)
    _write_gz(tmp_path / "meta_Magazine_Subscriptions.json.gz", ["{}"])
    assert adapter.batches(tmp_path) == ["Gift_Cards", "Magazine_Subscriptions"]
    with pytest.raises(SourceMissingError, match=r"lacks Toys_5\.json\.gz, meta_Toys\.json\.gz"):
        adapter.read_batch(None, tmp_path, "Toys")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ inline fixtures: Ciao


def test_ciao_adapter(spark: SparkSession, tmp_path: Path) -> None:
    ratings = [
        "6119\t92579\t24\t5\t4\t959670000",
        "7186\t20816\t6\t0\t1\t959756400",  # rating 0 stays: the cleaner judges ranges
        "7186\t20817\t99\t3\t2\t959756400",  # category id without a catalogue name
        "7186\t9358\t1\t5",  # wrong field count
    ]
    _write(tmp_path / "rating_with_timestamp.tsv", "\n".join(ratings) + "\n")
    _write(tmp_path / "catalog_ciao.txt", "1 DVDs\r\n6 Food & Drink\r\n24 Games\r\n")
    _write(tmp_path / "trustnetwork.tsv", "1\t2\n2\t1\n3\n")
    out = _read_full(spark, CiaoAdapter(), tmp_path)
    assert set(out) == {"events", "reviews", "social_edges"}

    f = "rating_with_timestamp.tsv"
    bad = {C.B_RAW: ratings[3], C.B_SOURCE_FILE: f, C.B_PARSE_ERROR: _bad(6, "\t", 4)}
    _assert_stream(
        out["events"],
        _expected(
            spark,
            "events",
            [
                {"user_id": "6119", "item_id": "92579", "event_type": "rating", "value": "5", "ts": "959670000",
                 "category": "Games", C.B_RAW: ratings[0], C.B_SOURCE_FILE: f},
                {"user_id": "7186", "item_id": "20816", "event_type": "rating", "value": "0", "ts": "959756400",
                 "category": "Food & Drink", C.B_RAW: ratings[1], C.B_SOURCE_FILE: f},
                {"user_id": "7186", "item_id": "20817", "event_type": "rating", "value": "3", "ts": "959756400",
                 "category": "99", C.B_RAW: ratings[2], C.B_SOURCE_FILE: f},
                {"event_type": "rating", **bad},
            ],
        ),
    )
    _assert_stream(
        out["reviews"],
        _expected(
            spark,
            "reviews",
            [
                {"user_id": "6119", "item_id": "92579", "rating": "5", "helpfulness": "4", "ts": "959670000",
                 C.B_RAW: ratings[0], C.B_SOURCE_FILE: f},
                {"user_id": "7186", "item_id": "20816", "rating": "0", "helpfulness": "1", "ts": "959756400",
                 C.B_RAW: ratings[1], C.B_SOURCE_FILE: f},
                {"user_id": "7186", "item_id": "20817", "rating": "3", "helpfulness": "2", "ts": "959756400",
                 C.B_RAW: ratings[2], C.B_SOURCE_FILE: f},
                bad,
            ],
        ),
    )
    trust = {"relation": "trust", "directed": "true", C.B_SOURCE_FILE: "trustnetwork.tsv"}
    _assert_stream(
        out["social_edges"],
        _expected(
            spark,
            "social_edges",
            [
                {"src_user_id": "1", "dst_user_id": "2", C.B_RAW: "1\t2", **trust},
                {"src_user_id": "2", "dst_user_id": "1", C.B_RAW: "2\t1", **trust},
                {C.B_RAW: "3", C.B_PARSE_ERROR: _bad(2, "\t", 1), **trust},
            ],
        ),
    )


# --------------------------------------------------------------------------- inline fixtures: CiaoDVD


def test_ciaodvd_adapter(spark: SparkSession, tmp_path: Path) -> None:
    ratings = [
        "1,1,1,1,5,2000-07-12",
        "2,1,17,2,4,2000-07-13",
        "4,5,1,4",  # wrong field count
        "3,2,99,3,3,2001-01-01",  # unknown genre id; last row without a newline, as in the release
    ]
    _write(tmp_path / "movie-ratings.txt", "\n".join(ratings))
    _write(tmp_path / "trusts.txt", "8874,14430,1\n6417,17660\n226,1732,1")
    out = _read_full(spark, CiaoDvdAdapter(), tmp_path)
    assert set(out) == {"events", "reviews", "social_edges"}

    f = "movie-ratings.txt"
    bad = {C.B_RAW: ratings[2], C.B_SOURCE_FILE: f, C.B_PARSE_ERROR: _bad(6, ",", 4)}
    _assert_stream(
        out["events"],
        _expected(
            spark,
            "events",
            [
                {"user_id": "1", "item_id": "1", "event_type": "rating", "value": "5", "ts": "2000-07-12",
                 "category": "Action & Adventure", C.B_RAW: ratings[0], C.B_SOURCE_FILE: f},
                {"user_id": "2", "item_id": "1", "event_type": "rating", "value": "4", "ts": "2000-07-13",
                 "category": "Anime", C.B_RAW: ratings[1], C.B_SOURCE_FILE: f},
                {"event_type": "rating", **bad},
                {"user_id": "3", "item_id": "2", "event_type": "rating", "value": "3", "ts": "2001-01-01",
                 "category": "99", C.B_RAW: ratings[3], C.B_SOURCE_FILE: f},
            ],
        ),
    )
    _assert_stream(
        out["reviews"],
        _expected(
            spark,
            "reviews",
            [
                {"review_id": "1", "user_id": "1", "item_id": "1", "rating": "5", "ts": "2000-07-12",
                 C.B_RAW: ratings[0], C.B_SOURCE_FILE: f},
                {"review_id": "2", "user_id": "2", "item_id": "1", "rating": "4", "ts": "2000-07-13",
                 C.B_RAW: ratings[1], C.B_SOURCE_FILE: f},
                bad,
                {"review_id": "3", "user_id": "3", "item_id": "2", "rating": "3", "ts": "2001-01-01",
                 C.B_RAW: ratings[3], C.B_SOURCE_FILE: f},
            ],
        ),
    )
    trust = {"relation": "trust", "directed": "true", C.B_SOURCE_FILE: "trusts.txt"}
    _assert_stream(
        out["social_edges"],
        _expected(
            spark,
            "social_edges",
            [
                {"src_user_id": "8874", "dst_user_id": "14430", "weight": "1", C.B_RAW: "8874,14430,1", **trust},
                {C.B_RAW: "6417,17660", C.B_PARSE_ERROR: _bad(3, ",", 2), **trust},
                {"src_user_id": "226", "dst_user_id": "1732", "weight": "1", C.B_RAW: "226,1732,1", **trust},
            ],
        ),
    )


# ------------------------------------------------------------------------- inline fixtures: FilmTrust


def test_filmtrust_adapter(spark: SparkSession, tmp_path: Path) -> None:
    _write(tmp_path / "ratings.txt", "1 1 2\n1 3 3.5\n2 966\n1 1 2\n")
    _write(tmp_path / "trust.txt", "2 966 1\n5 1509 1 1\n")
    out = _read_full(spark, FilmTrustAdapter(), tmp_path)
    assert set(out) == {"events", "social_edges"}
    # The ingest stage may land the one snapshot under another label (data.batch_id): same files, same rows.
    relabelled = FilmTrustAdapter().read_batch(spark, tmp_path, "2024-01")
    assertDataFrameEqual(relabelled["events"], out["events"])

    ev = {"event_type": "rating", C.B_SOURCE_FILE: "ratings.txt"}
    _assert_stream(
        out["events"],
        _expected(
            spark,
            "events",
            [
                {"user_id": "1", "item_id": "1", "value": "2", C.B_RAW: "1 1 2", **ev},
                {"user_id": "1", "item_id": "3", "value": "3.5", C.B_RAW: "1 3 3.5", **ev},
                {C.B_RAW: "2 966", C.B_PARSE_ERROR: _bad(3, " ", 2), **ev},
                # An exact duplicate line is kept: duplicates are the cleaner's to judge.
                {"user_id": "1", "item_id": "1", "value": "2", C.B_RAW: "1 1 2", **ev},
            ],
        ),
    )
    trust = {"relation": "trust", "directed": "true", C.B_SOURCE_FILE: "trust.txt"}
    _assert_stream(
        out["social_edges"],
        _expected(
            spark,
            "social_edges",
            [
                {"src_user_id": "2", "dst_user_id": "966", "weight": "1", C.B_RAW: "2 966 1", **trust},
                {C.B_RAW: "5 1509 1 1", C.B_PARSE_ERROR: _bad(3, " ", 4), **trust},
            ],
        ),
    )


# --------------------------------------------------------------------------- inline fixtures: Last.fm


def _lastfm_files(path: Path, tags: Sequence[str], tagged: Sequence[str], artists: Sequence[str]) -> None:
    _write(path / "user_artists.dat", "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t51\n")
    _write(path / "user_friends.dat", "userID\tfriendID\n2\t275\n275\t2\n2\t428\t9\n")
    _write(path / "artists.dat", "\n".join(["id\tname\turl\tpictureURL", *artists]) + "\n")
    # tags.dat is Latin-1 in the release: written with those bytes here too.
    _write(path / "tags.dat", "\n".join(["tagID\ttagValue", *tags]) + "\n", encoding="latin-1")
    _write(
        path / "user_taggedartists.dat",
        "\n".join(["userID\tartistID\ttagID\tday\tmonth\tyear", *tagged]) + "\n",
    )


def test_lastfm_adapter(spark: SparkSession, tmp_path: Path) -> None:
    artists = [
        "1\tMALICE MIZER\thttp://www.last.fm/music/MALICE+MIZER\thttp://userserve-ak.last.fm/serve/252/10808.jpg",
        "51\tDuran Duran\thttp://www.last.fm/music/Duran+Duran\t",  # empty pictureURL is still 4 fields
        "52\tSigur Rós\thttp://www.last.fm/music/Sigur+R%C3%B3s\thttp://userserve-ak.last.fm/serve/252/1.jpg",
        "77\tbroken line",
    ]
    tagged = [
        "2\t52\t1\t1\t4\t2009",
        "3\t52\t1\t1\t5\t2009",
        "2\t52\t2863\t1\t4\t2009",
        "2\t51\t7982\t1\t4\t2009",
        "2\t51\t5\t1\t4\t2009",
        "2\t999\t5\t1\t4\t2009",  # artist not in artists.dat: no item row
        "2\t51\t1",  # wrong field count: not counted
    ]
    _lastfm_files(tmp_path, ["1\tmetal", "2863\ttropicália", "7982\tfußball", "5\trock"], tagged, artists)
    out = _read_full(spark, LastFmAdapter(), tmp_path)
    assert set(out) == {"events", "social_edges", "items"}

    ev = {"event_type": "play", C.B_SOURCE_FILE: "user_artists.dat"}
    _assert_stream(
        out["events"],
        _expected(
            spark,
            "events",
            [
                {"user_id": "2", "item_id": "51", "value": "13883", C.B_RAW: "2\t51\t13883", **ev},
                {"user_id": "2", "item_id": "52", "value": "11690", C.B_RAW: "2\t52\t11690", **ev},
                {C.B_RAW: "3\t51", C.B_PARSE_ERROR: _bad(3, "\t", 2), **ev},
            ],
        ),
    )
    fr = {"relation": "friend", "directed": "false", C.B_SOURCE_FILE: "user_friends.dat"}
    _assert_stream(
        out["social_edges"],
        _expected(
            spark,
            "social_edges",
            [
                {"src_user_id": "2", "dst_user_id": "275", C.B_RAW: "2\t275", **fr},
                {"src_user_id": "275", "dst_user_id": "2", C.B_RAW: "275\t2", **fr},
                {C.B_RAW: "2\t428\t9", C.B_PARSE_ERROR: _bad(2, "\t", 3), **fr},
            ],
        ),
    )
    it = {"category": "music artist", C.B_SOURCE_FILE: "artists.dat"}
    _assert_stream(
        out["items"],
        _expected(
            spark,
            "items",
            [
                {"item_id": "1", "title": "MALICE MIZER", C.B_RAW: artists[0], **it},
                # Equal counts rank by tag name; the Latin-1 names arrive decoded.
                {"item_id": "51", "title": "Duran Duran", "tags": "fußball|rock", C.B_RAW: artists[1], **it},
                {"item_id": "52", "title": "Sigur Rós", "tags": "metal|tropicália", C.B_RAW: artists[2], **it},
                {C.B_RAW: artists[3], C.B_PARSE_ERROR: _bad(4, "\t", 2), "category": "music artist",
                 C.B_SOURCE_FILE: "artists.dat"},
            ],
        ),
    )


def test_lastfm_tags_are_the_top_ten_by_count_then_name(spark: SparkSession, tmp_path: Path) -> None:
    # Tag t<k> is assigned k times to artist 7 (k = 1..12), and "a-tie" as often as t3: the top ten are
    # t12..t4 by count, then "a-tie" before "t3" (same count, name order); t2 and t1 fall off.
    tags = [f"{k}\tt{k}" for k in range(1, 13)] + ["100\ta-tie"]
    tagged = [f"{u}\t7\t{k}\t1\t1\t2010" for k in range(1, 13) for u in range(k)]
    tagged += [f"{u}\t7\t100\t1\t1\t2010" for u in range(3)]
    _lastfm_files(tmp_path, tags, tagged, ["7\tSeven\thttp://x\thttp://y"])
    items = LastFmAdapter().read_batch(spark, tmp_path, FULL_BATCH)["items"]
    assert [r.tags for r in items.collect()] == ["t12|t11|t10|t9|t8|t7|t6|t5|t4|a-tie"]


# ---------------------------------------------------------------------------- inline fixtures: Amazon


def test_amazon_adapter(spark: SparkSession, tmp_path: Path) -> None:
    reviews = [
        '{"overall": 5.0, "verified": true, "reviewTime": "06 17, 2018", "reviewerID": "A1", "asin": "B1", '
        '"style": {"Gift Amount:": " 50"}, "reviewerName": "John Doe", "reviewText": "Great gift.", '
        '"summary": "Five Stars", "unixReviewTime": 1529193600}',
        '{"overall": 2.0, "vote": "1,234", "verified": false, "reviewTime": "06 14, 2018", "reviewerID": "A2", '
        '"asin": "B1", "reviewerName": "Jane Roe", "summary": "meh", "unixReviewTime": 1528934400}',
        '{"overall": 4.0, "verified": true, "reviewerID": "A3", "asin": "B2", "reviewText": "cut off',
    ]
    meta = [
        '{"category": ["Gift Cards", "Restaurants"], "tech1": "", "description": ["Line one.", "Line <b>two</b>."], '
        '"title": "Serendipity 3 $100.00 Gift Card", "brand": "Serendipity 3", "rank": [], "main_cat": "Grocery", '
        '"price": "$25.00", "asin": "B1"}',
        '{"category": [], "description": [], "title": "<span class=\\"a-size-medium a-color-secondary\\"", '
        '"brand": "", "rank": "742 in Magazine Subscriptions (", "main_cat": "Gift Cards", '
        '"price": ".a-box-inner{background-color:#fff;}", "asin": "B2"}',
        '{"category": [], "description": [], "title": "<span class=\\"a-size-medium a-color-secondary\\"", '
        '"brand": "", "rank": "742 in Magazine Subscriptions (", "main_cat": "Gift Cards", '
        '"price": ".a-box-inner{background-color:#fff;}", "asin": "B2"}',
        '{"asin": "B3", "title": ',
    ]
    _write_gz(tmp_path / "Gift_Cards_5.json.gz", reviews)
    _write_gz(tmp_path / "meta_Gift_Cards.json.gz", meta)
    adapter = AmazonAdapter()
    assert adapter.batches(tmp_path) == ["Gift_Cards"]
    out = adapter.read_batch(spark, tmp_path, "Gift_Cards")
    assert set(out) == {"events", "reviews", "items"}

    rf = "Gift_Cards_5.json.gz"
    malformed = "malformed JSON: not one JSON object per line"
    _assert_stream(
        out["reviews"],
        _expected(
            spark,
            "reviews",
            [
                {"user_id": "A1", "item_id": "B1", "rating": "5.0", "text": "Great gift.", "ts": "1529193600",
                 C.B_RAW: reviews[0], C.B_SOURCE_FILE: rf},
                {"user_id": "A2", "item_id": "B1", "rating": "2.0", "helpfulness": "1,234", "ts": "1528934400",
                 C.B_RAW: reviews[1], C.B_SOURCE_FILE: rf},
                {C.B_RAW: reviews[2], C.B_SOURCE_FILE: rf, C.B_PARSE_ERROR: malformed},
            ],
        ),
    )
    _assert_stream(
        out["events"],
        _expected(
            spark,
            "events",
            [
                {"user_id": "A1", "item_id": "B1", "event_type": "rating", "value": "5.0", "ts": "1529193600",
                 C.B_RAW: reviews[0], C.B_SOURCE_FILE: rf},
                {"user_id": "A1", "item_id": "B1", "event_type": "purchase", "ts": "1529193600",
                 C.B_RAW: reviews[0], C.B_SOURCE_FILE: rf},
                {"user_id": "A2", "item_id": "B1", "event_type": "rating", "value": "2.0", "ts": "1528934400",
                 C.B_RAW: reviews[1], C.B_SOURCE_FILE: rf},
                {"event_type": "rating", C.B_RAW: reviews[2], C.B_SOURCE_FILE: rf, C.B_PARSE_ERROR: malformed},
            ],
        ),
    )
    mf = "meta_Gift_Cards.json.gz"
    junk = {"item_id": "B2", "title": '<span class="a-size-medium a-color-secondary"', "description": "",
            "category": "Gift Cards", "brand": "", "price": ".a-box-inner{background-color:#fff;}",
            C.B_SOURCE_FILE: mf}
    _assert_stream(
        out["items"],
        _expected(
            spark,
            "items",
            [
                {"item_id": "B1", "title": "Serendipity 3 $100.00 Gift Card", "description": "Line one. Line <b>two</b>.",
                 "category": "Restaurants", "brand": "Serendipity 3", "price": "$25.00", "currency": "USD",
                 C.B_RAW: meta[0], C.B_SOURCE_FILE: mf},
                {**junk, C.B_RAW: meta[1]},
                {**junk, C.B_RAW: meta[2]},  # the duplicate catalogue line is kept
                {C.B_RAW: meta[3], C.B_SOURCE_FILE: mf, C.B_PARSE_ERROR: malformed},
            ],
        ),
    )
    # reviewerName is personal data that no bronze field carries (it stays only in _raw).
    fields = [c for c in out["reviews"].columns if c != C.B_RAW]
    assert out["reviews"].where(F.concat_ws("\u0001", *fields).contains("John Doe")).count() == 0


# ------------------------------------------------------------------------- slow: real shared datasets


def _data_lines(path: Path, encoding: str = "utf-8", header: bool = False) -> list[str]:
    """The file's lines without terminators (a last line without newline counts), minus a header row."""
    text = path.read_bytes().decode(encoding)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    return lines[1:] if header else lines


def _gz_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def _assert_counts(out: Mapping[str, DataFrame], expected: Mapping[str, int]) -> None:
    """Every stream has exactly the expected rows and none has a _parse_error."""
    assert set(out) == set(expected)
    for stream, n in expected.items():
        row = out[stream].agg(F.count(F.lit(1)).alias("n"), F.count(C.B_PARSE_ERROR).alias("bad")).first()
        assert row is not None
        assert (stream, row["n"], row["bad"]) == (stream, n, 0)


def _counter(df: DataFrame, col: str) -> collections.Counter[str | None]:
    return collections.Counter({r[col]: r["count"] for r in df.groupBy(col).count().collect()})


@pytest.mark.slow
def test_ciao_real(spark: SparkSession) -> None:
    path = shared_dataset("ciao")
    ratings = [ln.split("\t") for ln in _data_lines(path / "rating_with_timestamp.tsv")]
    trust = _data_lines(path / "trustnetwork.tsv")
    catalog = dict(ln.split(" ", 1) for ln in _data_lines(path / "catalog_ciao.txt"))
    out = _read_full(spark, CiaoAdapter(), path)
    _assert_counts(out, {"events": len(ratings), "reviews": len(ratings), "social_edges": len(trust)})

    # Category names (not ids) per rating, exactly as the catalogue names them (incl. "Ciao Caf?").
    expected = collections.Counter(catalog.get(r[2], r[2]) for r in ratings)
    assert _counter(out["events"], "category") == expected
    assert "Food & Drink" in expected and not any(k.isdigit() for k in expected)
    first = out["events"].where(F.col(C.B_RAW) == "\t".join(ratings[0])).first()
    assert first is not None
    assert (first.user_id, first.item_id, first.value, first.ts) == (
        ratings[0][0], ratings[0][1], ratings[0][3], ratings[0][5]
    )
    assert _counter(out["reviews"], "rating") == collections.Counter(r[3] for r in ratings)  # zeros included
    assert _counter(out["reviews"], "helpfulness") == collections.Counter(r[4] for r in ratings)


@pytest.mark.slow
def test_ciaodvd_real(spark: SparkSession) -> None:
    path = shared_dataset("ciaodvd")
    ratings = [ln.split(",") for ln in _data_lines(path / "movie-ratings.txt")]
    trust = _data_lines(path / "trusts.txt")
    # The genre names as readme.txt lists them ("    3) Family: http://..."), read independently.
    readme = (path / "readme.txt").read_bytes().decode("latin-1")
    genres = dict(re.findall(r"^\s*(\d+)\) ([^:\r\n]+): http://dvd\.ciao", readme, flags=re.M))
    assert len(genres) == 17
    out = _read_full(spark, CiaoDvdAdapter(), path)
    _assert_counts(out, {"events": len(ratings), "reviews": len(ratings), "social_edges": len(trust)})

    assert _counter(out["events"], "category") == collections.Counter(genres[r[2]] for r in ratings)
    last = out["reviews"].where(F.col(C.B_RAW) == ",".join(ratings[-1])).first()  # the row without a newline
    assert last is not None
    assert (last.review_id, last.user_id, last.item_id, last.rating, last.ts) == (
        ratings[-1][3], ratings[-1][0], ratings[-1][1], ratings[-1][4], ratings[-1][5]
    )
    assert _counter(out["social_edges"], "weight") == collections.Counter(ln.split(",")[2] for ln in trust)


@pytest.mark.slow
def test_filmtrust_real(spark: SparkSession) -> None:
    path = shared_dataset("filmtrust")
    ratings = [ln.split(" ") for ln in _data_lines(path / "ratings.txt")]
    trust = _data_lines(path / "trust.txt")
    out = _read_full(spark, FilmTrustAdapter(), path)
    _assert_counts(out, {"events": len(ratings), "social_edges": len(trust)})

    # Half stars keep their text ("3.5", and "2" without a decimal point); no timestamps anywhere.
    assert _counter(out["events"], "value") == collections.Counter(r[2] for r in ratings)
    assert out["events"].where(F.col("ts").isNotNull()).count() == 0
    assert _counter(out["social_edges"], "src_user_id") == collections.Counter(ln.split(" ")[0] for ln in trust)


@pytest.mark.slow
def test_lastfm_real(spark: SparkSession) -> None:
    path = shared_dataset("lastfm-hetrec2011")
    plays = _data_lines(path / "user_artists.dat", header=True)
    friends = _data_lines(path / "user_friends.dat", header=True)
    artists = [ln.split("\t") for ln in _data_lines(path / "artists.dat", header=True)]
    tag_names = dict(ln.split("\t") for ln in _data_lines(path / "tags.dat", encoding="latin-1", header=True))
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for ln in _data_lines(path / "user_taggedartists.dat", header=True):
        _user, artist, tag, *_ = ln.split("\t")
        counts[(artist, tag_names[tag])] += 1
    ranked: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    for (artist, tag), n in counts.items():
        ranked[artist].append((-n, tag))
    expected_tags = {a[0]: "|".join(t for _, t in sorted(ranked[a[0]])[:10]) if a[0] in ranked else None for a in artists}

    out = _read_full(spark, LastFmAdapter(), path)
    _assert_counts(out, {"events": len(plays), "social_edges": len(friends), "items": len(artists)})

    actual = {r.item_id: r.tags for r in out["items"].select("item_id", "tags").collect()}
    assert actual == expected_tags
    assert any("tropicália" in (t or "").split("|") for t in actual.values())  # Latin-1 decoded
    non_ascii = next(a for a in artists if not a[1].isascii())
    row = out["items"].where(F.col("item_id") == non_ascii[0]).first()
    assert row is not None and row.title == non_ascii[1] and row.category == "music artist"
    assert out["social_edges"].where(F.col("directed") != "false").count() == 0
    assert _counter(out["events"], "event_type") == {"play": len(plays)}


@pytest.mark.slow
def test_amazon_real(spark: SparkSession) -> None:
    path = shared_dataset("amazon-reviews-2018-small")
    adapter = AmazonAdapter()
    assert adapter.batches(path) == ["Gift_Cards", "Magazine_Subscriptions"]
    for cat in adapter.batches(path):
        reviews = [json.loads(ln) for ln in _gz_lines(path / f"{cat}_5.json.gz")]
        meta = [json.loads(ln) for ln in _gz_lines(path / f"meta_{cat}.json.gz")]
        verified = sum(1 for r in reviews if r.get("verified") is True)
        out = adapter.read_batch(spark, path, cat)
        _assert_counts(out, {"reviews": len(reviews), "events": len(reviews) + verified, "items": len(meta)})

        assert _counter(out["events"], "event_type") == {"rating": len(reviews), "purchase": verified}
        assert _counter(out["reviews"], "helpfulness") == collections.Counter(r.get("vote") for r in reviews)
        assert _counter(out["items"], "currency") == collections.Counter(
            "USD" if m["price"].startswith("$") else None for m in meta
        )
        assert _counter(out["items"], "category") == collections.Counter(
            m["category"][-1] if m["category"] else m["main_cat"] for m in meta
        )
        asins = collections.Counter(m["asin"] for m in meta)
        m = next(m for m in meta if len(m["description"]) > 1 and asins[m["asin"]] == 1)
        row = out["items"].where(F.col("item_id") == m["asin"]).first()
        assert row is not None
        assert (row.title, row.description, row.brand, row.price) == (
            m["title"], " ".join(m["description"]), m["brand"], m["price"]
        )


def test_amazon_lines_must_each_be_exactly_one_json_object(spark: SparkSession) -> None:
    from socialrec.ingest.datasets import parse_json_fields

    good = '{"asin": "B1", "overall": 5.0}'
    two = '{"asin": "B2"}{"asin": "B3"}'  # a lost newline: the second review would vanish
    junk = '{"asin": "B4"} trailing'
    lines = spark.createDataFrame([(good, "f"), (two, "f"), (junk, "f"), ("  ", "f")],
                                  StructType([StructField(C.B_RAW, StringType()), StructField(C.B_SOURCE_FILE, StringType())]))
    malformed = "malformed JSON: not one JSON object per line"
    expected = spark.createDataFrame(
        [("B1", good, "f", None), (None, two, "f", malformed), (None, junk, "f", malformed), (None, "  ", "f", malformed)],
        StructType([StructField("asin", StringType()), StructField(C.B_RAW, StringType()),
                    StructField(C.B_SOURCE_FILE, StringType()), StructField(C.B_PARSE_ERROR, StringType())]),
    )
    assertDataFrameEqual(parse_json_fields(lines, {"asin": StringType()}), expected)
