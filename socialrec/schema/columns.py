"""Canonical column names. Functions take these as parameter defaults (``col_user=USER_ID``)."""
from __future__ import annotations

# identities
USER_ID = "user_id"
ITEM_ID = "item_id"
EVENT_ID = "event_id"
REVIEW_ID = "review_id"
SRC_USER_ID = "src_user_id"
DST_USER_ID = "dst_user_id"

# events
EVENT_TYPE = "event_type"
VALUE = "value"
TS = "ts"
SOURCE = "source"

# social edges
RELATION = "relation"
WEIGHT = "weight"
DIRECTED = "directed"

# users
FIRST_SEEN_TS = "first_seen_ts"
ATTRIBUTES = "attributes"

# items
TITLE = "title"
DESCRIPTION = "description"
CATEGORY = "category"
BRAND = "brand"
PRICE = "price"
CURRENCY = "currency"
UPDATED_TS = "updated_ts"

# reviews
RATING = "rating"
TEXT = "text"
HELPFULNESS = "helpfulness"

# lineage and bookkeeping
BATCH_ID = "batch_id"
TABLE = "table_name"  # not "table": a reserved word in both engines' SQL
REASONS = "reasons"
RECORD = "record"
RECORD_HASH = "record_hash"
QUARANTINED_AT = "quarantined_at"
INPUT_ROWS = "input_rows"
KEPT_ROWS = "kept_rows"
DUPLICATE_ROWS = "duplicate_rows"
QUARANTINED_ROWS = "quarantined_rows"
AUDITED_AT = "audited_at"

# controlled vocabularies (DESIGN §2)
EVENT_TYPES: tuple[str, ...] = (
    "view", "click", "cart", "purchase", "favourite", "like", "comment", "share", "rating", "play",
)
RELATIONS: tuple[str, ...] = ("follow", "friend", "trust", "interaction")
LAYERS: tuple[str, ...] = ("bronze", "silver", "gold")
