"""The platform's canonical JSON-lines feeds (docs/feeds.md), also written by the synthetic generator."""
from __future__ import annotations

import re
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from socialrec.ingest.base import (
    SourceAdapter,
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
    for name in (f"{stream}.jsonl", f"{stream}.jsonl.gz"):
        if (batch_dir / name).is_file():
            return batch_dir / name
    return None


def parse_json_lines(lines: DataFrame, stream: str) -> DataFrame:
    """Bronze shape from JSON lines: every field kept as its JSON text (numbers, booleans and objects
    included); a line that is not a JSON object keeps null fields and ``_parse_error``."""
    fields = bronze_columns(stream)
    schema = StructType([StructField(f, StringType()) for f in fields] + [StructField(_CORRUPT, StringType())])
    parsed = lines.withColumn(
        "_j", F.from_json(C.B_RAW, schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT})
    )
    bad = F.col(f"_j.{_CORRUPT}").isNotNull() | F.col("_j").isNull() | (F.trim(F.col(C.B_RAW)) == "")
    parsed = parsed.withColumn(C.B_PARSE_ERROR, F.when(bad, F.lit("malformed JSON: not one JSON object per line")))
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
        out: dict[str, DataFrame] = {}
        for stream in C.STREAMS:
            f = stream_file(path / batch, stream)
            if f is not None:
                out[stream] = parse_json_lines(read_lines(spark, str(f)), stream)
        return out
