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
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from socialrec.schema import columns as C

Layer = Literal["bronze", "silver", "gold"]
# How a column holds personal data: a raw platform user id, a pseudonym, or free text / a JSON record
# that may contain a raw id (deleted by substring match when forgetting a user).
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
            pii={c: "raw_id" for c in raw_ids},
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
