"""Adapters for the five public datasets in ``shared/datasets`` (docs/sources.md).

Each adapter only *locates* fields: values stay the text that arrived, ``_raw`` is the whole original line
(also for rows derived from it, e.g. a Ciao rating that yields an event and a review), a line with the wrong
field count keeps null fields and a ``_parse_error``, and nothing is dropped except the known header line of
files that have one. Cleaning (ranges, duplicates, conflicts, HTML, encodings) is the cleaner's job, driven by
each adapter's :class:`SourceProfile`. Spark built-ins only: no Python UDFs, nothing collected to the driver.
"""
from __future__ import annotations

import abc
import logging
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, StringType, StructField, StructType

from socialrec.ingest.base import (
    SourceAdapter,
    SourceMissingError,
    SourceProfile,
    read_delimited,
    read_lines,
    to_bronze_shape,
)
from socialrec.schema import columns as C

logger = logging.getLogger(__name__)

FULL_BATCH = "full"
"""The single batch label of the one-shot datasets (each is one snapshot, ingested at once)."""

_PE = C.B_PARSE_ERROR


def _ok() -> Column:
    """True for rows whose line parsed (derived values are only computed from those)."""
    return F.col(_PE).isNull()


def _trust_edges(df: DataFrame, weight: str | None = None) -> DataFrame:
    """Directed trust edges from a frame with ``src``/``dst`` (and optionally a weight column)."""
    return to_bronze_shape(
        df,
        "social_edges",
        {
            C.SRC_USER_ID: "src",
            C.DST_USER_ID: "dst",
            C.RELATION: F.lit("trust"),
            C.DIRECTED: F.lit("true"),
            C.WEIGHT: weight,
        },
    )


class _OneShotAdapter(SourceAdapter):
    """A dataset released once as a fixed set of files: one batch, :data:`FULL_BATCH` (any label reads it)."""

    required: tuple[str, ...] = ()

    def batches(self, path: Path) -> list[str]:
        self.check_path(path, self.required)
        return [FULL_BATCH]

    def read_batch(self, spark: SparkSession, path: Path, batch: str) -> dict[str, DataFrame]:
        # The label does not select files here: the ingest stage may land the one snapshot under another
        # label (data.batch_id), and every label means the same, whole, set of files.
        self.check_path(path, self.required)
        logger.info("%s: reading %s (batch label %r)", self.name, path, batch)
        return self._read(spark, path)

    @abc.abstractmethod
    def _read(self, spark: SparkSession, path: Path) -> dict[str, DataFrame]:
        """``{stream: bronze frame}`` from the (checked) folder ``path``."""


# ----------------------------------------------------------------------------------------------- Ciao


class CiaoAdapter(_OneShotAdapter):
    """Tang et al. 2012 Ciao: ratings with category, helpfulness and day timestamps; directed trust."""

    profile = SourceProfile(
        "ciao",
        references="derive",
        rating_min=1,
        rating_max=5,
        launch="1999-06-01",
        derive_ids=True,
        description="Ciao (Tang, Gao & Liu 2012): product ratings with category and helpfulness, trust network",
    )
    RATINGS = "rating_with_timestamp.tsv"
    TRUST = "trustnetwork.tsv"
    CATALOG = "catalog_ciao.txt"
    required = (RATINGS, TRUST, CATALOG)

    def _read(self, spark: SparkSession, path: Path) -> dict[str, DataFrame]:
        # rating.tsv holds the same records without the timestamp: reading both would double every rating.
        ratings = read_delimited(
            spark,
            str(path / self.RATINGS),
            "\t",
            ["user_id", "product_id", "category_id", "rating", "helpfulness", "timestamp"],
        )
        ratings = ratings.join(F.broadcast(self._catalog(spark, path)), "category_id", "left")
        events = to_bronze_shape(
            ratings,
            "events",
            {
                C.USER_ID: "user_id",
                C.ITEM_ID: "product_id",
                C.EVENT_TYPE: F.lit("rating"),
                C.VALUE: "rating",
                C.TS: "timestamp",
                # An id without a catalogue name keeps its id text, so no category information is lost.
                C.EVENT_CATEGORY: F.coalesce(F.col("category_name"), F.col("category_id")),
            },
        )
        reviews = to_bronze_shape(
            ratings,
            "reviews",
            {
                C.USER_ID: "user_id",
                C.ITEM_ID: "product_id",
                C.RATING: "rating",
                C.HELPFULNESS: "helpfulness",
                C.TS: "timestamp",
            },
        )
        trust = read_delimited(spark, str(path / self.TRUST), "\t", ["src", "dst"])
        return {"events": events, "reviews": reviews, "social_edges": _trust_edges(trust)}

    def _catalog(self, spark: SparkSession, path: Path) -> DataFrame:
        """``category_id -> category_name`` from ``<id> <name>`` lines (names contain spaces: split once)."""
        line = F.regexp_replace(F.col(C.B_RAW), "\r$", "")  # CRLF file
        parts = F.split(line, " ", 2)
        cat = read_lines(spark, str(path / self.CATALOG)).select(
            parts.getItem(0).alias("category_id"), F.try_element_at(parts, F.lit(2)).alias("category_name")
        )
        # One name per id even if the catalogue ever repeated an id: the left join must not multiply ratings.
        return cat.groupBy("category_id").agg(F.min("category_name").alias("category_name"))


# -------------------------------------------------------------------------------------------- CiaoDVD

CIAODVD_GENRES: tuple[str, ...] = (
    "Action & Adventure",
    "Comedy",
    "Family",
    "Drama",
    "Horror",
    "Science Fiction & Fantasy",
    "Thriller & Mystery",
    "Martial Arts",
    "Musicals & Music Films",
    "War",
    "Westerns",
    "Documentaries & Biographies",
    "Special Interest",
    "Sports",
    "World Cinema",
    "TV Series",
    "Anime",
)
"""The 17 genres listed in CiaoDVD's readme.txt; genre id i is the i-th (the natural reading, SOURCE.md)."""


class CiaoDvdAdapter(_OneShotAdapter):
    """Guo et al. 2014 CiaoDVD: DVD ratings with genre, review id and date; directed trust."""

    profile = SourceProfile(
        "ciaodvd",
        references="derive",
        rating_min=1,
        rating_max=5,
        launch="1999-06-01",
        derive_ids=True,
        description="CiaoDVD (Guo et al. 2014): DVD ratings with genre, review id and date; trust network",
    )
    RATINGS = "movie-ratings.txt"
    TRUST = "trusts.txt"
    required = (RATINGS, TRUST)

    def _read(self, spark: SparkSession, path: Path) -> dict[str, DataFrame]:
        ratings = read_delimited(
            spark,
            str(path / self.RATINGS),
            ",",
            ["user_id", "movie_id", "genre_id", "review_id", "rating", "date"],
        )
        genre_names = F.create_map(
            *[x for i, name in enumerate(CIAODVD_GENRES, start=1) for x in (F.lit(str(i)), F.lit(name))]
        )
        # An unknown genre id keeps its id text (as Ciao does for category ids without a name).
        genre = F.coalesce(F.try_element_at(genre_names, F.col("genre_id")), F.col("genre_id"))
        events = to_bronze_shape(
            ratings,
            "events",
            {
                C.USER_ID: "user_id",
                C.ITEM_ID: "movie_id",
                C.EVENT_TYPE: F.lit("rating"),
                C.VALUE: "rating",
                C.TS: "date",
                C.EVENT_CATEGORY: genre,
            },
        )
        reviews = to_bronze_shape(
            ratings,
            "reviews",
            {
                C.REVIEW_ID: "review_id",
                C.USER_ID: "user_id",
                C.ITEM_ID: "movie_id",
                C.RATING: "rating",
                C.TS: "date",
            },
        )
        trust = read_delimited(spark, str(path / self.TRUST), ",", ["src", "dst", "trust_value"])
        return {"events": events, "reviews": reviews, "social_edges": _trust_edges(trust, "trust_value")}


# ------------------------------------------------------------------------------------------ FilmTrust


class FilmTrustAdapter(_OneShotAdapter):
    """Guo et al. 2013 FilmTrust: half-star movie ratings (0.5-4.0) and directed trust; no timestamps."""

    profile = SourceProfile(
        "filmtrust",
        references="derive",
        rating_min=0.5,
        rating_max=4.0,
        launch="2005-01-01",
        # No timestamps at all: every row gets the end of the 2011 crawl (evaluation must use the random split).
        snapshot_ts="2011-06-30T00:00:00Z",
        derive_ids=True,
        description="FilmTrust (Guo et al. 2013): movie ratings 0.5-4.0 and trust statements, no timestamps",
    )
    RATINGS = "ratings.txt"
    TRUST = "trust.txt"
    required = (RATINGS, TRUST)

    def _read(self, spark: SparkSession, path: Path) -> dict[str, DataFrame]:
        ratings = read_delimited(spark, str(path / self.RATINGS), " ", ["user_id", "item_id", "rating"])
        events = to_bronze_shape(
            ratings,
            "events",
            {C.USER_ID: "user_id", C.ITEM_ID: "item_id", C.EVENT_TYPE: F.lit("rating"), C.VALUE: "rating"},
        )
        trust = read_delimited(spark, str(path / self.TRUST), " ", ["src", "dst", "trust_value"])
        return {"events": events, "social_edges": _trust_edges(trust, "trust_value")}


# -------------------------------------------------------------------------------------------- Last.fm

LASTFM_TOP_TAGS = 10
"""How many of an artist's most-assigned tags its item row carries."""


class LastFmAdapter(_OneShotAdapter):
    """HetRec 2011 Last.fm: play counts, symmetric friend graph, artist names and user tags."""

    profile = SourceProfile(
        "lastfm",
        references="derive",
        launch="2002-01-01",
        # Play counts are totals without a time: every row gets the release date of the 2011 snapshot.
        snapshot_ts="2011-05-01T00:00:00Z",
        derive_ids=True,
        description="Last.fm HetRec 2011: user-artist play counts, friend graph, artist names and top tags",
    )
    USER_ARTISTS = "user_artists.dat"
    USER_FRIENDS = "user_friends.dat"
    ARTISTS = "artists.dat"
    TAGS = "tags.dat"
    USER_TAGGED = "user_taggedartists.dat"
    required = (USER_ARTISTS, USER_FRIENDS, ARTISTS, TAGS, USER_TAGGED)
    # Each file's one header row, skipped by exact content (a data line can never equal it).
    HEADERS = {
        USER_ARTISTS: "userID\tartistID\tweight",
        USER_FRIENDS: "userID\tfriendID",
        ARTISTS: "id\tname\turl\tpictureURL",
        TAGS: "tagID\ttagValue",
        USER_TAGGED: "userID\tartistID\ttagID\tday\tmonth\tyear",
    }

    def _read(self, spark: SparkSession, path: Path) -> dict[str, DataFrame]:
        plays = self._file(spark, path, self.USER_ARTISTS, ["user_id", "artist_id", "weight"])
        events = to_bronze_shape(
            plays,
            "events",
            {C.USER_ID: "user_id", C.ITEM_ID: "artist_id", C.EVENT_TYPE: F.lit("play"), C.VALUE: "weight"},
        )
        friends = self._file(spark, path, self.USER_FRIENDS, ["src", "dst"])
        # Both directions of every friendship are kept as they arrived; the cleaner normalises undirected pairs.
        edges = to_bronze_shape(
            friends,
            "social_edges",
            {C.SRC_USER_ID: "src", C.DST_USER_ID: "dst", C.RELATION: F.lit("friend"), C.DIRECTED: F.lit("false")},
        )
        artists = self._file(spark, path, self.ARTISTS, ["id", "name", "url", "picture_url"])
        artists = artists.join(self._top_tags(spark, path), artists["id"] == F.col("tag_artist_id"), "left")
        items = to_bronze_shape(
            artists,
            "items",
            {C.ITEM_ID: "id", C.TITLE: "name", C.CATEGORY: F.lit("music artist"), C.TAGS: "top_tags"},
        )
        return {"events": events, "social_edges": edges, "items": items}

    def _file(
        self, spark: SparkSession, path: Path, name: str, names: list[str], encoding: str = "UTF-8"
    ) -> DataFrame:
        return read_delimited(spark, str(path / name), "\t", names, header=self.HEADERS[name], encoding=encoding)

    def _top_tags(self, spark: SparkSession, path: Path) -> DataFrame:
        """``tag_artist_id -> top_tags``: the artist's most-assigned tag names, '|'-joined.

        Ranked by number of assignments, ties by tag name, so the result does not depend on row order.
        Assignments of tag ids absent from tags.dat (none in the release) cannot be named and are not counted.
        """
        assigned = self._file(spark, path, self.USER_TAGGED, ["user_id", "artist_id", "tag_id", "day", "month", "year"])
        # tags.dat is Latin-1 (tropicália, fußball): decoding it as UTF-8 would mangle those names.
        tags = self._file(spark, path, self.TAGS, ["tag_id", "tag_value"], encoding="ISO-8859-1")
        # One name per tag id, so a repeated id could never double-count assignments.
        tags = tags.where(_ok()).groupBy("tag_id").agg(F.min("tag_value").alias("tag_value"))
        counts = (
            assigned.where(_ok())
            .join(tags, "tag_id")
            .groupBy("artist_id", "tag_value")
            .agg(F.count(F.lit(1)).alias("n"))
        )
        # Sorting structs (-n, name) ascending = most assignments first, then tag name.
        ranked = F.sort_array(F.collect_list(F.struct((-F.col("n")).alias("neg_n"), F.col("tag_value").alias("tag"))))
        top = F.slice(ranked, 1, LASTFM_TOP_TAGS)
        return counts.groupBy(F.col("artist_id").alias("tag_artist_id")).agg(
            F.array_join(F.transform(top, lambda x: x["tag"]), "|").alias("top_tags")
        )


# --------------------------------------------------------------------------------------------- Amazon

AMAZON_REVIEWS_SUFFIX = "_5.json.gz"
AMAZON_META_PREFIX = "meta_"
AMAZON_META_SUFFIX = ".json.gz"


def parse_json_fields(lines: DataFrame, fields: dict[str, DataType]) -> DataFrame:
    """``lines`` plus one column per JSON field (strings keep the JSON text of numbers and booleans) and
    ``_parse_error``; a line that is not one JSON object (or has a field of another shape), or is not UTF-8, keeps
    all fields null, exactly as :func:`socialrec.ingest.feed.parse_json_lines` decides."""
    from socialrec.ingest.feed import json_object_per_line

    parsed, bad, error = json_object_per_line(lines, StructType([StructField(k, t) for k, t in fields.items()]))
    return parsed.select(
        *[F.when(~bad, F.col(f"_j.{k}")).alias(k) for k in fields],
        F.col(C.B_RAW),
        F.col(C.B_SOURCE_FILE),
        error.alias(_PE),
    )


class AmazonAdapter(SourceAdapter):
    """Amazon Review Data 2018 (Ni, Li & McAuley), per category: 5-core reviews + product metadata.

    One batch per category with both ``<Cat>_5.json.gz`` and ``meta_<Cat>.json.gz`` present.
    """

    profile = SourceProfile(
        "amazon",
        references="derive",
        rating_min=1,
        rating_max=5,
        launch="1995-07-01",
        derive_ids=True,
        description="Amazon reviews 2018 (Ni, Li & McAuley 2019), small categories: reviews and catalogue",
    )

    @staticmethod
    def review_file(category: str) -> str:
        return f"{category}{AMAZON_REVIEWS_SUFFIX}"

    @staticmethod
    def meta_file(category: str) -> str:
        return f"{AMAZON_META_PREFIX}{category}{AMAZON_META_SUFFIX}"

    def batches(self, path: Path) -> list[str]:
        self.check_path(path, ())
        reviews = {p.name[: -len(AMAZON_REVIEWS_SUFFIX)] for p in path.glob(f"*{AMAZON_REVIEWS_SUFFIX}")}
        metas = {
            p.name[len(AMAZON_META_PREFIX) : -len(AMAZON_META_SUFFIX)]
            for p in path.glob(f"{AMAZON_META_PREFIX}*{AMAZON_META_SUFFIX}")
        }
        # A half pair is an incomplete download: refuse rather than silently ingest half a category.
        unpaired = sorted(
            [self.meta_file(c) for c in reviews - metas] + [self.review_file(c) for c in metas - reviews]
        )
        if unpaired:
            raise SourceMissingError(
                f"{self.name}: {path} lacks {', '.join(unpaired)} (each category needs both "
                f"<Category>{AMAZON_REVIEWS_SUFFIX} and {AMAZON_META_PREFIX}<Category>{AMAZON_META_SUFFIX}); "
                "see docs/sources.md"
            )
        if not reviews:
            raise SourceMissingError(
                f"{self.name}: {path} holds no <Category>{AMAZON_REVIEWS_SUFFIX} + "
                f"{AMAZON_META_PREFIX}<Category>{AMAZON_META_SUFFIX} pair; see docs/sources.md"
            )
        return sorted(reviews)

    def read_batch(self, spark: SparkSession, path: Path, batch: str) -> dict[str, DataFrame]:
        self.check_path(path, (self.review_file(batch), self.meta_file(batch)))
        logger.info("%s: reading category %s from %s", self.name, batch, path)
        events, reviews = self._reviews(spark, path / self.review_file(batch))
        return {"events": events, "reviews": reviews, "items": self._items(spark, path / self.meta_file(batch))}

    def _reviews(self, spark: SparkSession, file: Path) -> tuple[DataFrame, DataFrame]:
        # reviewerName is personal data and not a canonical field: it is not mapped (it stays only in _raw).
        s = StringType()
        lines = parse_json_fields(
            read_lines(spark, str(file)),
            {
                "reviewerID": s,
                "asin": s,
                "overall": s,
                "reviewText": s,
                "vote": s,
                "unixReviewTime": s,
                "verified": s,
            },
        )
        reviews = to_bronze_shape(
            lines,
            "reviews",
            {
                C.USER_ID: "reviewerID",
                C.ITEM_ID: "asin",
                C.RATING: "overall",
                C.TEXT: "reviewText",
                C.HELPFULNESS: "vote",
                C.TS: "unixReviewTime",
            },
        )
        ratings = to_bronze_shape(
            lines,
            "events",
            {
                C.USER_ID: "reviewerID",
                C.ITEM_ID: "asin",
                C.EVENT_TYPE: F.lit("rating"),
                C.VALUE: "overall",
                C.TS: "unixReviewTime",
            },
        )
        # A verified review proves a purchase: the only purchase signal the dataset has (no time of its own).
        purchases = to_bronze_shape(
            lines.where(F.col("verified") == F.lit("true")),
            "events",
            {C.USER_ID: "reviewerID", C.ITEM_ID: "asin", C.EVENT_TYPE: F.lit("purchase"), C.TS: "unixReviewTime"},
        )
        return ratings.unionByName(purchases), reviews

    def _items(self, spark: SparkSession, file: Path) -> DataFrame:
        s = StringType()
        lines = parse_json_fields(
            read_lines(spark, str(file)),
            {
                "asin": s,
                "title": s,
                "description": ArrayType(s),
                "category": ArrayType(s),
                "main_cat": s,
                "brand": s,
                "price": s,
            },
        )
        # The leaf of the category path; products without a path fall back to their main category.
        category = F.coalesce(F.try_element_at(F.col("category"), F.lit(-1)), F.col("main_cat"))
        return to_bronze_shape(
            lines,
            "items",
            {
                C.ITEM_ID: "asin",
                C.TITLE: "title",
                C.DESCRIPTION: F.array_join(F.col("description"), " "),
                C.CATEGORY: category,
                C.BRAND: "brand",
                C.PRICE: "price",
                # Every price in this release is in US dollars, written "$25.00"; anything else is not a price.
                C.CURRENCY: F.when(F.col("price").startswith("$"), F.lit("USD")),
            },
        )


DATASETS: dict[str, tuple[type[SourceAdapter], str]] = {
    "ciao": (CiaoAdapter, "ciao"),
    "ciaodvd": (CiaoDvdAdapter, "ciaodvd"),
    "filmtrust": (FilmTrustAdapter, "filmtrust"),
    "lastfm": (LastFmAdapter, "lastfm-hetrec2011"),
    "amazon": (AmazonAdapter, "amazon-reviews-2018-small"),
}
"""Public dataset name -> (adapter class, default folder name under ``data.datasets_dir``)."""
