"""Every lake table, declared once as a typed contract.

A :class:`TableSpec` names the table (``layer.name`` is also its SQL name on both engines), its Spark
schema, its keys (used by merge/upsert), partition columns, and the columns that hold personal data
(used by ``forget_user``). Later stages add their tables to this module with :func:`register`.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from socialrec.schema import columns as C

Layer = Literal["bronze", "silver", "gold"]
# How a column holds personal data: a raw platform user id, a pseudonym, or free text / a JSON record
# that may contain a raw id (deleted by a whole-token match when forgetting a user).
PiiForm = Literal["raw_id", "pseudonym", "record"]


@dataclass(frozen=True)
class TableSpec:
    """A table contract. ``schema`` is authoritative: writes that differ from it are refused."""

    name: str
    layer: Layer
    schema: StructType
    keys: tuple[str, ...]
    description: str
    partition_by: tuple[str, ...] = ()
    pii: Mapping[str, PiiForm] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = self.schema.fieldNames()
        unknown = [c for c in (*self.keys, *self.partition_by, *self.pii) if c not in names]
        if unknown:
            raise ValueError(f"{self.qualified_name}: keys/partitions/pii name unknown columns {unknown}")

    @property
    def qualified_name(self) -> str:
        """``layer.name``: the SQL name analysts use on both engines."""
        return f"{self.layer}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return self.schema.fieldNames()


_REGISTRY: dict[str, TableSpec] = {}


def register(spec: TableSpec) -> TableSpec:
    """Add ``spec`` to the registry (idempotent for the identical spec)."""
    existing = _REGISTRY.get(spec.qualified_name)
    if existing is not None and existing != spec:
        raise ValueError(f"{spec.qualified_name} is already registered with a different contract")
    _REGISTRY[spec.qualified_name] = spec
    return spec


def get_table(qualified_name: str) -> TableSpec:
    try:
        return _REGISTRY[qualified_name]
    except KeyError:
        raise KeyError(f"unknown table {qualified_name!r}; known: {sorted(_REGISTRY)}") from None


def all_tables() -> Iterator[TableSpec]:
    """Every registered table, in layer then name order."""
    order = {layer: i for i, layer in enumerate(C.LAYERS)}
    yield from sorted(_REGISTRY.values(), key=lambda s: (order[s.layer], s.name))


def _f(name: str, dtype: DataType, nullable: bool = True) -> StructField:
    return StructField(name, dtype, nullable)


def _s() -> StringType:
    return StringType()


# ------------------------------------------------------------------------------------------- bronze
# What arrived, as strings, one table per stream for every source (adapters map each dataset's files onto
# the canonical field names), plus lineage. Partitioned by (source, batch) so re-ingesting a batch
# replaces exactly that batch. Raw user ids live only here.


def _bronze(name: str, fields: list[str], raw_ids: tuple[str, ...], description: str) -> TableSpec:
    schema = StructType(
        [_f(c, _s()) for c in fields]
        + [
            _f(C.B_SOURCE, _s(), False),
            _f(C.B_SOURCE_FILE, _s()),
            _f(C.B_BATCH_ID, _s(), False),
            _f(C.B_INGESTED_AT, TimestampType(), False),
            _f(C.B_RAW, _s()),
            _f(C.B_PARSE_ERROR, _s()),
        ]
    )
    return register(
        TableSpec(
            name=name,
            layer="bronze",
            schema=schema,
            keys=(C.B_SOURCE, C.B_BATCH_ID),
            partition_by=(C.B_SOURCE, C.B_BATCH_ID),
            # An unparseable line is kept whole in _raw, raw ids and all: a record to forget, kept out of stats.
            pii={**{c: "raw_id" for c in raw_ids}, **({C.B_RAW: "record"} if raw_ids else {})},
            description=description,
        )
    )


BRONZE_USERS = _bronze(
    "users", [C.USER_ID, C.SIGNUP_TS, C.COUNTRY, C.ATTRIBUTES], (C.USER_ID,), "Users as they arrived (raw ids)."
)
BRONZE_ITEMS = _bronze(
    "items",
    [C.ITEM_ID, C.TITLE, C.DESCRIPTION, C.CATEGORY, C.BRAND, C.PRICE, C.CURRENCY, C.UPDATED_TS, C.TAGS],
    (),
    "Catalogue rows as they arrived (tags: '|'-separated).",
)
BRONZE_EVENTS = _bronze(
    "events",
    [C.EVENT_ID, C.USER_ID, C.ITEM_ID, C.EVENT_TYPE, C.VALUE, C.TS, C.EVENT_CATEGORY],
    (C.USER_ID,),
    "Behaviour events as they arrived; category = the item category the event carried, if any.",
)
BRONZE_SOCIAL_EDGES = _bronze(
    "social_edges",
    [C.SRC_USER_ID, C.DST_USER_ID, C.RELATION, C.WEIGHT, C.DIRECTED, C.TS],
    (C.SRC_USER_ID, C.DST_USER_ID),
    "Social edges as they arrived.",
)
BRONZE_REVIEWS = _bronze(
    "reviews",
    [C.REVIEW_ID, C.USER_ID, C.ITEM_ID, C.RATING, C.TEXT, C.HELPFULNESS, C.TS],
    (C.USER_ID,),
    "Reviews as they arrived.",
)
BRONZE_BY_STREAM: dict[str, TableSpec] = {
    "users": BRONZE_USERS,
    "items": BRONZE_ITEMS,
    "events": BRONZE_EVENTS,
    "social_edges": BRONZE_SOCIAL_EDGES,
    "reviews": BRONZE_REVIEWS,
}

BRONZE_BATCHES = register(
    TableSpec(
        name="batches",
        layer="bronze",
        schema=StructType(
            [
                _f(C.SOURCE, _s(), False),
                _f(C.BATCH_ID, _s(), False),
                _f("streams", ArrayType(_s(), False), False),
                _f("rows", _s(), False),  # JSON {stream: rows}; see SILVER_USERS.attributes for why not a map
                _f(C.B_INGESTED_AT, TimestampType(), False),
            ]
        ),
        keys=(C.SOURCE, C.BATCH_ID),
        description="One row per ingested batch, written after all its streams: the batch is complete.",
    )
)

# ------------------------------------------------------------------------------------------- silver

SILVER_USERS = register(
    TableSpec(
        name="users",
        layer="silver",
        schema=StructType(
            [
                _f(C.USER_ID, _s(), False),
                _f(C.FIRST_SEEN_TS, TimestampType()),
                # JSON object text, not map<string,string>: delta-rs 1.6 MERGE fails on map columns
                # (arrow "Unrecognized type" / a panic). SQL: from_json(attributes, 'map<string,string>').
                _f(C.ATTRIBUTES, _s()),
                _f(C.SOURCE, _s(), False),
                _f(C.BATCH_ID, _s(), False),
            ]
        ),
        keys=(C.USER_ID,),
        pii={C.USER_ID: "pseudonym"},
        description="One row per pseudonymised user, with the first time the platform saw them.",
    )
)

SILVER_ITEMS = register(
    TableSpec(
        name="items",
        layer="silver",
        schema=StructType(
            [
                _f(C.ITEM_ID, _s(), False),
                _f(C.TITLE, _s()),
                _f(C.DESCRIPTION, _s()),
                _f(C.CATEGORY, _s()),
                _f(C.BRAND, _s()),
                _f(C.PRICE, DoubleType()),
                _f(C.CURRENCY, _s()),
                _f(C.UPDATED_TS, TimestampType()),
                _f(C.TAGS, ArrayType(_s(), False)),
                _f(C.SOURCE, _s(), False),
                _f(C.BATCH_ID, _s(), False),
            ]
        ),
        keys=(C.ITEM_ID,),
        description="Item catalogue: cleaned text, category, brand, price (>= 0, null if unknown), tags.",
    )
)

SILVER_EVENTS = register(
    TableSpec(
        name="events",
        layer="silver",
        schema=StructType(
            [
                _f(C.EVENT_ID, _s(), False),
                _f(C.USER_ID, _s(), False),
                _f(C.ITEM_ID, _s(), False),
                _f(C.EVENT_TYPE, _s(), False),
                _f(C.VALUE, DoubleType()),
                _f(C.TS, TimestampType(), False),
                _f(C.SOURCE, _s(), False),
                _f(C.BATCH_ID, _s(), False),
            ]
        ),
        keys=(C.EVENT_ID,),
        pii={C.USER_ID: "pseudonym"},
        description=f"User behaviour events; event_type in {', '.join(C.EVENT_TYPES)}; value = rating or count.",
    )
)

SILVER_SOCIAL_EDGES = register(
    TableSpec(
        name="social_edges",
        layer="silver",
        schema=StructType(
            [
                _f(C.SRC_USER_ID, _s(), False),
                _f(C.DST_USER_ID, _s(), False),
                _f(C.RELATION, _s(), False),
                _f(C.WEIGHT, DoubleType(), False),
                _f(C.DIRECTED, BooleanType(), False),
                _f(C.TS, TimestampType()),
                _f(C.SOURCE, _s(), False),
                _f(C.BATCH_ID, _s(), False),
            ]
        ),
        keys=(C.SRC_USER_ID, C.DST_USER_ID, C.RELATION),
        pii={C.SRC_USER_ID: "pseudonym", C.DST_USER_ID: "pseudonym"},
        description=f"User-user graph; relation in {', '.join(C.RELATIONS)}; weight > 0.",
    )
)

SILVER_REVIEWS = register(
    TableSpec(
        name="reviews",
        layer="silver",
        schema=StructType(
            [
                _f(C.REVIEW_ID, _s(), False),
                _f(C.USER_ID, _s(), False),
                _f(C.ITEM_ID, _s(), False),
                _f(C.RATING, DoubleType()),
                _f(C.TEXT, _s()),
                _f(C.HELPFULNESS, DoubleType()),
                _f(C.TS, TimestampType()),
                _f(C.SOURCE, _s(), False),
                _f(C.BATCH_ID, _s(), False),
            ]
        ),
        keys=(C.REVIEW_ID,),
        pii={C.USER_ID: "pseudonym"},
        description="Reviews with rating, text and helpfulness.",
    )
)

SILVER_QUARANTINE = register(
    TableSpec(
        name="quarantine",
        layer="silver",
        schema=StructType(
            [
                _f(C.TABLE, _s(), False),
                _f(C.SOURCE, _s(), False),
                _f(C.RECORD_HASH, _s(), False),
                _f(C.REASONS, ArrayType(_s(), False), False),
                _f(C.RECORD, _s(), False),
                _f(C.BATCH_ID, _s(), False),
                _f(C.QUARANTINED_AT, TimestampType(), False),
            ]
        ),
        keys=(C.TABLE, C.RECORD_HASH),
        # The raw record may carry a raw user id: forgetting a user matches it inside the JSON text.
        pii={C.RECORD: "record"},
        description="Rejected input rows, with every reason that applies and the raw record as JSON.",
    )
)

SILVER_AUDIT = register(
    TableSpec(
        name="audit",
        layer="silver",
        schema=StructType(
            [
                _f(C.TABLE, _s(), False),
                _f(C.BATCH_ID, _s(), False),
                _f(C.SOURCE, _s(), False),
                _f(C.INPUT_ROWS, LongType(), False),
                _f(C.KEPT_ROWS, LongType(), False),
                _f(C.DUPLICATE_ROWS, LongType(), False),
                _f(C.QUARANTINED_ROWS, LongType(), False),
                _f(C.AUDITED_AT, TimestampType(), False),
            ]
        ),
        keys=(C.TABLE, C.SOURCE, C.BATCH_ID),
        description="Row accounting per batch and table: input = kept + duplicates + quarantined.",
    )
)

SILVER_BY_STREAM: dict[str, TableSpec] = {
    "users": SILVER_USERS,
    "items": SILVER_ITEMS,
    "events": SILVER_EVENTS,
    "social_edges": SILVER_SOCIAL_EDGES,
    "reviews": SILVER_REVIEWS,
}


# --------------------------------------------------------------------------------------------- gold
# Features, embeddings and the social graph (DESIGN §4). Columns holding pseudonyms are listed in ``pii`` so
# ``forget_user`` covers them; lists of pseudonyms are stored as comma-joined text ("record" form).

GOLD_ITEM_TEXT = register(
    TableSpec(
        name="item_text",
        layer="gold",
        schema=StructType(
            [
                _f(C.ITEM_ID, _s(), False),
                _f(C.SOURCE, _s(), False),
                _f("text", _s(), False),
                _f("text_hash", _s(), False),
            ]
        ),
        keys=(C.ITEM_ID,),
        description="The text embedded for each item (title, description, category, brand, tags) and its hash.",
    )
)

GOLD_TEXT_EMBEDDINGS = register(
    TableSpec(
        name="text_embeddings",
        layer="gold",
        schema=StructType(
            [
                _f("model", _s(), False),
                _f("text_hash", _s(), False),
                _f("embedding", ArrayType(FloatType(), False), False),
                _f("dim", IntegerType(), False),
                _f("created_at", TimestampType(), False),
            ]
        ),
        keys=("model", "text_hash"),
        description="Sentence-model embeddings cached by (model, text hash): reruns embed only new texts.",
    )
)

GOLD_SOCIAL_GRAPH = register(
    TableSpec(
        name="social_graph",
        layer="gold",
        schema=StructType(
            [
                _f(C.SRC_USER_ID, _s(), False),
                _f(C.DST_USER_ID, _s(), False),
                _f("strength", DoubleType(), False),
                _f("relations", ArrayType(_s(), False), False),
                _f(C.SOURCE, _s(), False),
            ]
        ),
        keys=(C.SRC_USER_ID, C.DST_USER_ID),
        pii={C.SRC_USER_ID: "pseudonym", C.DST_USER_ID: "pseudonym"},
        description="One directed edge per ordered user pair (undirected relations in both directions) with a tie "
        "strength from relation weights and interaction overlap.",
    )
)

GOLD_NEIGHBOURHOODS = register(
    TableSpec(
        name="neighbourhoods",
        layer="gold",
        schema=StructType(
            [
                _f(C.USER_ID, _s(), False),
                _f("hop", IntegerType(), False),
                _f("neighbour_id", _s(), False),
                _f("strength", DoubleType(), False),
                _f("rank", IntegerType(), False),
                _f(C.SOURCE, _s(), False),
            ]
        ),
        keys=(C.USER_ID, "hop", "neighbour_id"),
        pii={C.USER_ID: "pseudonym", "neighbour_id": "pseudonym"},
        description="Sampled social neighbourhoods: up to K at 1 hop, K2 at 2 hops, by tie strength, seeded.",
    )
)

GOLD_SOCIAL_PROOF = register(
    TableSpec(
        name="social_proof",
        layer="gold",
        schema=StructType(
            [
                _f(C.USER_ID, _s(), False),
                _f(C.ITEM_ID, _s(), False),
                _f("n_bought", LongType(), False),
                _f("n_liked", LongType(), False),
                _f("n_rated", LongType(), False),
                _f("n_reviewed", LongType(), False),
                _f("n_neighbours", LongType(), False),
                _f("top_neighbours", _s(), False),
                _f("cutoff_ts", TimestampType(), False),
                _f(C.SOURCE, _s(), False),
            ]
        ),
        keys=(C.USER_ID, C.ITEM_ID, "cutoff_ts"),
        pii={C.USER_ID: "pseudonym", "top_neighbours": "record"},
        description="Per (user, item): how many 1-hop neighbours bought/liked/rated/reviewed it before the cutoff, "
        "and the strongest of them (comma-joined pseudonyms).",
    )
)

GOLD_USER_GRAPH_FEATURES = register(
    TableSpec(
        name="user_graph_features",
        layer="gold",
        schema=StructType(
            [
                _f(C.USER_ID, _s(), False),
                _f("in_degree", LongType(), False),
                _f("out_degree", LongType(), False),
                _f("component_id", _s(), False),
                _f("component_size", LongType(), False),
                _f("pagerank", DoubleType(), False),
                _f(C.SOURCE, _s(), False),
            ]
        ),
        keys=(C.USER_ID,),
        pii={C.USER_ID: "pseudonym"},
        # component_id is a hash of the component's smallest member id, never a member's pseudonym itself:
        # forgetting one user must not delete the rows of everyone in their component.
        description="Per-user graph statistics: degrees, connected component (id + size), PageRank.",
    )
)


# Behaviour features, as of a cutoff: nothing at or after ``cutoff_ts`` contributes.
FEATURE_WINDOWS_DAYS: tuple[int, ...] = (7, 30)


def user_count_columns() -> list[str]:
    """``n_<event type>_<window>`` for every event type and window (days, then ``all``)."""
    windows = [f"{d}d" for d in FEATURE_WINDOWS_DAYS] + ["all"]
    return [f"n_{t}_{w}" for t in C.EVENT_TYPES for w in windows]


GOLD_USER_FEATURES = register(
    TableSpec(
        name="user_features",
        layer="gold",
        schema=StructType(
            [_f(C.USER_ID, _s(), False), _f("cutoff_ts", TimestampType(), False), _f(C.SOURCE, _s(), False)]
            + [_f(c, LongType(), False) for c in user_count_columns()]
            + [
                _f("first_ts", TimestampType()),
                _f("last_ts", TimestampType()),
                _f("recency_days", DoubleType()),
                _f("active_days", LongType(), False),
                _f("top_category", _s()),
                _f("category_affinity", _s()),  # JSON {category: share of interactions}, top 5
                _f("price_mean_viewed", DoubleType()),
                _f("price_mean_purchased", DoubleType()),
            ]
        ),
        keys=(C.USER_ID, "cutoff_ts"),
        pii={C.USER_ID: "pseudonym"},
        description="Per-user behaviour features as of cutoff_ts: counts by event type and window, recency, "
        "active days, category and price affinity.",
    )
)

GOLD_ITEM_FEATURES = register(
    TableSpec(
        name="item_features",
        layer="gold",
        schema=StructType(
            [
                _f(C.ITEM_ID, _s(), False),
                _f("cutoff_ts", TimestampType(), False),
                _f(C.SOURCE, _s(), False),
                _f("popularity_decayed", DoubleType(), False),
                _f("n_events", LongType(), False),
                _f("n_users", LongType(), False),
                _f("n_viewers", LongType(), False),
                _f("n_purchasers", LongType(), False),
                _f("conversion_view_purchase", DoubleType()),
                _f("rating_mean", DoubleType()),
                _f("rating_count", LongType(), False),
                _f("review_count", LongType(), False),
            ]
        ),
        keys=(C.ITEM_ID, "cutoff_ts"),
        description="Per-item features as of cutoff_ts: time-decayed popularity, view->purchase conversion, "
        "rating stats, review count.",
    )
)

GOLD_USER_SEQUENCES = register(
    TableSpec(
        name="user_sequences",
        layer="gold",
        schema=StructType(
            [
                _f(C.USER_ID, _s(), False),
                _f("cutoff_ts", TimestampType(), False),
                _f(C.SOURCE, _s(), False),
                _f("item_ids", ArrayType(_s(), False), False),
                _f("event_types", ArrayType(_s(), False), False),
                _f("event_ts", ArrayType(TimestampType(), False), False),
            ]
        ),
        keys=(C.USER_ID, "cutoff_ts"),
        pii={C.USER_ID: "pseudonym"},
        description="Each user's last N interactions before cutoff_ts, oldest first.",
    )
)


# Training inputs (DESIGN §5, §7)

GOLD_USER_INDEX = register(
    TableSpec(
        name="user_index",
        layer="gold",
        schema=StructType(
            [_f(C.USER_ID, _s(), False), _f("user_idx", IntegerType(), False), _f(C.SOURCE, _s(), False)]
        ),
        keys=(C.USER_ID,),
        pii={C.USER_ID: "pseudonym"},
        description="Contiguous model index per user; existing users keep theirs across reruns, new users are "
        "appended (a forgotten user's index is never reused).",
    )
)

GOLD_ITEM_INDEX = register(
    TableSpec(
        name="item_index",
        layer="gold",
        schema=StructType(
            [_f(C.ITEM_ID, _s(), False), _f("item_idx", IntegerType(), False), _f(C.SOURCE, _s(), False)]
        ),
        keys=(C.ITEM_ID,),
        description="Contiguous model index per item; stable across reruns, new items appended.",
    )
)

GOLD_EXAMPLES = register(
    TableSpec(
        name="examples",
        layer="gold",
        schema=StructType(
            [
                _f("split", _s(), False),
                _f(C.USER_ID, _s(), False),
                _f("user_idx", IntegerType(), False),
                _f(C.ITEM_ID, _s(), False),
                _f("item_idx", IntegerType(), False),
                _f(C.EVENT_ID, _s(), False),
                _f(C.EVENT_TYPE, _s(), False),
                _f(C.TS, TimestampType(), False),
                _f("seq_item_idx", ArrayType(IntegerType(), False), False),
                _f("neighbour_idx", ArrayType(IntegerType(), False), False),
                _f(C.SOURCE, _s(), False),
            ]
        ),
        keys=(C.EVENT_ID,),
        partition_by=("split",),
        pii={C.USER_ID: "pseudonym"},
        description="Training/validation/test examples of the global temporal split: a positive (user, item) "
        "interaction, the user's previous items (oldest first) and sampled 1-hop neighbours.",
    )
)


# Recommendations (DESIGN §6)

# What backs a reason. Typed fields, all optional; never another user's id or name: social reasons carry
# counts only.
REASON_EVIDENCE = StructType(
    [
        _f("count", LongType()),  # neighbours who acted (social) or users in the window (popular, trending)
        _f("action", _s()),  # theirs (social: bought, liked) or yours (similar: rated, bought, liked, carted, played, viewed)
        _f(C.ITEM_ID, _s()),  # your own item (similar)
        _f(C.TITLE, _s()),  # its title
        _f(C.RATING, DoubleType()),  # your rating of it
        _f("similarity", DoubleType()),  # text cosine similarity of the two items
        _f(C.CATEGORY, _s()),
        _f("window_days", IntegerType()),
        _f("popularity_rank", IntegerType()),  # rank in the window (overall or within the category)
    ]
)
# Nested fields stay nullable: Spark derives them nullable, and the lake compares shapes, not nullability.
REASON = StructType([_f("kind", _s()), _f("text", _s()), _f("evidence", REASON_EVIDENCE)])

GOLD_RECOMMENDATIONS = register(
    TableSpec(
        name="recommendations",
        layer="gold",
        schema=StructType(
            [
                _f(C.USER_ID, _s(), False),
                _f("rank", IntegerType(), False),
                _f(C.ITEM_ID, _s(), False),
                _f("score", DoubleType(), False),
                _f(C.REASONS, ArrayType(REASON), False),
                _f("model_name", _s(), False),
                _f("model_version", _s(), False),
                _f("run_id", _s(), False),
                _f("generated_at", TimestampType(), False),
                _f(C.SOURCE, _s(), False),
                _f("run_date", DateType(), False),
            ]
        ),
        keys=(C.SOURCE, "run_date", C.USER_ID, "rank"),
        # By source too, so a run of one dataset never replaces another's recommendations of the same date.
        partition_by=(C.SOURCE, "run_date"),
        pii={C.USER_ID: "pseudonym"},
        description="Top-K recommendations per user and run date, best first (rank 1), with the blended score, "
        "reasons (kind, text, evidence; counts only, never other users) and the model that scored them. "
        "Rerunning a run date replaces its (source, run_date) partition.",
    )
)


# Evaluation (DESIGN §7)

GOLD_EVAL_SPLITS = register(
    TableSpec(
        name="eval_splits",
        layer="gold",
        schema=StructType(
            [
                _f("protocol", _s(), False),
                _f("split_seed", IntegerType(), False),
                _f("split", _s(), False),
                _f(C.USER_ID, _s(), False),
                _f("user_idx", IntegerType(), False),
                _f("item_idx", IntegerType(), False),
                _f(C.SOURCE, _s(), False),
            ]
        ),
        keys=(C.SOURCE, "protocol", "user_idx", "item_idx"),
        # One partition per (source, protocol): a rerun replaces only its own protocol's split.
        partition_by=(C.SOURCE, "protocol"),
        pii={C.USER_ID: "pseudonym"},
        description="The distinct positive (user, item) pairs of an evaluation protocol, each in one split "
        "(train / validation / test): the global temporal split of gold.examples, or the literature's seeded "
        "per-user random split.",
    )
)

GOLD_EVALUATION = register(
    TableSpec(
        name="evaluation",
        layer="gold",
        schema=StructType(
            [
                _f("model", _s(), False),
                _f("dataset", _s(), False),
                _f("protocol", _s(), False),
                _f("split", _s(), False),
                _f("metric", _s(), False),
                _f("k", IntegerType(), False),
                _f("slice", _s(), False),
                _f("value", DoubleType(), False),
                _f("users", LongType(), False),
                _f("seed", IntegerType(), False),
                _f("run_id", _s(), False),
                _f("evaluated_at", TimestampType(), False),
            ]
        ),
        keys=("run_id", "model", "seed", "split", "metric", "k", "slice"),
        partition_by=("dataset",),
        description="Offline metrics, one row per (evaluation run, model, seed, split, metric, k, slice): full "
        "ranking over all items minus each user's earlier items. Aggregates only, no per-user rows. run_id is the "
        "evaluation's MLflow run.",
    )
)
