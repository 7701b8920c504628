"""Stage ``embeddings``: silver.items -> gold.item_text and gold.text_embeddings (DESIGN §4).

For the configured source: build each item's text (:func:`~socialrec.features.text.item_text`), look its
hash up in the embedding cache for the configured model, embed only the texts the cache lacks (inside Spark,
:func:`~socialrec.features.embeddings.embed_texts`) and insert them (insert-only MERGE on model + text hash),
then record the items' texts in ``gold.item_text``.

Order and reruns: the embeddings are written before the item texts, so every text in ``gold.item_text``
already has its embedding; a run killed in between leaves texts not yet in the cache, which the rerun embeds.
A rerun with unchanged items embeds nothing (and does not even load the model); an item whose title changed
gets a new hash, so exactly its text is embedded. Embeddings of texts no item uses any more stay in the cache
(it is a cache: harmless, and reused if the text comes back). Silver never deletes items, so neither does
``gold.item_text``; an item whose fields all became blank keeps its last text.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.config import AppConfig
from socialrec.faults import checkpoint
from socialrec.features.embeddings import embed_texts, embedding_partitions
from socialrec.features.text import TEXT_HASH, item_text, texts_to_embed
from socialrec.ingest import adapter_for
from socialrec.lake import Lake
from socialrec.schema import columns as C
from socialrec.schema.tables import GOLD_ITEM_TEXT, GOLD_TEXT_EMBEDDINGS, SILVER_ITEMS

logger = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: AppConfig, *, dataset: str | None = None) -> dict[str, int]:
    """Embed the item texts of ``dataset``'s source (default ``data.dataset``) that the cache lacks.

    Returns ``{"items": items with a text, "texts": distinct texts, "embedded": texts embedded now,
    "cached": texts found in the cache, "model_texts": texts that went through the model,
    "item_text_written": new or changed rows of gold.item_text}``.
    ``embedded`` is counted from the persisted frame that is written; ``model_texts`` (an accumulator in
    the model's tasks) equals it unless a task was retried.
    """
    ecfg = cfg.embeddings
    source = adapter_for(dataset or cfg.data.dataset, cfg).name
    lake = Lake(spark, cfg)
    lake.ensure(GOLD_ITEM_TEXT)
    lake.ensure(GOLD_TEXT_EMBEDDINGS)
    stats = {"items": 0, "texts": 0, "embedded": 0, "cached": 0, "model_texts": 0, "item_text_written": 0}
    if not lake.exists(SILVER_ITEMS):
        logger.warning("%s: silver.items does not exist yet; run ingest and clean first", source)
        return stats

    spark.sparkContext.setJobDescription(f"socialrec: embeddings {source}: item texts")
    texts = item_text(lake.read(SILVER_ITEMS).where(F.col(C.SOURCE) == source), ecfg.max_chars)
    texts = texts.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        stats["items"] = texts.count()
        todo = texts_to_embed(texts, lake.read(GOLD_TEXT_EMBEDDINGS), ecfg.model).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        try:
            pending = todo.count()
            stats["texts"] = texts.select(TEXT_HASH).distinct().count()
            stats["cached"] = stats["texts"] - pending
            if pending:
                stats["embedded"], stats["model_texts"] = _embed_and_cache(spark, lake, cfg, todo, pending)
        finally:
            todo.unpersist()
        checkpoint("embeddings:before-item-text")  # crash tests: the cache written, gold.item_text not yet
        stats["item_text_written"] = _write_item_text(lake, texts, source)
    finally:
        texts.unpersist()
    logger.info(
        "embeddings %s (%s): %d items, %d distinct texts: %d embedded now, %d from the cache",
        source, ecfg.model, stats["items"], stats["texts"], stats["embedded"], stats["cached"],
    )
    return stats


def _embed_and_cache(spark: SparkSession, lake: Lake, cfg: AppConfig, todo: DataFrame, pending: int) -> tuple[int, int]:
    """Embed ``todo`` once (persisted), insert it into the cache; (rows written, texts through the model)."""
    ecfg = cfg.embeddings
    parts = embedding_partitions(pending, ecfg.batch_size, spark.sparkContext.defaultParallelism)
    counter = spark.sparkContext.accumulator(0)
    spark.sparkContext.setJobDescription(f"socialrec: embeddings: encode {pending} texts ({ecfg.model})")
    logger.info("embedding %d texts with %s in %d tasks (batch %d, %d torch thread(s) per worker)",
                pending, ecfg.model, parts, ecfg.batch_size, ecfg.torch_threads)
    embedded = embed_texts(
        todo, ecfg.model, ecfg.batch_size, ecfg.torch_threads,
        partitions=parts, counter=counter, created_at=datetime.now(UTC),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        written = embedded.count()
        spark.sparkContext.setJobDescription(f"socialrec: embeddings: cache {written} vectors")
        lake.merge(embedded, GOLD_TEXT_EMBEDDINGS, update=False)
    finally:
        embedded.unpersist()
    return written, int(counter.value)


def _write_item_text(lake: Lake, texts: DataFrame, source: str) -> int:
    """Upsert the items whose text is new or changed; an unchanged catalogue writes (and commits) nothing."""
    current = lake.read(GOLD_ITEM_TEXT).where(F.col(C.SOURCE) == source).select(C.ITEM_ID, TEXT_HASH)
    changed = texts.join(current, on=[C.ITEM_ID, TEXT_HASH], how="left_anti").persist(StorageLevel.MEMORY_AND_DISK)
    try:
        n = changed.count()
        if n:
            lake.merge(changed, GOLD_ITEM_TEXT)
        return n
    finally:
        changed.unpersist()
