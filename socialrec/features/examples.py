"""Training inputs: stable contiguous indices and temporal-split examples (DESIGN §5, §7)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from socialrec.schema import columns as C
from socialrec.schema.tables import GOLD_EXAMPLES


def extend_index(spark: SparkSession, ids: DataFrame, existing: DataFrame, id_col: str, idx_col: str, source: str) -> DataFrame:
    """Index rows for ids not in ``existing``, numbered after its maximum in id order.

    Existing ids keep their index (stable across reruns); new ids are numbered with ``zipWithIndex`` over
    the sorted ids, which stays distributed (a global row_number window would pull all ids into one task).
    """
    new_ids = ids.select(id_col).distinct().join(existing.select(id_col), id_col, "left_anti")
    start_row = existing.agg(F.max(idx_col)).first()
    start = -1 if start_row is None or start_row[0] is None else int(start_row[0])
    numbered = new_ids.orderBy(id_col).rdd.zipWithIndex().map(lambda r: (r[0][0], start + 1 + r[1], source))
    schema = StructType([StructField(id_col, StringType(), False), StructField(idx_col, IntegerType(), False),
                         StructField(C.SOURCE, StringType(), False)])
    return spark.createDataFrame(numbered, schema)


def split_points(positives: DataFrame, validation_q: float, test_q: float) -> tuple[datetime, datetime]:
    """t1, t2 as quantiles of the positives' timestamps (one aggregate on the driver: two values)."""
    row = positives.agg(
        F.percentile_approx(F.col(C.TS).cast("double"), [validation_q, test_q], 10_000).alias("q")
    ).first()
    if row is None or row["q"] is None:
        raise ValueError("no positive interactions to split")
    t1, t2 = (datetime.fromtimestamp(v, UTC).replace(tzinfo=None) for v in row["q"])
    return t1, t2


def temporal_examples(
    events: DataFrame,
    user_index: DataFrame,
    item_index: DataFrame,
    neighbourhoods: DataFrame,
    *,
    target_types: Sequence[str],
    t1: datetime,
    t2: datetime,
    sequence_length: int,
    neighbours: int,
    source: str,
) -> DataFrame:
    """GOLD_EXAMPLES: every positive interaction labelled train (< t1), validation (< t2) or test.

    The sequence is the user's previous ``sequence_length`` events of any type strictly before the example
    (a bounded window frame, so no example sees its own or a later event); neighbours are the user's top
    sampled 1-hop neighbours by rank.
    """
    ev = events.join(item_index.select(C.ITEM_ID, "item_idx"), C.ITEM_ID).join(
        user_index.select(C.USER_ID, "user_idx"), C.USER_ID
    )
    history = Window.partitionBy(C.USER_ID).orderBy(C.TS, C.EVENT_ID).rowsBetween(-sequence_length, -1)
    with_seq = ev.withColumn("seq_item_idx", F.collect_list("item_idx").over(history))
    positives = with_seq.where(F.col(C.EVENT_TYPE).isin(*target_types))
    nb = (
        neighbourhoods.where((F.col("hop") == 1) & (F.col("rank") <= neighbours))
        .join(user_index.select(F.col(C.USER_ID).alias("neighbour_id"), F.col("user_idx").alias("_nidx")), "neighbour_id")
        .groupBy(C.USER_ID)
        .agg(F.transform(F.array_sort(F.collect_list(F.struct("rank", "_nidx"))), lambda s: s["_nidx"]).alias("neighbour_idx"))
    )
    split = F.when(F.col(C.TS) < F.lit(t1), "train").when(F.col(C.TS) < F.lit(t2), "validation").otherwise("test")
    out = positives.join(nb, C.USER_ID, "left").select(
        split.alias("split"),
        C.USER_ID,
        "user_idx",
        C.ITEM_ID,
        "item_idx",
        C.EVENT_ID,
        C.EVENT_TYPE,
        C.TS,
        "seq_item_idx",
        F.coalesce(F.col("neighbour_idx"), F.array().cast("array<int>")).alias("neighbour_idx"),
        F.lit(source).alias(C.SOURCE),
    )
    return out.select(*GOLD_EXAMPLES.column_names)
