"""Training inputs, built by Spark from the gold tables (pure DataFrame -> DataFrame functions).

* :func:`training_rows`: one row per training example with fixed-width int arrays (what petastorm needs:
  its Arrow reader refuses ragged arrays). The sequence is **left**-padded with -1 so the most recent item is
  always last; neighbours are right-padded with -1.
* :func:`query_rows`: one row per evaluation user of a split: the user's state at the split point (their last
  items before it, their neighbours), the held-out items (``truth``: the split's positives that are not already
  among the excluded items) and the items never ranked for them (``exclude``: positives of the earlier splits).
  Users with an empty truth are dropped.
* :func:`item_catalogue` / :func:`item_positive_counts`: one row per item index (catalogue-sized, the only
  data collected to the driver; it becomes buffers of the model, like a broadcast).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from socialrec.schema import columns as C

PAD = -1


def pad_left(col: Column, length: int) -> Column:
    """The last ``length`` values of an int array, left-padded with -1 to exactly ``length``."""
    tail = F.slice(col, F.greatest(F.size(col) - length + 1, F.lit(1)), length)
    return F.concat(F.array_repeat(F.lit(PAD), F.lit(length) - F.size(tail)), tail).cast("array<int>")


def pad_right(col: Column, length: int) -> Column:
    """The first ``length`` values of an int array, right-padded with -1 to exactly ``length``."""
    head = F.slice(col, 1, length)
    return F.concat(head, F.array_repeat(F.lit(PAD), F.lit(length) - F.size(head))).cast("array<int>")


def training_rows(examples: DataFrame, seq_len: int, n_neighbours: int) -> DataFrame:
    """``user_idx, item_idx, seq[seq_len], neighbours[n_neighbours]`` for the ``train`` split.

    The target item itself is dropped from the example's sequence: its own funnel (the view and cart just
    before the purchase) would teach the model to copy the last item, a shortcut that a batch job scoring
    users at a split point never sees (the evaluation queries are cut at the split point, and the user's
    earlier positives are excluded from ranking anyway).
    """
    target = F.col("item_idx")
    return examples.where(F.col("split") == "train").select(
        F.col("user_idx").cast("int"),
        target.cast("int").alias("item_idx"),
        pad_left(F.filter("seq_item_idx", lambda x: x != target), seq_len).alias("seq"),
        pad_right(F.col("neighbour_idx"), n_neighbours).alias("neighbours"),
    )


def user_item_bags(history: DataFrame, size: int) -> DataFrame:
    """``user_idx, items``: each user's ``size`` most recent distinct training items (``history``: ``user_idx,
    item_idx, ts, event_id``), newest first; what a neighbour looks like to the social branch when
    ``train.model.neighbour_items`` is set."""
    latest = history.groupBy("user_idx", "item_idx").agg(F.max(F.struct(C.TS, C.EVENT_ID)).alias("_last"))
    newest_first = Window.partitionBy("user_idx").orderBy(F.col("_last").desc(), "item_idx")
    return (latest.withColumn("_r", F.row_number().over(newest_first)).where(F.col("_r") <= size)
            .groupBy("user_idx")
            .agg(F.transform(F.array_sort(F.collect_list(F.struct("_r", "item_idx"))), lambda s: s["item_idx"])
                 .cast("array<int>").alias("items")))


def split_start(examples: DataFrame, split: str) -> Any:
    """The first timestamp of ``split`` (= its split point t1 or t2: the quantile is a positive's own ts)."""
    row = examples.where(F.col("split") == split).agg(F.min(C.TS)).first()
    return None if row is None else row[0]


def query_rows(
    examples: DataFrame,
    history: DataFrame,
    split: str,
    exclude_splits: Sequence[str],
    cutoff: Any,
    seq_len: int,
    n_neighbours: int,
) -> DataFrame:
    """Evaluation users of ``split``: ``user_idx, seq, neighbours, truth, exclude``.

    The user's state is taken **at the split point** ``cutoff``: the last ``seq_len`` items of ``history``
    (``user_idx, item_idx, ts, event_id``: every indexed event, any type) strictly before it, as a batch job
    run at that moment would see them (``cutoff=None``: all of ``history``, for protocols whose history is
    already restricted, e.g. the random split's training items). Nothing after the split point (not even the views that precede a held-out
    purchase) reaches the query. ``truth`` is the split's positives minus ``exclude`` (the positives of
    ``exclude_splits``); users whose truth is empty are dropped.
    """
    in_split = examples.where(F.col("split") == split)
    latest = Window.partitionBy("user_idx").orderBy(F.col(C.TS).desc(), F.col(C.EVENT_ID).desc())
    before = (
        (history if cutoff is None else history.where(F.col(C.TS) < F.lit(cutoff)))
        .withColumn("_n", F.row_number().over(latest))
        .where(F.col("_n") <= seq_len)
        .groupBy("user_idx")
        .agg(F.array_sort(F.collect_list(F.struct(C.TS, C.EVENT_ID, "item_idx"))).alias("_h"))
        .select("user_idx", F.transform("_h", lambda h: h["item_idx"]).alias("_seq"))
    )
    neighbours = in_split.groupBy("user_idx").agg(F.first("neighbour_idx").alias("_nb"))
    held_out = in_split.groupBy("user_idx").agg(F.array_sort(F.collect_set("item_idx")).alias("_truth"))
    seen = (
        examples.where(F.col("split").isin(*exclude_splits))
        .groupBy("user_idx")
        .agg(F.array_sort(F.collect_set("item_idx")).alias("exclude"))
    )
    empty = F.array().cast("array<int>")
    return (
        held_out.join(neighbours, "user_idx")
        .join(before, "user_idx", "left")
        .join(seen, "user_idx", "left")
        .select(
            F.col("user_idx").cast("int"),
            pad_left(F.coalesce("_seq", empty), seq_len).alias("seq"),
            pad_right(F.coalesce("_nb", empty), n_neighbours).alias("neighbours"),
            F.array_except("_truth", F.coalesce("exclude", empty)).cast("array<int>").alias("truth"),
            F.coalesce("exclude", empty).cast("array<int>").alias("exclude"),
        )
        .where(F.size("truth") > 0)
    )


def _dense_ids(values: DataFrame, col: str, id_col: str) -> DataFrame:
    """1.. ids for the distinct non-null values of ``col`` in value order (0 is kept for unknown)."""
    distinct = values.select(col).where(F.col(col).isNotNull()).distinct()
    return distinct.withColumn(id_col, F.row_number().over(Window.orderBy(col)).cast("int"))


def item_catalogue(
    item_index: DataFrame,
    items: DataFrame,
    item_text: DataFrame,
    text_embeddings: DataFrame,
    embedding_model: str,
) -> DataFrame:
    """``item_idx, category_id, brand_id, embedding`` for every indexed item (unknowns: id 0, null embedding).

    The window over distinct categories/brands has no partition: it sees one row per category, not per item.
    """
    cats = _dense_ids(items, C.CATEGORY, "category_id")
    brands = _dense_ids(items, C.BRAND, "brand_id")
    vectors = item_text.select(C.ITEM_ID, "text_hash").join(
        text_embeddings.where(F.col("model") == embedding_model).select("text_hash", "embedding"), "text_hash"
    )
    return (
        item_index.select(C.ITEM_ID, "item_idx")
        .join(items.select(C.ITEM_ID, C.CATEGORY, C.BRAND), C.ITEM_ID, "left")
        .join(cats, C.CATEGORY, "left")
        .join(brands, C.BRAND, "left")
        .join(vectors.select(C.ITEM_ID, "embedding"), C.ITEM_ID, "left")
        .select(
            F.col("item_idx").cast("int"),
            F.coalesce("category_id", F.lit(0)).alias("category_id"),
            F.coalesce("brand_id", F.lit(0)).alias("brand_id"),
            "embedding",
        )
    )


def item_positive_counts(examples: DataFrame) -> DataFrame:
    """``item_idx, n``: training positives per item (the logQ sampling distribution and MostPopular)."""
    return examples.where(F.col("split") == "train").groupBy("item_idx").agg(F.count(F.lit(1)).alias("n"))
