"""Per-stream typing and row rules (docs/cleaning.md).

Each ``type_<stream>`` function takes a bronze batch and returns it with the silver columns (typed,
pseudonymised, cleaned) plus ``_reasons``: every rule the row breaks. Rules that need other tables
(unknown users/items, duplicates, key conflicts) are applied afterwards in :mod:`socialrec.clean.outcomes`.
A row whose line could not be parsed gets only ``malformed_record``: its fields are unknown, so the other
rules would only repeat that.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from socialrec.clean.text import (
    blank_to_null,
    clean_text,
    parse_bool,
    parse_count,
    parse_double,
    parse_price,
    parse_ts,
    present,
    strip_ws,
)
from socialrec.config import CleanConfig
from socialrec.ingest.base import SourceProfile
from socialrec.schema import columns as C
from socialrec.transforms.privacy import hmac_sha256_hex

REASONS = "_reasons"
Rule = tuple[Column, str]


@dataclass(frozen=True)
class RuleContext:
    """What the rules of one (source, batch) need."""

    profile: SourceProfile
    batch_id: str
    clean: CleanConfig
    key: bytes

    @property
    def source(self) -> str:
        return self.profile.name


# ------------------------------------------------------------------------------ ids and pseudonyms


def user_pseudonym(raw: Column, source: str, key: bytes) -> Column:
    """The silver user id: HMAC-SHA256 of ``<source>:<raw id>``. Ids are local to a source (user 7 of
    Ciao is not user 7 of FilmTrust), so the source is part of the message."""
    return hmac_sha256_hex(F.concat(F.lit(f"{source}:"), strip_ws(raw)), key)


def qualified_id(raw: Column, source: str) -> Column:
    """``<source>:<id>`` for item, event and review ids, for the same reason."""
    return F.concat(F.lit(f"{source}:"), strip_ws(raw))


def derived_id(parts: Sequence[Column], source: str, key: bytes) -> Column:
    """An id for a source without ids: keyed (it is built from a raw user id) and namespaced."""
    message = F.concat_ws("\u001f", F.lit(source), *[F.coalesce(strip_ws(p), F.lit("")) for p in parts])
    return F.concat(F.lit(f"{source}:"), F.substring(hmac_sha256_hex(message, key), 1, 32))


# --------------------------------------------------------------------------------------- helpers


def _required(b: DataFrame, fields: Sequence[str]) -> list[Rule]:
    return [(~present(b[f]), f"missing:{f}") for f in fields]


def _oversized(b: DataFrame, limits: dict[str, int]) -> list[Rule]:
    return [(F.coalesce(F.length(b[f]) > limit, F.lit(False)), f"oversized:{f}") for f, limit in limits.items()]


def _ts_rules(b: DataFrame, field: str, ctx: RuleContext, *, check_launch: bool = True) -> list[Rule]:
    ts = parse_ts(b[field])
    latest = b[C.B_INGESTED_AT] + F.make_dt_interval(hours=F.lit(ctx.clean.future_tolerance_hours))
    rules = [
        (present(b[field]) & ts.isNull(), "unparseable_ts"),
        (F.coalesce(ts > latest, F.lit(False)), "future_ts"),
    ]
    if check_launch and ctx.profile.launch:
        rules.append((F.coalesce(ts < F.to_timestamp(F.lit(ctx.profile.launch)), F.lit(False)), "before_launch_ts"))
    return rules


def _ts_or_snapshot(b: DataFrame, field: str, ctx: RuleContext) -> Column:
    ts = parse_ts(b[field])
    if ctx.profile.snapshot_ts:
        ts = F.coalesce(ts, F.to_timestamp(F.lit(ctx.profile.snapshot_ts)))
    return ts


def _record_id(b: DataFrame, id_field: str, kind: Column, ctx: RuleContext) -> Column:
    """The silver id of an event or review: the given id, qualified by source; for sources that have
    none (``derive_ids``), a keyed id of (user, item, ``kind``) when the row brings no id of its own."""
    given = qualified_id(blank_to_null(b[id_field]), ctx.source)
    if not ctx.profile.derive_ids:
        return qualified_id(b[id_field], ctx.source)
    return F.coalesce(given, derived_id([b[C.USER_ID], b[C.ITEM_ID], kind], ctx.source, ctx.key))


def _required_fields(id_field: str, fields: list[str], ctx: RuleContext) -> list[str]:
    """Required fields of an event or review: its id unless the source has none (derived), the given
    fields, and ``ts`` unless the source has no timestamps (a documented snapshot time is used)."""
    ids = [] if ctx.profile.derive_ids else [id_field]
    ts = [] if ctx.profile.snapshot_ts else [C.TS]
    return [*ids, *fields, *ts]


def _rating_rules(b: DataFrame, value: Column, text_col: str, ctx: RuleContext, applies: Column) -> list[Rule]:
    bad = present(b[text_col]) & (value.isNull() | F.isnan(value))
    out_of_range = ~bad & present(b[text_col]) & ((value < ctx.profile.rating_min) | (value > ctx.profile.rating_max))
    return [(applies & bad, "bad_value"), (applies & F.coalesce(out_of_range, F.lit(False)), "rating_out_of_range")]


def _with_reasons(b: DataFrame, typed: dict[str, Column], rules: list[Rule]) -> DataFrame:
    malformed = b[C.B_PARSE_ERROR].isNotNull()
    checks = F.array(*[F.when(cond, F.lit(reason)) for cond, reason in rules]) if rules else F.array()
    reasons = F.when(malformed, F.array(F.lit("malformed_record"))).otherwise(
        F.filter(checks, lambda r: r.isNotNull())
    )
    # One projection: the rules read the fields as they arrived, which the typed columns replace.
    return b.withColumns({**typed, REASONS: F.array_sort(reasons)})


# ------------------------------------------------------------------------------------- streams


def type_users(b: DataFrame, ctx: RuleContext) -> DataFrame:
    attrs = F.from_json(b[C.ATTRIBUTES], "map<string,string>")
    country = clean_text(b[C.COUNTRY])
    attributes = F.map_filter(
        F.map_concat(
            F.coalesce(attrs, F.create_map().cast("map<string,string>")),
            F.create_map(F.lit(C.COUNTRY), country),
        ),
        lambda k, v: v.isNotNull(),
    )
    typed = {
        C.USER_ID: user_pseudonym(b[C.USER_ID], ctx.source, ctx.key),
        C.FIRST_SEEN_TS: parse_ts(b[C.SIGNUP_TS]),
        C.ATTRIBUTES: F.to_json(F.transform_values(attributes, lambda k, v: clean_text(v))),
        C.SOURCE: F.lit(ctx.source),
        C.BATCH_ID: F.lit(ctx.batch_id),
    }
    rules = (
        _required(b, [C.USER_ID])
        + _oversized(b, {C.USER_ID: ctx.clean.max_id_chars, C.COUNTRY: ctx.clean.max_short_chars})
        + _ts_rules(b, C.SIGNUP_TS, ctx, check_launch=False)
        + [(present(b[C.ATTRIBUTES]) & attrs.isNull(), "bad_attributes")]
    )
    return _with_reasons(b, typed, rules)


def type_items(b: DataFrame, ctx: RuleContext) -> DataFrame:
    price = parse_price(b[C.PRICE])
    has_price = present(b[C.PRICE])
    tags = F.array_distinct(
        F.filter(F.transform(F.split(b[C.TAGS], "\\|"), lambda t: clean_text(t)), lambda t: t.isNotNull())
    )
    typed = {
        C.ITEM_ID: qualified_id(b[C.ITEM_ID], ctx.source),
        C.TITLE: clean_text(b[C.TITLE]),
        C.DESCRIPTION: clean_text(b[C.DESCRIPTION]),
        C.CATEGORY: clean_text(b[C.CATEGORY]),
        C.BRAND: clean_text(b[C.BRAND]),
        C.PRICE: F.when(has_price, price),
        C.CURRENCY: F.upper(blank_to_null(b[C.CURRENCY])),
        C.UPDATED_TS: parse_ts(b[C.UPDATED_TS]),
        C.TAGS: F.when(present(b[C.TAGS]), tags),
        C.SOURCE: F.lit(ctx.source),
        C.BATCH_ID: F.lit(ctx.batch_id),
    }
    rules = (
        _required(b, [C.ITEM_ID])
        + _oversized(
            b,
            {
                C.ITEM_ID: ctx.clean.max_id_chars,
                C.TITLE: ctx.clean.max_title_chars,
                C.DESCRIPTION: ctx.clean.max_text_chars,
                C.CATEGORY: ctx.clean.max_short_chars,
                C.BRAND: ctx.clean.max_short_chars,
                C.CURRENCY: ctx.clean.max_short_chars,
                C.TAGS: ctx.clean.max_text_chars,
            },
        )
        + [
            (has_price & price.isNull(), "unparseable_price"),
            (has_price & F.coalesce(F.isnan(price), F.lit(False)), "nan_price"),
            (has_price & F.coalesce(price < 0, F.lit(False)), "negative_price"),
            # "Infinity" parses as a double; no catalogue price is infinite (found by tests/integration/test_fuzz_ingest).
            (has_price & F.coalesce(price == float("inf"), F.lit(False)), "infinite_price"),
            (present(b[C.UPDATED_TS]) & parse_ts(b[C.UPDATED_TS]).isNull(), "unparseable_ts"),
        ]
    )
    return _with_reasons(b, typed, rules)


def type_events(b: DataFrame, ctx: RuleContext) -> DataFrame:
    event_type = F.lower(strip_ws(b[C.EVENT_TYPE]))
    value = parse_double(b[C.VALUE])
    is_rating = F.coalesce(event_type == "rating", F.lit(False))
    event_id = _record_id(b, C.EVENT_ID, event_type, ctx)
    typed = {
        C.EVENT_ID: event_id,
        C.USER_ID: user_pseudonym(b[C.USER_ID], ctx.source, ctx.key),
        C.ITEM_ID: qualified_id(b[C.ITEM_ID], ctx.source),
        C.EVENT_TYPE: event_type,
        C.VALUE: value,
        C.TS: _ts_or_snapshot(b, C.TS, ctx),
        C.SOURCE: F.lit(ctx.source),
        C.BATCH_ID: F.lit(ctx.batch_id),
    }
    required = _required_fields(C.EVENT_ID, [C.USER_ID, C.ITEM_ID, C.EVENT_TYPE], ctx)
    rules = (
        _required(b, required)
        + _oversized(b, {C.EVENT_ID: ctx.clean.max_id_chars, C.USER_ID: ctx.clean.max_id_chars,
                         C.ITEM_ID: ctx.clean.max_id_chars})
        + [(present(b[C.EVENT_TYPE]) & ~event_type.isin(*C.EVENT_TYPES), "unknown_event_type")]
        + _ts_rules(b, C.TS, ctx)
        + [(is_rating & ~present(b[C.VALUE]), "missing:value")]
        + [(~is_rating & present(b[C.VALUE]) & (value.isNull() | F.isnan(value)), "bad_value")]
        + _rating_rules(b, value, C.VALUE, ctx, is_rating)
    )
    return _with_reasons(b, typed, rules)


def type_social_edges(b: DataFrame, ctx: RuleContext) -> DataFrame:
    relation = F.lower(strip_ws(b[C.RELATION]))
    weight = parse_double(b[C.WEIGHT])
    directed = parse_bool(b[C.DIRECTED])
    default_directed = relation != "friend"
    src = user_pseudonym(b[C.SRC_USER_ID], ctx.source, ctx.key)
    dst = user_pseudonym(b[C.DST_USER_ID], ctx.source, ctx.key)
    is_directed = F.when(present(b[C.DIRECTED]), directed).otherwise(default_directed)
    # An undirected edge is stored once, in a canonical order, so (a, b) and (b, a) are the same key.
    typed = {
        C.SRC_USER_ID: F.when(is_directed, src).otherwise(F.least(src, dst)),
        C.DST_USER_ID: F.when(is_directed, dst).otherwise(F.greatest(src, dst)),
        C.RELATION: relation,
        C.WEIGHT: F.when(present(b[C.WEIGHT]), weight).otherwise(F.lit(1.0)),
        C.DIRECTED: is_directed,
        C.TS: parse_ts(b[C.TS]),
        C.SOURCE: F.lit(ctx.source),
        C.BATCH_ID: F.lit(ctx.batch_id),
    }
    rules = (
        _required(b, [C.SRC_USER_ID, C.DST_USER_ID, C.RELATION])
        + _oversized(b, {C.SRC_USER_ID: ctx.clean.max_id_chars, C.DST_USER_ID: ctx.clean.max_id_chars})
        + [
            (present(b[C.RELATION]) & ~relation.isin(*C.RELATIONS), "unknown_relation"),
            (present(b[C.SRC_USER_ID]) & (strip_ws(b[C.SRC_USER_ID]) == strip_ws(b[C.DST_USER_ID])), "self_loop"),
            (present(b[C.WEIGHT]) & (weight.isNull() | F.isnan(weight) | (weight <= 0)), "bad_weight"),
            (present(b[C.DIRECTED]) & directed.isNull(), "bad_directed"),
        ]
        + _ts_rules(b, C.TS, ctx)
    )
    return _with_reasons(b, typed, rules)


def type_reviews(b: DataFrame, ctx: RuleContext) -> DataFrame:
    rating = parse_double(b[C.RATING])
    helpfulness = parse_count(b[C.HELPFULNESS])
    review_id = _record_id(b, C.REVIEW_ID, F.lit("review"), ctx)
    typed = {
        C.REVIEW_ID: review_id,
        C.USER_ID: user_pseudonym(b[C.USER_ID], ctx.source, ctx.key),
        C.ITEM_ID: qualified_id(b[C.ITEM_ID], ctx.source),
        C.RATING: rating,
        C.TEXT: clean_text(b[C.TEXT]),
        C.HELPFULNESS: helpfulness,
        C.TS: _ts_or_snapshot(b, C.TS, ctx),
        C.SOURCE: F.lit(ctx.source),
        C.BATCH_ID: F.lit(ctx.batch_id),
    }
    required = _required_fields(C.REVIEW_ID, [C.USER_ID, C.ITEM_ID], ctx)
    rules = (
        _required(b, required)
        + _oversized(b, {C.REVIEW_ID: ctx.clean.max_id_chars, C.USER_ID: ctx.clean.max_id_chars,
                         C.ITEM_ID: ctx.clean.max_id_chars, C.TEXT: ctx.clean.max_text_chars})
        + _ts_rules(b, C.TS, ctx)
        + _rating_rules(b, rating, C.RATING, ctx, F.lit(True))
        + [(present(b[C.HELPFULNESS]) & (helpfulness.isNull() | (helpfulness < 0)), "bad_helpfulness")]
    )
    return _with_reasons(b, typed, rules)


TYPERS: dict[str, Callable[[DataFrame, RuleContext], DataFrame]] = {
    "users": type_users,
    "items": type_items,
    "events": type_events,
    "social_edges": type_social_edges,
    "reviews": type_reviews,
}
