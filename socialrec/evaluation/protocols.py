"""Evaluation protocols (DESIGN §7), as pure DataFrame functions.

* **temporal** (the default): ``gold.examples`` already carries the global temporal split
  (train < t1 <= validation < t2 <= test); :func:`temporal_pairs` reduces it to distinct (user, item) pairs.
* **random per-user** (the literature's, for comparison with published numbers only): each user's distinct
  positive items are shuffled with a seeded hash and cut by ratio, counted exactly like RecBole's
  ``split_by_ratio`` (the library behind the published LastFM / Ciao figures): validation and test get
  ``floor(ratio * n)`` items each, train the rest, and while train keeps more than one item a split whose
  share is between 0 and 1 item gets one (so a user with 5 items is split 3/1/1 at 8:1:1).
"""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from socialrec.schema import columns as C
from socialrec.schema.tables import GOLD_EXAMPLES

USER, ITEM = "user", "item"
SPLITS = ("train", "validation", "test")


def split_counts(n: Column, ratios: Sequence[float]) -> tuple[Column, Column, Column]:
    """(train, validation, test) counts for ``n`` items, RecBole's rounding (see the module docstring)."""
    r_train, r_valid, r_test = ratios
    del r_train  # train takes the rest
    valid0 = F.floor(n * r_valid)
    test0 = F.floor(n * r_test)
    train0 = n - valid0 - test0
    bump_test = (train0 > 1) & (n * r_test > 0) & (n * r_test < 1)
    test = F.when(bump_test, test0 + 1).otherwise(test0)
    train1 = F.when(bump_test, train0 - 1).otherwise(train0)
    bump_valid = (train1 > 1) & (n * r_valid > 0) & (n * r_valid < 1)
    valid = F.when(bump_valid, valid0 + 1).otherwise(valid0)
    train = F.when(bump_valid, train1 - 1).otherwise(train1)
    return train, valid, test


def random_user_split(pairs: DataFrame, ratios: Sequence[float], seed: int) -> DataFrame:
    """``user, item, split`` for the distinct (user, item) ``pairs``, per-user random by ratio (seeded)."""
    if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-9 or min(ratios) < 0:
        raise ValueError(f"ratios must be three non-negative shares summing to 1, got {list(ratios)}")
    distinct = pairs.select(USER, ITEM).distinct()
    order = Window.partitionBy(USER).orderBy(F.xxhash64(F.lit(seed), F.col(USER), F.col(ITEM)), F.col(ITEM))
    n = F.count(F.lit(1)).over(Window.partitionBy(USER))
    ranked = distinct.withColumn("_pos", F.row_number().over(order) - 1).withColumn("_n", n)
    train, valid, _ = split_counts(F.col("_n"), ratios)
    split = F.when(F.col("_pos") < train, "train").when(F.col("_pos") < train + valid, "validation").otherwise("test")
    return ranked.select(USER, ITEM, split.alias("split"))


def temporal_pairs(examples: DataFrame, user_col: str = "user_idx", item_col: str = "item_idx") -> DataFrame:
    """``user, item, split`` from ``gold.examples``: distinct pairs, each in the earliest split it occurs in
    (a repeat purchase in a later split is not a new item to find)."""
    first = F.min(F.when(F.col("split") == "train", 0).when(F.col("split") == "validation", 1).otherwise(2))
    per_pair = examples.groupBy(F.col(user_col).alias(USER), F.col(item_col).alias(ITEM)).agg(first.alias("_s"))
    return per_pair.select(USER, ITEM, F.element_at(F.array(*[F.lit(s) for s in SPLITS]), F.col("_s") + 1).alias("split"))


def protocol_pairs(examples: DataFrame, protocol: str, ratios: Sequence[float], seed: int) -> DataFrame:
    """``user_id, user_idx, item_idx, split`` for ``gold.examples``' distinct positive pairs under ``protocol``
    (``temporal``: the pair's earliest split; ``random``: :func:`random_user_split`)."""
    if protocol == "temporal":
        split = temporal_pairs(examples)
    elif protocol == "random":
        split = random_user_split(examples.select(F.col("user_idx").alias(USER), F.col("item_idx").alias(ITEM)), ratios, seed)
    else:
        raise ValueError(f"unknown protocol {protocol!r} (temporal | random)")
    ids = examples.select("user_idx", C.USER_ID).distinct()
    return split.select(F.col(USER).alias("user_idx"), F.col(ITEM).alias("item_idx"), "split").join(ids, "user_idx")


def protocol_examples(examples: DataFrame, splits: DataFrame, sequence_length: int, *, bag: bool = False,
                      seed: int = 0) -> DataFrame:
    """``gold.examples``-shaped rows relabelled by a protocol's ``splits(user_idx, item_idx, split)``.

    One example per (user, item) pair (its earliest event: implicit feedback, as in the literature's random
    protocol). A training example's sequence holds *training* items only, so no item the protocol holds out can
    reach a model input; other splits' examples get an empty sequence (their queries are built from the training
    history at evaluation time). Which training items:

    * ``bag=False``: the user's previous ``sequence_length`` training items in time;
    * ``bag=True`` (the random protocol's default, ``evaluate.random_sequences``): the user's *other* training
      items, the first ``sequence_length`` in a seeded hash order. The random split ignores time, so "previous"
      means little there (on LastFM every pair has the same timestamp), and the evaluation's query is the
      user's training items as a whole; with "previous" the first examples of every user had (almost) empty
      inputs, unlike any query.

    ``bag=True`` gathers each user's training items on every one of their rows before slicing, so it costs the
    square of the largest user's item count (fine for the public datasets it is meant for).
    """
    first = Window.partitionBy("user_idx", "item_idx").orderBy(C.TS, C.EVENT_ID)
    one = examples.withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1).drop("_n", "split")
    labelled = one.join(splits.select("user_idx", "item_idx", "split"), ["user_idx", "item_idx"]).withColumn(
        "_train", F.col("split") == "train"
    )
    if bag:
        keyed = F.struct(F.xxhash64(F.lit(seed), "user_idx", "item_idx").alias("h"), F.col("item_idx").alias("i"))
        in_hash_order = F.array_sort(F.collect_list(keyed).over(Window.partitionBy("user_idx", "_train")))
        others = F.filter(in_hash_order, lambda s: s["i"] != F.col("item_idx"))
        items = F.transform(F.slice(others, 1, sequence_length), lambda s: s["i"])
    else:
        earlier = Window.partitionBy("user_idx", "_train").orderBy(C.TS, C.EVENT_ID).rowsBetween(-sequence_length, -1)
        items = F.collect_list("item_idx").over(earlier)
    seq = F.when(F.col("_train"), items).otherwise(F.array().cast("array<int>"))
    return labelled.withColumn("seq_item_idx", seq.cast("array<int>")).select(*GOLD_EXAMPLES.column_names)
