"""The platform's canonical JSON-lines feeds (docs/feeds.md), also written by the synthetic generator."""
from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from socialrec.ingest.base import (
    SourceAdapter,
    SourceFormatError,
    SourceMissingError,
    SourceProfile,
    bronze_columns,
    read_lines,
    to_bronze_shape,
)
from socialrec.schema import columns as C

_CORRUPT = "_corrupt_record"
_BATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def stream_file(batch_dir: Path, stream: str) -> Path | None:
    """``<stream>.jsonl`` or ``<stream>.jsonl.gz`` in the batch folder, if present."""
    found = [batch_dir / n for n in (f"{stream}.jsonl", f"{stream}.jsonl.gz") if (batch_dir / n).is_file()]
    if len(found) > 1:
        # Reading only one of them would silently drop the other file's rows.
        raise SourceFormatError(
            f"{batch_dir}: both {found[0].name} and {found[1].name}; a batch has one file per stream (docs/feeds.md)"
        )
    return found[0] if found else None


def check_stream_file(path: Path) -> None:
    """Fail with a clear message on a file Spark cannot read as UTF-8 JSON lines.

    Spark fails a truncated or corrupt gzip file with an opaque JVM error in the middle of the batch, and
    reads UTF-16/32 text byte-wise (NUL-riddled lines plus a phantom last line), so both are refused here,
    before anything of the batch is written. A ``.gz`` file is decompressed once to check it (streamed).
    """
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                head = fh.read(4)
                while fh.read(1 << 20):
                    pass
        else:
            with path.open("rb") as fh:
                head = fh.read(4)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise SourceFormatError(
            f"{path}: not a complete gzip file ({type(e).__name__}: {e}); re-export or re-copy it (docs/feeds.md)"
        ) from e
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or head == b"\x00\x00\xfe\xff" or b"\x00" in head[:2]:
        raise SourceFormatError(
            f"{path}: UTF-16/UTF-32 text (byte-order mark or NUL bytes at the start); feeds are UTF-8 JSON lines "
            "(docs/feeds.md)"
        )


def json_object_per_line(lines: DataFrame, schema: StructType) -> tuple[DataFrame, Column, Column]:
    """``lines`` (``_raw`` text) parsed against ``schema`` into ``_j``, with the condition that a line is bad and
    its ``_parse_error``: shared by every JSON-lines reader (the feed, the Amazon dumps)."""
    # A line that is not valid UTF-8 (a Latin-1 byte, a stray byte) would be read with U+FFFD in place of its
    # bad bytes: different lines would collapse into the same ids, hash and "duplicate", and rows would be
    # lost. It is kept byte for byte (as Latin-1 text, which maps every byte to one character) and rejected.
    utf8 = F.is_valid_utf8(F.col(C.B_RAW))
    lines = lines.withColumns(
        {
            "_utf8": utf8,
            C.B_RAW: F.when(utf8, F.col(C.B_RAW)).otherwise(F.decode(F.col(C.B_RAW).cast("binary"), "ISO-8859-1")),
        }
    )
    with_corrupt = StructType([*schema.fields, StructField(_CORRUPT, StringType())])
    parsed = lines.withColumn(
        "_j", F.from_json(C.B_RAW, with_corrupt, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT})
    )
    # from_json reads the first JSON value and ignores what follows it, so `{..}{..}` (a missing newline) or
    # `{..} junk` would silently lose the rest of the line. The line must be exactly one value: followed by
    # a sentinel unique to the line, it must parse as a two-element array ending in that sentinel.
    sentinel = F.xxhash64(F.col(C.B_RAW)).cast("string")
    pair = F.from_json(F.concat(F.lit("["), F.col(C.B_RAW), F.lit(',"'), sentinel, F.lit('"]')), ArrayType(StringType()))
    one_value = F.coalesce((F.size(pair) == 2) & (pair.getItem(1) == sentinel), F.lit(False))
    bad = (
        ~F.col("_utf8")
        | F.col(f"_j.{_CORRUPT}").isNotNull()
        | F.col("_j").isNull()
        | (F.trim(F.col(C.B_RAW)) == "")
        | ~one_value
    )
    error = F.when(~F.col("_utf8"), F.lit("not UTF-8 text (_raw holds the line's bytes read as Latin-1)")).when(
        bad, F.lit("malformed JSON: not one JSON object per line")
    )
    return parsed, bad, error


def parse_json_lines(lines: DataFrame, stream: str) -> DataFrame:
    """Bronze shape from JSON lines: every field kept as its JSON text (numbers, booleans and objects
    included); a line that is not a JSON object keeps null fields and ``_parse_error``."""
    fields = bronze_columns(stream)
    parsed, bad, error = json_object_per_line(lines, StructType([StructField(f, StringType()) for f in fields]))
    parsed = parsed.withColumn(C.B_PARSE_ERROR, error)
    return to_bronze_shape(parsed, stream, {f: F.when(~bad, F.col(f"_j.{f}")) for f in fields})


class FeedAdapter(SourceAdapter):
    """Batches are the sub-folders of the feed root; each holds any of the five stream files."""

    def __init__(self, profile: SourceProfile) -> None:
        self.profile = profile

    def batches(self, path: Path) -> list[str]:
        if not path.is_dir():
            raise SourceMissingError(f"{self.name}: feed folder {path} not found (see docs/feeds.md)")
        found = sorted(
            d.name
            for d in path.iterdir()
            if d.is_dir() and _BATCH_NAME.match(d.name) and any(stream_file(d, s) for s in C.STREAMS)
        )
        if not found:
            raise SourceMissingError(f"{self.name}: {path} holds no batch folder with *.jsonl files (docs/feeds.md)")
        return found

    def read_batch(self, spark: SparkSession, path: Path, batch: str) -> dict[str, DataFrame]:
        files = {s: f for s in C.STREAMS if (f := stream_file(path / batch, s)) is not None}
        for f in files.values():  # every file first: a bad one fails the batch before any stream is written
            check_stream_file(f)
        return {s: parse_json_lines(read_lines(spark, str(f)), s) for s, f in files.items()}
