-- The single-machine reference for `make bench`: docs/cleaning.md written as DuckDB SQL.
--
-- Not a second product. It reads the same raw JSON-lines feed as the Spark pipeline (docs/feeds.md),
-- judges every line kept / duplicate / quarantined with the same rules, in the same order, batch by batch
-- like `socialrec.pipelines.clean`, and writes Parquet (no Delta, no bronze copy). The differences from the
-- Spark implementation are listed in bench/README.md ("What the DuckDB reference does differently").
--
-- bench/ingest_clean.py runs the sections below (`-- name: <section>`): `setup` once; per batch `load`, then
-- per stream `type_<stream>`, `judge`, (`users_seen_again` for users) and `merge`; `export` at the end.
-- {{name}} placeholders are filled in by the runner with SQL literals or identifiers before execution.
-- Lambdas are avoided on purpose: their syntax changed between DuckDB 1.x (`x -> ...`) and 2.x
-- (`lambda x: ...`), and this file runs on both.

-- name: setup
SET TimeZone = 'UTC';

-- present: the field arrived with non-blank text (trim = spaces only, like Spark's trim).
CREATE OR REPLACE MACRO present(s) AS coalesce(trim(s) <> '', false);
CREATE OR REPLACE MACRO blank_to_null(s) AS CASE WHEN trim(s) <> '' THEN trim(s) END;
-- A JSON string holding a number arrives without quotes; strip quotes left around a value anyway.
CREATE OR REPLACE MACRO unquote(s) AS regexp_replace(trim(s), '^"|"$', '', 'g');
CREATE OR REPLACE MACRO parse_double(s) AS TRY_CAST(unquote(s) AS DOUBLE);
CREATE OR REPLACE MACRO parse_count(s) AS TRY_CAST(replace(unquote(s), ',', '') AS DOUBLE);
CREATE OR REPLACE MACRO parse_price(s) AS
    TRY_CAST(replace(regexp_replace(unquote(s), '^[$€£¥]\s*|\s*(USD|EUR|GBP)$', '', 'g'), ',', '') AS DOUBLE);
CREATE OR REPLACE MACRO parse_bool(s) AS CASE
    WHEN lower(unquote(s)) IN ('true', '1', 'yes', 't') THEN true
    WHEN lower(unquote(s)) IN ('false', '0', 'no', 'f') THEN false END;
-- ISO-8601 with or without offset (naive = UTC), a date, or Unix epoch seconds (number or string).
CREATE OR REPLACE MACRO parse_ts(s) AS CASE
    WHEN regexp_full_match(unquote(s), '-?[0-9]{1,12}(\.[0-9]+)?')
        THEN CAST(to_timestamp(TRY_CAST(unquote(s) AS DOUBLE)) AS TIMESTAMP)
    ELSE CAST(TRY_CAST(unquote(s) AS TIMESTAMPTZ) AS TIMESTAMP) END;

-- UTF-8 read as Latin-1 ("CafÃ©"): repaired only when every non-ASCII letter is part of a well-formed
-- sequence spelled in Latin-1 letters. The Latin-1 bytes are rebuilt from the UTF-8 hex of the text
-- (U+0080..U+00BF = C2 xx -> xx; U+00C0..U+00FF = C3 8x..Bx -> Cx..Fx), then decoded as UTF-8.
CREATE OR REPLACE MACRO utf8_as_latin1_left(s) AS regexp_replace(s,
    '[\x{C2}-\x{DF}][\x{80}-\x{BF}]|\x{E0}[\x{A0}-\x{BF}][\x{80}-\x{BF}]|[\x{E1}-\x{EC}\x{EE}\x{EF}][\x{80}-\x{BF}]{2}|\x{ED}[\x{80}-\x{9F}][\x{80}-\x{BF}]',
    '', 'g');
-- (Bytes are space-separated first so a pattern can only match whole bytes; C3 pairs go first, so a byte
-- produced by one replacement is never read as the lead of another.)
CREATE OR REPLACE MACRO latin1_hex(s) AS replace(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        regexp_replace(hex(s), '(..)', '\1 ', 'g'),
        'C3 8(.) ', 'C\1 ', 'g'), 'C3 9(.) ', 'D\1 ', 'g'), 'C3 A(.) ', 'E\1 ', 'g'), 'C3 B(.) ', 'F\1 ', 'g'),
        'C2 ([89AB].) ', '\1 ', 'g'),
    ' ', '');
CREATE OR REPLACE MACRO fix_mojibake(s) AS CASE
    WHEN regexp_matches(s, '[^\x00-\x7F]') AND NOT regexp_matches(utf8_as_latin1_left(s), '[^\x00-\x7F]')
        THEN decode(unhex(latin1_hex(s)))
    ELSE s END;
-- Display text: mojibake repaired, tags (also a cut-off "<span class=...") -> one space, entities decoded
-- ("&amp;" last), whitespace runs incl. no-break spaces collapsed, trimmed, empty -> NULL.
CREATE OR REPLACE MACRO clean_text(s) AS nullif(trim(regexp_replace(
    replace(replace(replace(replace(replace(replace(replace(
        regexp_replace(fix_mojibake(s), '<[^>]*(>|$)', ' ', 'g'),
        '&nbsp;', ' '), '&lt;', '<'), '&gt;', '>'), '&quot;', '"'), '&#39;', ''''), '&apos;', ''''), '&amp;', '&'),
    '[\s\p{Z}]+', ' ', 'g')), '');
-- Users: plain SHA-256 of "<source>:<raw id>" (the product uses HMAC-SHA256 with the pseudonym key).
CREATE OR REPLACE MACRO pseudonym(s) AS sha256({{source}} || ':' || trim(s));
CREATE OR REPLACE MACRO too_long(s, n) AS coalesce(length(s) > n, false);
-- One JSON object per line (a malformed line has no fields: json_extract_string would raise on it).
CREATE OR REPLACE MACRO is_object(s) AS coalesce(json_valid(s), false) AND ltrim(s) LIKE '{%';

-- Silver: the contract's columns plus the three the judge compares on (_key, _payload, _order_ts),
-- dropped on export.
CREATE TABLE silver_users (user_id VARCHAR, first_seen_ts TIMESTAMP, attributes VARCHAR, source VARCHAR,
    batch_id VARCHAR, _key VARCHAR, _payload UBIGINT, _order_ts TIMESTAMP);
CREATE TABLE silver_items (item_id VARCHAR, title VARCHAR, description VARCHAR, category VARCHAR, brand VARCHAR,
    price DOUBLE, currency VARCHAR, updated_ts TIMESTAMP, source VARCHAR, batch_id VARCHAR,
    _key VARCHAR, _payload UBIGINT, _order_ts TIMESTAMP);
CREATE TABLE silver_events (event_id VARCHAR, user_id VARCHAR, item_id VARCHAR, event_type VARCHAR, value DOUBLE,
    ts TIMESTAMP, source VARCHAR, batch_id VARCHAR, _key VARCHAR, _payload UBIGINT, _order_ts TIMESTAMP);
CREATE TABLE silver_social_edges (src_user_id VARCHAR, dst_user_id VARCHAR, relation VARCHAR, weight DOUBLE,
    directed BOOLEAN, ts TIMESTAMP, source VARCHAR, batch_id VARCHAR,
    _key VARCHAR, _payload UBIGINT, _order_ts TIMESTAMP);
CREATE TABLE silver_reviews (review_id VARCHAR, user_id VARCHAR, item_id VARCHAR, rating DOUBLE, text VARCHAR,
    helpfulness DOUBLE, ts TIMESTAMP, source VARCHAR, batch_id VARCHAR,
    _key VARCHAR, _payload UBIGINT, _order_ts TIMESTAMP);
CREATE TABLE quarantine (table_name VARCHAR, source VARCHAR, record_hash VARCHAR, reasons VARCHAR[],
    record VARCHAR, batch_id VARCHAR, quarantined_at TIMESTAMP);
CREATE TABLE audit (table_name VARCHAR, batch_id VARCHAR, source VARCHAR, input_rows BIGINT, kept_rows BIGINT,
    duplicate_rows BIGINT, quarantined_rows BIGINT, audited_at TIMESTAMP);

-- name: load
-- Every line of the batch's stream files, whole (the separator 0x1F never occurs in JSON text, quoting
-- off), so a malformed line is kept, not skipped. gzip is read transparently.
CREATE OR REPLACE TABLE lines AS
SELECT regexp_extract(filename, '([a-z_]+)\.jsonl(\.gz)?$', 1) AS _stream, raw AS _raw, filename AS _file
FROM read_csv({{files}}, columns = {'raw': 'VARCHAR'}, delim = E'\x1f', quote = '', escape = '',
              header = false, auto_detect = false, filename = true, max_line_size = 67108864);

-- name: type_users
CREATE OR REPLACE TABLE typed AS
WITH f AS (
    SELECT _raw, _file, _ok, _f[1] AS raw_user_id, _f[2] AS raw_signup_ts, _f[3] AS raw_country,
           _f[4] AS raw_attributes
    FROM (SELECT *, CASE WHEN _ok THEN json_extract_string(_raw,
                        ['$.user_id', '$.signup_ts', '$.country', '$.attributes']) END AS _f
          FROM (SELECT *, is_object(_raw) AS _ok FROM lines WHERE _stream = 'users'))
), t AS (
    SELECT *, pseudonym(raw_user_id) AS _user, parse_ts(raw_signup_ts) AS _ts, is_object(raw_attributes) AS _attrs_ok
    FROM f
)
SELECT _raw, _file,
    _user AS user_id,
    _ts AS first_seen_ts,
    -- attributes as JSON text with the cleaned country folded in (attribute values are not re-cleaned)
    json_merge_patch(CASE WHEN _attrs_ok THEN raw_attributes ELSE '{}' END,
                     json_object('country', clean_text(raw_country))) AS attributes,
    {{source}} AS source, {{batch}} AS batch_id,
    CASE WHEN NOT _ok THEN ['malformed_record'] ELSE list_sort(list_distinct([
        CASE WHEN NOT present(raw_user_id) THEN 'missing:user_id' END,
        CASE WHEN too_long(raw_user_id, {{max_id_chars}}) THEN 'oversized:user_id' END,
        CASE WHEN too_long(raw_country, {{max_short_chars}}) THEN 'oversized:country' END,
        CASE WHEN present(raw_signup_ts) AND _ts IS NULL THEN 'unparseable_ts' END,
        CASE WHEN _ts > CAST({{future_after}} AS TIMESTAMP) THEN 'future_ts' END,
        CASE WHEN present(raw_attributes) AND NOT _attrs_ok THEN 'bad_attributes' END
    ])) END AS _reasons,
    _user AS _key
FROM t;

-- name: type_items
CREATE OR REPLACE TABLE typed AS
WITH f AS (
    SELECT _raw, _file, _ok, _f[1] AS raw_item_id, _f[2] AS raw_title, _f[3] AS raw_description, _f[4] AS raw_category,
           _f[5] AS raw_brand, _f[6] AS raw_price, _f[7] AS raw_currency, _f[8] AS raw_updated_ts
    FROM (SELECT *, CASE WHEN _ok THEN json_extract_string(_raw, ['$.item_id', '$.title', '$.description',
                        '$.category', '$.brand', '$.price', '$.currency', '$.updated_ts']) END AS _f
          FROM (SELECT *, is_object(_raw) AS _ok FROM lines WHERE _stream = 'items'))
), t AS (
    SELECT *, parse_price(raw_price) AS _price, present(raw_price) AS _has_price, parse_ts(raw_updated_ts) AS _ts FROM f
)
SELECT _raw, _file,
    {{source}} || ':' || trim(raw_item_id) AS item_id,
    clean_text(raw_title) AS title, clean_text(raw_description) AS description,
    clean_text(raw_category) AS category, clean_text(raw_brand) AS brand,
    CASE WHEN _has_price THEN _price END AS price,
    upper(blank_to_null(raw_currency)) AS currency,
    _ts AS updated_ts,
    {{source}} AS source, {{batch}} AS batch_id,
    CASE WHEN NOT _ok THEN ['malformed_record'] ELSE list_sort(list_distinct([
        CASE WHEN NOT present(raw_item_id) THEN 'missing:item_id' END,
        CASE WHEN too_long(raw_item_id, {{max_id_chars}}) THEN 'oversized:item_id' END,
        CASE WHEN too_long(raw_title, {{max_title_chars}}) THEN 'oversized:title' END,
        CASE WHEN too_long(raw_description, {{max_text_chars}}) THEN 'oversized:description' END,
        CASE WHEN too_long(raw_category, {{max_short_chars}}) THEN 'oversized:category' END,
        CASE WHEN too_long(raw_brand, {{max_short_chars}}) THEN 'oversized:brand' END,
        CASE WHEN too_long(raw_currency, {{max_short_chars}}) THEN 'oversized:currency' END,
        CASE WHEN _has_price AND _price IS NULL THEN 'unparseable_price' END,
        CASE WHEN _has_price AND isnan(_price) THEN 'nan_price' END,
        CASE WHEN _has_price AND _price < 0 THEN 'negative_price' END,
        CASE WHEN present(raw_updated_ts) AND _ts IS NULL THEN 'unparseable_ts' END
    ])) END AS _reasons,
    {{source}} || ':' || trim(raw_item_id) AS _key
FROM t;

-- name: type_events
CREATE OR REPLACE TABLE typed AS
WITH f AS (
    SELECT _raw, _file, _ok, _f[1] AS raw_event_id, _f[2] AS raw_user_id, _f[3] AS raw_item_id,
           _f[4] AS raw_event_type, _f[5] AS raw_value, _f[6] AS raw_ts
    FROM (SELECT *, CASE WHEN _ok THEN json_extract_string(_raw, ['$.event_id', '$.user_id', '$.item_id',
                        '$.event_type', '$.value', '$.ts']) END AS _f
          FROM (SELECT *, is_object(_raw) AS _ok FROM lines WHERE _stream = 'events'))
), t AS (
    SELECT *, lower(trim(raw_event_type)) AS _type, parse_double(raw_value) AS _value, parse_ts(raw_ts) AS _ts,
           pseudonym(raw_user_id) AS _user, {{source}} || ':' || trim(raw_item_id) AS _item,
           coalesce(lower(trim(raw_event_type)) = 'rating', false) AS _is_rating
    FROM f
), r AS (
    -- a value that is not a number, or (rating events) outside the source's scale
    SELECT *, present(raw_value) AND (_value IS NULL OR isnan(_value)) AS _bad_value,
           present(raw_value) AND NOT (_value IS NULL OR isnan(_value))
               AND (_value < {{rating_min}} OR _value > {{rating_max}}) AS _out_of_range
    FROM t
)
SELECT _raw, _file,
    {{source}} || ':' || trim(raw_event_id) AS event_id,
    _user AS user_id, _item AS item_id, _type AS event_type, _value AS value, _ts AS ts,
    {{source}} AS source, {{batch}} AS batch_id,
    CASE WHEN NOT _ok THEN ['malformed_record'] ELSE list_sort(list_distinct([
        CASE WHEN NOT present(raw_event_id) THEN 'missing:event_id' END,
        CASE WHEN NOT present(raw_user_id) THEN 'missing:user_id' END,
        CASE WHEN NOT present(raw_item_id) THEN 'missing:item_id' END,
        CASE WHEN NOT present(raw_event_type) THEN 'missing:event_type' END,
        CASE WHEN NOT present(raw_ts) THEN 'missing:ts' END,
        CASE WHEN too_long(raw_event_id, {{max_id_chars}}) THEN 'oversized:event_id' END,
        CASE WHEN too_long(raw_user_id, {{max_id_chars}}) THEN 'oversized:user_id' END,
        CASE WHEN too_long(raw_item_id, {{max_id_chars}}) THEN 'oversized:item_id' END,
        CASE WHEN present(raw_event_type) AND _type NOT IN {{event_types}} THEN 'unknown_event_type' END,
        CASE WHEN present(raw_ts) AND _ts IS NULL THEN 'unparseable_ts' END,
        CASE WHEN _ts > CAST({{future_after}} AS TIMESTAMP) THEN 'future_ts' END,
        CASE WHEN _ts < CAST({{platform_launch}} AS TIMESTAMP) THEN 'before_launch_ts' END,
        CASE WHEN _is_rating AND NOT present(raw_value) THEN 'missing:value' END,
        CASE WHEN _bad_value THEN 'bad_value' END,
        CASE WHEN _is_rating AND _out_of_range THEN 'rating_out_of_range' END,
        -- strict references: users and items this source declared (silver, incl. this batch's)
        CASE WHEN present(raw_user_id) AND _user NOT IN (SELECT user_id FROM silver_users) THEN 'unknown_user' END,
        CASE WHEN present(raw_item_id) AND _item NOT IN (SELECT item_id FROM silver_items) THEN 'unknown_item' END
    ])) END AS _reasons,
    {{source}} || ':' || trim(raw_event_id) AS _key
FROM r;

-- name: type_social_edges
CREATE OR REPLACE TABLE typed AS
WITH f AS (
    SELECT _raw, _file, _ok, _f[1] AS raw_src_user_id, _f[2] AS raw_dst_user_id, _f[3] AS raw_relation,
           _f[4] AS raw_weight, _f[5] AS raw_directed, _f[6] AS raw_ts
    FROM (SELECT *, CASE WHEN _ok THEN json_extract_string(_raw, ['$.src_user_id', '$.dst_user_id',
                        '$.relation', '$.weight', '$.directed', '$.ts']) END AS _f
          FROM (SELECT *, is_object(_raw) AS _ok FROM lines WHERE _stream = 'social_edges'))
), t AS (
    SELECT *, lower(trim(raw_relation)) AS _relation, parse_double(raw_weight) AS _weight,
           parse_bool(raw_directed) AS _directed, pseudonym(raw_src_user_id) AS _src, pseudonym(raw_dst_user_id) AS _dst,
           parse_ts(raw_ts) AS _ts,
           CASE WHEN present(raw_directed) THEN parse_bool(raw_directed) ELSE lower(trim(raw_relation)) <> 'friend' END AS _is_directed
    FROM f
), c AS (
    -- an undirected edge is stored once, in a canonical order: (a, b) and (b, a) are the same key
    SELECT *, CASE WHEN _is_directed THEN _src ELSE least(_src, _dst) END AS _s,
              CASE WHEN _is_directed THEN _dst ELSE greatest(_src, _dst) END AS _d
    FROM t
)
SELECT _raw, _file,
    _s AS src_user_id, _d AS dst_user_id, _relation AS relation,
    CASE WHEN present(raw_weight) THEN _weight ELSE 1.0 END AS weight,
    _is_directed AS directed, _ts AS ts,
    {{source}} AS source, {{batch}} AS batch_id,
    CASE WHEN NOT _ok THEN ['malformed_record'] ELSE list_sort(list_distinct([
        CASE WHEN NOT present(raw_src_user_id) THEN 'missing:src_user_id' END,
        CASE WHEN NOT present(raw_dst_user_id) THEN 'missing:dst_user_id' END,
        CASE WHEN NOT present(raw_relation) THEN 'missing:relation' END,
        CASE WHEN too_long(raw_src_user_id, {{max_id_chars}}) THEN 'oversized:src_user_id' END,
        CASE WHEN too_long(raw_dst_user_id, {{max_id_chars}}) THEN 'oversized:dst_user_id' END,
        CASE WHEN present(raw_relation) AND _relation NOT IN {{relations}} THEN 'unknown_relation' END,
        CASE WHEN present(raw_src_user_id) AND trim(raw_src_user_id) = trim(raw_dst_user_id) THEN 'self_loop' END,
        CASE WHEN present(raw_weight) AND (_weight IS NULL OR isnan(_weight) OR _weight <= 0) THEN 'bad_weight' END,
        CASE WHEN present(raw_directed) AND _directed IS NULL THEN 'bad_directed' END,
        CASE WHEN present(raw_ts) AND _ts IS NULL THEN 'unparseable_ts' END,
        CASE WHEN _ts > CAST({{future_after}} AS TIMESTAMP) THEN 'future_ts' END,
        CASE WHEN _ts < CAST({{platform_launch}} AS TIMESTAMP) THEN 'before_launch_ts' END,
        CASE WHEN (present(raw_src_user_id) AND _src NOT IN (SELECT user_id FROM silver_users))
               OR (present(raw_dst_user_id) AND _dst NOT IN (SELECT user_id FROM silver_users)) THEN 'unknown_user' END
    ])) END AS _reasons,
    concat_ws(chr(31), _s, _d, _relation) AS _key
FROM c;

-- name: type_reviews
CREATE OR REPLACE TABLE typed AS
WITH f AS (
    SELECT _raw, _file, _ok, _f[1] AS raw_review_id, _f[2] AS raw_user_id, _f[3] AS raw_item_id,
           _f[4] AS raw_rating, _f[5] AS raw_text, _f[6] AS raw_helpfulness, _f[7] AS raw_ts
    FROM (SELECT *, CASE WHEN _ok THEN json_extract_string(_raw, ['$.review_id', '$.user_id', '$.item_id',
                        '$.rating', '$.text', '$.helpfulness', '$.ts']) END AS _f
          FROM (SELECT *, is_object(_raw) AS _ok FROM lines WHERE _stream = 'reviews'))
), t AS (
    SELECT *, parse_double(raw_rating) AS _rating, parse_count(raw_helpfulness) AS _help, parse_ts(raw_ts) AS _ts,
           pseudonym(raw_user_id) AS _user, {{source}} || ':' || trim(raw_item_id) AS _item
    FROM f
), r AS (
    SELECT *, present(raw_rating) AND (_rating IS NULL OR isnan(_rating)) AS _bad_rating,
           present(raw_rating) AND NOT (_rating IS NULL OR isnan(_rating))
               AND (_rating < {{rating_min}} OR _rating > {{rating_max}}) AS _out_of_range
    FROM t
)
SELECT _raw, _file,
    {{source}} || ':' || trim(raw_review_id) AS review_id,
    _user AS user_id, _item AS item_id, _rating AS rating, clean_text(raw_text) AS text, _help AS helpfulness,
    _ts AS ts, {{source}} AS source, {{batch}} AS batch_id,
    CASE WHEN NOT _ok THEN ['malformed_record'] ELSE list_sort(list_distinct([
        CASE WHEN NOT present(raw_review_id) THEN 'missing:review_id' END,
        CASE WHEN NOT present(raw_user_id) THEN 'missing:user_id' END,
        CASE WHEN NOT present(raw_item_id) THEN 'missing:item_id' END,
        CASE WHEN NOT present(raw_ts) THEN 'missing:ts' END,
        CASE WHEN too_long(raw_review_id, {{max_id_chars}}) THEN 'oversized:review_id' END,
        CASE WHEN too_long(raw_user_id, {{max_id_chars}}) THEN 'oversized:user_id' END,
        CASE WHEN too_long(raw_item_id, {{max_id_chars}}) THEN 'oversized:item_id' END,
        CASE WHEN too_long(raw_text, {{max_text_chars}}) THEN 'oversized:text' END,
        CASE WHEN present(raw_ts) AND _ts IS NULL THEN 'unparseable_ts' END,
        CASE WHEN _ts > CAST({{future_after}} AS TIMESTAMP) THEN 'future_ts' END,
        CASE WHEN _ts < CAST({{platform_launch}} AS TIMESTAMP) THEN 'before_launch_ts' END,
        CASE WHEN _bad_rating THEN 'bad_value' END,
        CASE WHEN _out_of_range THEN 'rating_out_of_range' END,
        CASE WHEN present(raw_helpfulness) AND (_help IS NULL OR _help < 0) THEN 'bad_helpfulness' END,
        CASE WHEN present(raw_user_id) AND _user NOT IN (SELECT user_id FROM silver_users) THEN 'unknown_user' END,
        CASE WHEN present(raw_item_id) AND _item NOT IN (SELECT item_id FROM silver_items) THEN 'unknown_item' END
    ])) END AS _reasons,
    {{source}} || ':' || trim(raw_review_id) AS _key
FROM r;

-- name: judge
-- Outcomes of `typed` (one stream of one batch), in the order of docs/cleaning.md. {{payload}}: the
-- stream's silver columns (its content); {{version_ts}}: the column that orders versions of a key.
CREATE OR REPLACE TABLE judged AS
WITH first AS (
    -- 1. exact duplicates in the batch (an invalid line repeated is quarantined once); 2.-3. row rules
    -- and references
    SELECT *, hash({{payload}}) AS _payload, {{version_ts}} AS _order_ts,
           CASE WHEN row_number() OVER (PARTITION BY _raw ORDER BY _file) > 1 THEN 'duplicate'
                WHEN len(_reasons) > 0 THEN 'quarantined' END AS _outcome
    FROM typed
), ranked AS (
    -- 4. same key, same content -> duplicate; 5. same key, other content -> latest version wins, then the
    -- greatest content hash
    SELECT *, row_number() OVER (PARTITION BY _key ORDER BY _order_ts DESC NULLS LAST, _payload DESC, _same) AS _rank
    FROM (SELECT *, row_number() OVER (PARTITION BY _key, _payload ORDER BY _raw) AS _same
          FROM first WHERE _outcome IS NULL)
), in_batch AS (
    SELECT * EXCLUDE (_same, _rank, _outcome, _reasons),
           CASE WHEN _same > 1 THEN 'duplicate' WHEN _rank > 1 THEN 'quarantined' END AS _outcome,
           CASE WHEN _same = 1 AND _rank > 1 THEN ['key_conflict'] ELSE _reasons END AS _reasons
    FROM ranked
), joined AS (
    SELECT n.*, s._key AS _old_key, s._payload AS _old_payload,
           (s._order_ts IS NULL AND n._order_ts IS NOT NULL)
               OR coalesce(n._order_ts > s._order_ts, false)
               OR (n._order_ts IS NOT DISTINCT FROM s._order_ts AND n._payload > s._payload) AS _new_wins
    FROM in_batch n
    LEFT JOIN (SELECT _key, _payload, _order_ts FROM {{silver}} WHERE batch_id <> {{batch}}) s ON n._key = s._key
), against_silver AS (
    -- 6. rows of other batches: same content -> duplicate; the silver row wins -> key_conflict; the new row
    -- wins -> kept (replaces it). Users are never in conflict: a user seen again is an update.
    SELECT * EXCLUDE (_outcome, _reasons, _old_key, _old_payload, _new_wins),
           CASE WHEN _outcome IS NOT NULL OR _old_key IS NULL THEN coalesce(_outcome, 'kept')
                WHEN _old_payload = _payload THEN 'duplicate'
                WHEN {{stream_is_users}} OR _new_wins THEN 'kept'
                ELSE 'quarantined' END AS _outcome,
           CASE WHEN _outcome IS NULL AND _old_key IS NOT NULL AND _old_payload <> _payload
                     AND NOT ({{stream_is_users}} OR _new_wins) THEN ['key_conflict']
                ELSE _reasons END AS _reasons
    FROM joined
)
SELECT * FROM against_silver
UNION ALL BY NAME
SELECT * FROM first WHERE _outcome IS NOT NULL;

-- name: users_seen_again
-- A user seen again keeps the earliest first-seen time and the newest non-empty attributes.
UPDATE judged SET first_seen_ts = least(judged.first_seen_ts, s.first_seen_ts),
                  attributes = CASE WHEN judged.attributes = '{}' THEN s.attributes ELSE judged.attributes END
FROM silver_users s
WHERE judged._outcome = 'kept' AND s._key = judged._key AND s.batch_id <> {{batch}};

-- name: merge
-- Kept rows replace their key in silver; quarantined rows go to the quarantine with their reasons (the
-- line as it arrived: raw ids included, unlike the product, which pseudonymises them); one audit row.
DELETE FROM {{silver}} WHERE _key IN (SELECT _key FROM judged WHERE _outcome = 'kept');
INSERT INTO {{silver}} BY NAME
    SELECT * EXCLUDE (_raw, _file, _reasons, _outcome) FROM judged WHERE _outcome = 'kept';
INSERT INTO quarantine
    SELECT {{table_name}}, {{source}}, sha256(concat_ws(chr(31), {{source}}, {{batch}}, coalesce(_raw, ''))),
           _reasons, _raw, {{batch}}, CAST(now() AS TIMESTAMP)
    FROM judged WHERE _outcome = 'quarantined';
INSERT INTO audit
    SELECT {{table_name}}, {{batch}}, {{source}}, count(*),
           count(*) FILTER (WHERE _outcome = 'kept'), count(*) FILTER (WHERE _outcome = 'duplicate'),
           count(*) FILTER (WHERE _outcome = 'quarantined'), CAST(now() AS TIMESTAMP)
    FROM judged;

-- name: export
COPY (SELECT * EXCLUDE (_key, _payload, _order_ts) FROM silver_users) TO {{out_users}} (FORMAT PARQUET);
COPY (SELECT * EXCLUDE (_key, _payload, _order_ts) FROM silver_items) TO {{out_items}} (FORMAT PARQUET);
COPY (SELECT * EXCLUDE (_key, _payload, _order_ts) FROM silver_events) TO {{out_events}} (FORMAT PARQUET);
COPY (SELECT * EXCLUDE (_key, _payload, _order_ts) FROM silver_social_edges) TO {{out_social_edges}} (FORMAT PARQUET);
COPY (SELECT * EXCLUDE (_key, _payload, _order_ts) FROM silver_reviews) TO {{out_reviews}} (FORMAT PARQUET);
COPY quarantine TO {{out_quarantine}} (FORMAT PARQUET);
COPY audit TO {{out_audit}} (FORMAT PARQUET);
