"""Source adapters: map a source's files onto the bronze contracts (strings + lineage).

An adapter knows one source's layout: which batches exist and how each stream's lines become the canonical
bronze fields. It never cleans: values stay the text that arrived (a field is only *located*, e.g. the
fourth tab-separated column), and ``_raw`` keeps the whole original line. Cleaning rules live in
``socialrec.clean`` and apply to every source alike, parameterised by the source's :class:`SourceProfile`.
"""
from __future__ import annotations

import abc
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.errors import SocialrecError
from socialrec.schema import columns as C
from socialrec.schema.tables import BRONZE_BY_STREAM

logger = logging.getLogger(__name__)

ReferencePolicy = Literal["strict", "derive"]


class SourceMissingError(SocialrecError):
    """The input folder or a required file of a source is absent."""


class SourceFormatError(SocialrecError):
    """A source file is there but cannot be read as its documented format (a truncated or corrupt gzip
    archive, a text encoding other than UTF-8, two files for one stream)."""


@dataclass(frozen=True)
class SourceProfile:
    """What the cleaning rules need to know about a source.

    ``references``: ``strict`` = an event/edge/review naming a user or item that was never declared is
    quarantined (the platform's own feeds: a user exists before acting); ``derive`` = the source has no
    complete user list or catalogue (the public datasets), so users and stub items are derived from the rows
    that reference them. ``launch``: timestamps before this are rejected. ``snapshot_ts``: the timestamp
    given to rows of sources that have none (documented per source; evaluation on such sources must use the
    random split). ``rating_min``/``rating_max``: the source's rating scale. ``derive_ids``: the source has
    no event/review ids, so the cleaner derives them as a keyed hash of (source, user, item, event type),
    which also makes a re-rating of the same item a same-key conflict (latest wins), as on a real platform.
    """

    name: str
    references: ReferencePolicy
    rating_min: float = 1.0
    rating_max: float = 5.0
    launch: str | None = None
    snapshot_ts: str | None = None
    derive_ids: bool = False
    description: str = ""


def bronze_columns(stream: str) -> list[str]:
    """The canonical field columns of a bronze stream (without lineage)."""
    lineage = set(C.LINEAGE)
    return [c for c in BRONZE_BY_STREAM[stream].column_names if c not in lineage]


def to_bronze_shape(df: DataFrame, stream: str, fields: Mapping[str, Column | str | None]) -> DataFrame:
    """Select the canonical fields of ``stream`` from ``df`` (absent ones as null strings) plus the adapter's
    lineage columns ``_raw``, ``_source_file``, ``_parse_error`` (null when absent)."""
    out: list[Column] = []
    for name in bronze_columns(stream):
        expr = fields.get(name)
        if expr is None:
            out.append(F.lit(None).cast("string").alias(name))
        else:
            out.append((F.col(expr) if isinstance(expr, str) else expr).cast("string").alias(name))
    for name in (C.B_RAW, C.B_SOURCE_FILE, C.B_PARSE_ERROR):
        out.append(F.col(name).cast("string") if name in df.columns else F.lit(None).cast("string").alias(name))
    return df.select(*out)


def read_lines(spark: SparkSession, files: str | Sequence[str]) -> DataFrame:
    """Every line of ``files`` (gzip read transparently) as ``_raw`` with ``_source_file``."""
    paths = [files] if isinstance(files, str) else list(files)
    return spark.read.text(paths).select(
        F.col("value").alias(C.B_RAW), F.col("_metadata.file_path").alias(C.B_SOURCE_FILE)
    )


def read_delimited(
    spark: SparkSession,
    files: str | Sequence[str],
    sep: str,
    names: Sequence[str],
    *,
    header: str | None = None,
    encoding: str = "UTF-8",
) -> DataFrame:
    """A delimited text file as one string column per name, plus ``_raw``, ``_source_file``, ``_parse_error``.

    Lines with a field count other than ``len(names)`` keep their fields null and get a ``_parse_error``, so
    nothing is dropped. ``header``: the exact header line to skip (files with a header row). ``encoding``:
    the file's text encoding (Latin-1 files are decoded as such, not as UTF-8).
    """
    paths = [files] if isinstance(files, str) else list(files)
    for p in paths:
        if "://" not in p and not Path(p).exists():
            raise SourceMissingError(f"{p}: not found")
    if encoding.upper().replace("_", "-") in ("UTF-8", "UTF8"):
        lines = read_lines(spark, paths)
    else:
        # The text source is UTF-8 only; the CSV source decodes other charsets. One column, no quoting,
        # a separator that cannot occur, so each line arrives whole.
        lines = (
            spark.read.option("encoding", encoding)
            .option("sep", "\u0000")
            .option("quote", "")
            .option("escape", "")
            .option("header", "false")
            .schema("value string")
            .csv(paths)
            .select(F.col("value").alias(C.B_RAW), F.col("_metadata.file_path").alias(C.B_SOURCE_FILE))
        )
    if header is not None:
        lines = lines.where(F.col(C.B_RAW) != F.lit(header))
    # Strip a CR left by CRLF files before splitting (the text source already drops it; CSV may not).
    line = F.regexp_replace(F.col(C.B_RAW), "\r$", "")
    parts = F.split(line, _regex_quote(sep), -1)
    n = len(names)
    ok = F.size(parts) == F.lit(n)
    cols = {name: F.when(ok, parts.getItem(i)) for i, name in enumerate(names)}
    parse_error = F.when(
        ~ok, F.format_string(f"expected {n} fields separated by {sep!r}, got %d", F.size(parts))
    )
    return lines.select(
        *[c.alias(k) for k, c in cols.items()],
        F.col(C.B_RAW),
        F.col(C.B_SOURCE_FILE),
        parse_error.alias(C.B_PARSE_ERROR),
    )


def _regex_quote(sep: str) -> str:
    return "".join("\\" + ch if ch in r".^$*+?{}[]\|()" else ch for ch in sep)


class SourceAdapter(abc.ABC):
    """One source's files -> bronze frames per stream for one batch."""

    profile: SourceProfile

    @property
    def name(self) -> str:
        return self.profile.name

    @abc.abstractmethod
    def batches(self, path: Path) -> list[str]:
        """The batch labels available under ``path`` (one-shot datasets: a single label)."""

    @abc.abstractmethod
    def read_batch(self, spark: SparkSession, path: Path, batch: str) -> dict[str, DataFrame]:
        """``{stream: frame}`` in bronze shape (see :func:`to_bronze_shape`) for the streams the batch has."""

    def check_path(self, path: Path, required: Sequence[str]) -> None:
        """Fail with a clear message when the folder or one of its required files is absent."""
        if not path.is_dir():
            raise SourceMissingError(
                f"{self.name}: input folder {path} not found. Set data.path (or data.datasets_dir) to where "
                f"the {self.name} files are; see docs/sources.md."
            )
        missing = [f for f in required if not (path / f).exists()]
        if missing:
            raise SourceMissingError(f"{self.name}: {path} lacks {', '.join(missing)}; see docs/sources.md")
