"""Every cleaning rule on 2-5 inline rows: the kept side and the quarantined side (docs/cleaning.md)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from socialrec.clean.outcomes import OUTCOME, check_references, judge, keep_raw_fields
from socialrec.clean.rules import REASONS, TYPERS, RuleContext, user_pseudonym
from socialrec.config import CleanConfig
from socialrec.ingest.base import SourceProfile, bronze_columns
from socialrec.schema import columns as C
from socialrec.schema.tables import BRONZE_BY_STREAM

KEY = b"k" * 32
STRICT = SourceProfile("platform", "strict", launch="2020-01-01")
DERIVE = SourceProfile("ds", "derive", rating_min=0.5, rating_max=4.0, derive_ids=True, snapshot_ts="2011-06-30")
INGESTED = datetime(2024, 6, 1)


def bronze(spark: SparkSession, stream: str, rows: list[dict[str, Any]]) -> DataFrame:
    """Bronze rows from field dicts; ``_raw`` is the dict's text unless given, lineage filled in."""
    fields = bronze_columns(stream)
    data = []
    for r in rows:
        raw = r.get("_raw", repr(sorted((k, v) for k, v in r.items() if not k.startswith("_"))))
        data.append(
            tuple(r.get(f) for f in fields)
            + ("src", "file.jsonl", "b1", INGESTED, raw, r.get("_parse_error"))
        )
    return spark.createDataFrame(data, BRONZE_BY_STREAM[stream].schema)


def judged(
    spark: SparkSession,
    stream: str,
    rows: list[dict[str, Any]],
    profile: SourceProfile = STRICT,
    users: list[str] | None = None,
    items: list[str] | None = None,
    existing: DataFrame | None = None,
    clean: CleanConfig | None = None,
) -> DataFrame:
    ctx = RuleContext(profile=profile, batch_id="b1", clean=clean or CleanConfig(), key=KEY)
    typed = TYPERS[stream](keep_raw_fields(bronze(spark, stream, rows), stream), ctx)
    if users is not None or items is not None:
        known_u = spark.createDataFrame([(u,) for u in users or []], "id string").select(
            user_pseudonym(F.col("id"), profile.name, KEY)
        )
        known_i = spark.createDataFrame([(f"{profile.name}:{i}",) for i in items or []], "id string")
        typed = check_references(typed, stream, known_u, known_i if stream != "social_edges" else None)
    return judge(typed, stream, ctx, existing)


def outcomes(df: DataFrame, tag: str) -> DataFrame:
    """(tag column as it arrived, outcome, reasons) to compare whole results."""
    return df.select(F.col(tag + "_raw").alias("tag"), F.col(OUTCOME).alias("outcome"), F.col(REASONS).alias("reasons"))


def expect(spark: SparkSession, rows: list[tuple[str, str, list[str]]]) -> DataFrame:
    return spark.createDataFrame(rows, "tag string, outcome string, reasons array<string>")


def ev(event_id: str, **kw: Any) -> dict[str, Any]:
    base = {C.EVENT_ID: event_id, C.USER_ID: "u1", C.ITEM_ID: "i1", C.EVENT_TYPE: "view", C.TS: "2024-03-01T10:00:00Z"}
    return {**base, **kw}


def test_event_field_rules(spark: SparkSession) -> None:
    rows = [
        ev("ok"),
        ev("noitem", item_id="  "),
        ev("type", event_type="teleport"),
        ev("badts", ts="31/02/2024 25:61"),
        ev("future", ts="2099-01-01T00:00:00Z"),
    ]
    rows += [
        ev("early", ts="2011-05-01"),
        ev("rate0", event_type="rating", value="0"),
        ev("rate5", event_type="rating", value="5", ts=1709287200),
        ev("rnone", event_type="rating"),
        ev("badval", event_type="play", value="lots"),
    ]
    got = outcomes(judged(spark, "events", rows, users=["u1"], items=["i1"]), C.EVENT_ID)
    want = expect(spark, [
        ("ok", "kept", []), ("noitem", "quarantined", ["missing:item_id"]),
        ("type", "quarantined", ["unknown_event_type"]), ("badts", "quarantined", ["unparseable_ts"]),
        ("future", "quarantined", ["future_ts"]), ("early", "quarantined", ["before_launch_ts"]),
        ("rate0", "quarantined", ["rating_out_of_range"]), ("rate5", "kept", []),
        ("rnone", "quarantined", ["missing:value"]), ("badval", "quarantined", ["bad_value"]),
    ])
    assertDataFrameEqual(got, want)


def test_every_reason_is_listed_and_malformed_is_alone(spark: SparkSession) -> None:
    rows = [
        ev("many", user_id="ghost", item_id="nothing", event_type="teleport", ts="never"),
        {"_raw": '{"event_id": "e5", "user_id":', "_parse_error": "malformed JSON"},
    ]
    got = judged(spark, "events", rows, users=["u1"], items=["i1"])
    assertDataFrameEqual(
        got.select(F.col(REASONS).alias("reasons")),
        spark.createDataFrame(
            [(["unknown_event_type", "unknown_item", "unknown_user", "unparseable_ts"],), (["malformed_record"],)],
            "reasons array<string>",
        ),
    )


def test_strict_references_keep_known_and_quarantine_unknown(spark: SparkSession) -> None:
    rows = [ev("known"), ev("ghost_user", user_id="u9"), ev("ghost_item", item_id="i9")]
    got = outcomes(judged(spark, "events", rows, users=["u1"], items=["i1"]), C.EVENT_ID)
    assertDataFrameEqual(got, expect(spark, [
        ("known", "kept", []), ("ghost_user", "quarantined", ["unknown_user"]),
        ("ghost_item", "quarantined", ["unknown_item"]),
    ]))


def test_exact_duplicates_and_same_key_conflicts(spark: SparkSession) -> None:
    first = ev("e1", ts="2024-03-02T00:00:00Z")
    rows = [
        first,
        dict(first),  # the same line again
        ev("e1", ts="2024-03-01T00:00:00Z", event_type="click"),  # same key, older: loses
        ev("e2", _raw="line-a"),
        ev("e2", _raw="line-b"),  # same key and content, other line (re-sent): duplicate
    ]
    got = judged(spark, "events", rows, users=["u1"], items=["i1"]).select(
        F.col(C.EVENT_ID + "_raw").alias("tag"), F.col(C.EVENT_TYPE), F.col(OUTCOME).alias("outcome"),
        F.col(REASONS).alias("reasons"),
    )
    want = spark.createDataFrame(
        [("e1", "view", "kept", []), ("e1", "view", "duplicate", []), ("e1", "click", "quarantined", ["key_conflict"]),
         ("e2", "view", "kept", []), ("e2", "view", "duplicate", [])],
        "tag string, event_type string, outcome string, reasons array<string>",
    )
    assertDataFrameEqual(got, want)


def test_derive_policy_ids_snapshot_ts_and_rating_scale(spark: SparkSession) -> None:
    rows = [
        {C.USER_ID: "7", C.ITEM_ID: "3", C.EVENT_TYPE: "rating", C.VALUE: "3.5"},
        {C.USER_ID: "7", C.ITEM_ID: "4", C.EVENT_TYPE: "rating", C.VALUE: "5"},
    ]
    got = judged(spark, "events", rows, profile=DERIVE)
    assertDataFrameEqual(
        got.select(C.ITEM_ID, OUTCOME, REASONS, F.col(C.TS).cast("string").alias("ts"), F.length(C.EVENT_ID).alias("n")),
        spark.createDataFrame(
            [("ds:3", "kept", [], "2011-06-30 00:00:00", 35), ("ds:4", "quarantined", ["rating_out_of_range"], "2011-06-30 00:00:00", 35)],
            "item_id string, _outcome string, _reasons array<string>, ts string, n int",
        ),
    )


def it(item_id: str, **kw: Any) -> dict[str, Any]:
    return {C.ITEM_ID: item_id, **kw}


def test_item_rules_and_text_fixes(spark: SparkSession) -> None:
    rows = [
        it("html", title="<b>Acme</b> &amp; Sons<br/>Kettle <span class=\"x\"", price="$1,299.50"),
        it("space", title="  Big   Mug ", price="0"),
        it("moji", title="CafÃ© crÃ¨me", description="real Café stays"),
        it("neg", price="-12.5"),
        it("nan", price="NaN"),
    ]
    rows += [it("junk", price="color: red;"), it("long", title="x" * 80)]
    got = judged(spark, "items", rows, clean=CleanConfig(max_title_chars=64)).select(
        F.col(C.ITEM_ID + "_raw").alias("tag"), C.TITLE, C.DESCRIPTION, C.PRICE, OUTCOME, REASONS
    )
    want = spark.createDataFrame(
        [
            ("html", "Acme & Sons Kettle", None, 1299.5, "kept", []),
            ("space", "Big Mug", None, 0.0, "kept", []),
            ("moji", "Café crème", "real Café stays", None, "kept", []),
            ("neg", None, None, -12.5, "quarantined", ["negative_price"]),
            ("nan", None, None, float("nan"), "quarantined", ["nan_price"]),
            ("junk", None, None, None, "quarantined", ["unparseable_price"]),
            ("long", "x" * 80, None, None, "quarantined", ["oversized:title"]),
        ],
        "tag string, title string, description string, price double, _outcome string, _reasons array<string>",
    )
    assertDataFrameEqual(got, want)


def edge(src: str, dst: str, relation: str = "follow", **kw: Any) -> dict[str, Any]:
    return {C.SRC_USER_ID: src, C.DST_USER_ID: dst, C.RELATION: relation, **kw}


def test_edge_rules_self_loops_and_undirected_duplicates(spark: SparkSession) -> None:
    rows = [
        edge("u1", "u2"),
        edge("u2", "u1"),  # directed: the reverse is another edge
        edge("u1", "u1"),
        edge("u1", "u3", "friend"),
        edge("u3", "u1", "friend"),  # undirected: the same friendship listed the other way
    ]
    rows += [edge("u1", "u2", "enemy"), edge("u2", "u3", weight="0"), edge("u3", "u2", weight="2.5")]
    got = judged(spark, "social_edges", rows, users=["u1", "u2", "u3"]).select(
        F.concat_ws(">", C.SRC_USER_ID + "_raw", C.DST_USER_ID + "_raw", C.RELATION + "_raw").alias("tag"),
        OUTCOME, REASONS, C.WEIGHT, C.DIRECTED,
    )
    want = spark.createDataFrame(
        [
            ("u1>u2>follow", "kept", [], 1.0, True), ("u2>u1>follow", "kept", [], 1.0, True),
            ("u1>u1>follow", "quarantined", ["self_loop"], 1.0, True),
            # one of the two listings is kept, the other is its duplicate (which one: the record hash decides)
            ("u1>u3>friend", "duplicate", [], 1.0, False), ("u3>u1>friend", "kept", [], 1.0, False),
            ("u1>u2>enemy", "quarantined", ["unknown_relation"], 1.0, True),
            ("u2>u3>follow", "quarantined", ["bad_weight"], 0.0, True), ("u3>u2>follow", "kept", [], 2.5, True),
        ],
        "tag string, _outcome string, _reasons array<string>, weight double, directed boolean",
    )
    assertDataFrameEqual(got, want)


def test_review_rules(spark: SparkSession) -> None:
    base = {C.USER_ID: "u1", C.ITEM_ID: "i1", C.TS: "2024-03-01"}
    rows = [
        {C.REVIEW_ID: "r1", **base, C.RATING: "4", C.TEXT: " Great\u00a0 kettle ", C.HELPFULNESS: "1,234"},
        {C.REVIEW_ID: "r2", **base, C.RATING: "7"},
        {C.REVIEW_ID: "r3", **base, C.HELPFULNESS: "-1"},
        {C.REVIEW_ID: "r4", **base, C.TEXT: "y" * 40},
    ]
    got = judged(spark, "reviews", rows, users=["u1"], items=["i1"], clean=CleanConfig(max_text_chars=32)).select(
        F.col(C.REVIEW_ID + "_raw").alias("tag"), C.TEXT, C.HELPFULNESS, OUTCOME, REASONS
    )
    want = spark.createDataFrame(
        [
            ("r1", "Great kettle", 1234.0, "kept", []), ("r2", None, None, "quarantined", ["rating_out_of_range"]),
            ("r3", None, -1.0, "quarantined", ["bad_helpfulness"]), ("r4", "y" * 40, None, "quarantined", ["oversized:text"]),
        ],
        "tag string, text string, helpfulness double, _outcome string, _reasons array<string>",
    )
    assertDataFrameEqual(got, want)


def test_user_rules(spark: SparkSession) -> None:
    rows = [
        {C.USER_ID: "u1", C.SIGNUP_TS: "2024-01-01", C.COUNTRY: "  DE ", C.ATTRIBUTES: '{"segment": " a  b "}'},
        {C.USER_ID: "u2", C.ATTRIBUTES: "[1, 2]"},
        {C.USER_ID: " ", C.COUNTRY: "FR"},
    ]
    got = judged(spark, "users", rows).select(F.col(C.COUNTRY + "_raw").alias("tag"), C.ATTRIBUTES, OUTCOME, REASONS)
    want = spark.createDataFrame(
        [("  DE ", '{"segment":"a b","country":"DE"}', "kept", []), (None, "{}", "quarantined", ["bad_attributes"]),
         ("FR", '{"country":"FR"}', "quarantined", ["missing:user_id"])],
        "tag string, attributes string, _outcome string, _reasons array<string>",
    )
    assertDataFrameEqual(got, want)


@pytest.mark.parametrize(
    ("incoming_ts", "incoming_type", "outcome", "reasons"),
    [
        ("2024-03-01T10:00:00Z", "view", "duplicate", []),  # identical to silver: nothing new
        ("2024-02-01T10:00:00Z", "click", "kept", []),  # older than silver: valid history, superseded
        ("2024-04-01T10:00:00Z", "click", "kept", []),  # newer: replaces silver's row
    ],
)
def test_against_silver_rows_of_other_batches(
    spark: SparkSession, incoming_ts: str, incoming_type: str, outcome: str, reasons: list[str]
) -> None:
    ctx = RuleContext(profile=STRICT, batch_id="b0", clean=CleanConfig(), key=KEY)
    old = TYPERS["events"](keep_raw_fields(bronze(spark, "events", [ev("e1")]), "events"), ctx).select(
        *[c for c in ("event_id", "user_id", "item_id", "event_type", "value", "ts", "source", "batch_id")]
    )
    got = judged(spark, "events", [ev("e1", ts=incoming_ts, event_type=incoming_type)], existing=old)
    assertDataFrameEqual(
        got.select(OUTCOME, REASONS, "_superseded"),
        spark.createDataFrame(
            [(outcome, reasons, incoming_ts.startswith("2024-02"))],
            "_outcome string, _reasons array<string>, _superseded boolean",
        ),
    )


def test_ids_are_stripped_of_tabs_and_newlines_as_forgetting_strips_them(spark) -> None:  # type: ignore[no-untyped-def]
    from socialrec.clean.text import present, strip_ws
    from socialrec.pipelines.forget import pseudonym_of

    rows = spark.createDataFrame([("\tu1 \n",), ("u1",), ("\t \r",), (None,)], "raw string")
    got = rows.select(strip_ws(F.col("raw")).alias("s"), present(F.col("raw")).alias("p"),
                      user_pseudonym(F.col("raw"), "platform", KEY).alias("u"))
    expected = [("u1", True, pseudonym_of("u1", "platform", KEY))] * 2 + [("", False, pseudonym_of("", "platform", KEY)),
                                                                         (None, False, None)]
    assertDataFrameEqual(got, spark.createDataFrame(expected, "s string, p boolean, u string"))
    assert pseudonym_of("\tu1 \n", "platform", KEY) == pseudonym_of("u1", "platform", KEY)


def test_display_text_loses_control_characters(spark) -> None:  # type: ignore[no-untyped-def]
    from socialrec.clean.text import clean_text

    rows = spark.createDataFrame([("Red\x00 mug\x1b[31m",), ("\x7f\x85",), ("tab\tand\nnewline",)], "t string")
    got = rows.select(clean_text(F.col("t")).alias("t"))
    assertDataFrameEqual(got, spark.createDataFrame([("Red mug [31m",), (None,), ("tab and newline",)], "t string"))
