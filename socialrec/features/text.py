"""Item text for the sentence model, and which texts still need embedding (DESIGN §4).

Everything here is Spark built-ins: the text is assembled, cut and hashed on the executors, and the cache
lookup is an anti-join, so no row ever goes through the driver or a Python worker.

The text of an item is its non-blank fields joined in a fixed order::

    <title>. <description>. Category: <category>. Brand: <brand>. Tags: <tag1>, <tag2>

Whitespace runs become one space and trailing full stops/spaces of each field are dropped (so a title
ending in "." does not give ".."); the result is cut to ``max_chars`` characters. ``text_hash`` is the
SHA-256 of that exact text and nothing else: it does not depend on the model, so one text embedded by two
models is two cache rows with the same hash, and an item whose text did not change keeps its hash (and its
cached embedding) across runs and batches.
"""
from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from socialrec.schema import columns as C
from socialrec.schema.tables import GOLD_ITEM_TEXT

logger = logging.getLogger(__name__)

TEXT = "text"
TEXT_HASH = "text_hash"
MODEL = "model"
FIELD_SEPARATOR = ". "
TAG_SEPARATOR = ", "


def _clean_part(col: Column) -> Column:
    """The field with whitespace collapsed and trailing dots/spaces stripped; null when nothing is left."""
    squeezed = F.trim(F.regexp_replace(col, r"\s+", " "))
    stripped = F.regexp_replace(squeezed, r"[\s.]+$", "")
    return F.when(stripped != "", stripped)


def _labelled(label: str, col: Column) -> Column:
    """``"<label>: <value>"``, or null when the value is null (``concat`` propagates nulls)."""
    return F.concat(F.lit(f"{label}: "), col)


def _tags(col: Column) -> Column:
    """Non-blank tags joined with ", " (order kept: adapters list the strongest first), null if none."""
    kept = F.filter(F.transform(col, lambda t: F.trim(F.regexp_replace(t, r"\s+", " "))), lambda t: t != "")
    return F.when(F.size(kept) > 0, F.array_join(kept, TAG_SEPARATOR))


def item_text_column(max_chars: int) -> Column:
    """The text expression over silver.items columns (see the module docstring for the format)."""
    joined = F.concat_ws(
        FIELD_SEPARATOR,
        _clean_part(F.col(C.TITLE)),
        _clean_part(F.col(C.DESCRIPTION)),
        _labelled("Category", _clean_part(F.col(C.CATEGORY))),
        _labelled("Brand", _clean_part(F.col(C.BRAND))),
        _labelled("Tags", _tags(F.col(C.TAGS))),
    )
    # Cut by characters (Spark's substring counts code points), then drop a space the cut may leave.
    return F.rtrim(F.substring(joined, 1, max_chars))


def item_text(items: DataFrame, max_chars: int) -> DataFrame:
    """silver.items rows -> GOLD_ITEM_TEXT rows (item_id, source, text, text_hash).

    Items with no text at all (every field null or blank, e.g. stub items derived from events without a
    category) have nothing to embed and are left out: consumers treat a missing text as "no embedding".
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    text = item_text_column(max_chars)
    return (
        items.select(F.col(C.ITEM_ID), F.col(C.SOURCE), text.alias(TEXT))
        .where(F.col(TEXT) != "")
        .withColumn(TEXT_HASH, F.sha2(F.col(TEXT), 256))
        .select(*GOLD_ITEM_TEXT.column_names)
    )


def texts_to_embed(item_text: DataFrame, cached: DataFrame, model: str) -> DataFrame:
    """Distinct (text_hash, text) of ``item_text`` that ``cached`` (GOLD_TEXT_EMBEDDINGS rows) lacks for ``model``.

    Many items can share one text (a catalogue listing the same product twice): it is embedded once.
    Only the cache's key columns are read, so the embeddings themselves are never scanned.
    """
    have = cached.where(F.col(MODEL) == F.lit(model)).select(TEXT_HASH)
    return (
        item_text.select(TEXT_HASH, TEXT)
        .dropDuplicates([TEXT_HASH])
        .join(have, on=TEXT_HASH, how="left_anti")
    )
