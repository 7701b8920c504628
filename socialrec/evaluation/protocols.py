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
