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

# items (beyond DESIGN §2): free-form tags where a dataset has them (Last.fm)
TAGS = "tags"

# users feed
SIGNUP_TS = "signup_ts"
COUNTRY = "country"

# bronze: item context an event arrived with (Ciao ratings carry the product category)
EVENT_CATEGORY = "category"

# bronze lineage (DESIGN §2): what arrived, from where, in which batch
B_SOURCE = "_source"
B_SOURCE_FILE = "_source_file"
B_BATCH_ID = "_batch_id"
B_INGESTED_AT = "_ingested_at"
B_RAW = "_raw"
B_PARSE_ERROR = "_parse_error"  # null when the line parsed; else why not (malformed JSON, wrong field count)
LINEAGE: tuple[str, ...] = (B_SOURCE, B_SOURCE_FILE, B_BATCH_ID, B_INGESTED_AT, B_RAW, B_PARSE_ERROR)

# controlled vocabularies (DESIGN §2)
EVENT_TYPES: tuple[str, ...] = (
    "view", "click", "cart", "purchase", "favourite", "like", "comment", "share", "rating", "play",
)
RELATIONS: tuple[str, ...] = ("follow", "friend", "trust", "interaction")
LAYERS: tuple[str, ...] = ("bronze", "silver", "gold")
STREAMS: tuple[str, ...] = ("users", "items", "events", "social_edges", "reviews")
