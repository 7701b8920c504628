"""Fuzzing ingest + clean with malformed feed lines (docs/feeds.md, docs/cleaning.md).

``MALFORMATIONS`` is a registry of kinds of bad input. Each kind writes raw JSON-lines rows for a stream and
states, per row, the outcome the pipeline must give it: quarantined with exactly these reasons, kept (with
the cleaned values silver must hold), or a duplicate. Every check compares whole results:

* bronze holds one row per line written (nothing dropped, nothing invented);
* per stream, ``silver.audit`` says input = kept + duplicates + quarantined with the counts the registry
  predicts, and ``silver.quarantine`` / the silver tables hold exactly the predicted rows (record hashes are
  recomputed here from the raw lines, silver keys from the raw ids);
* no Spark/JVM traceback escapes: file-level problems are a :class:`~socialrec.errors.SocialrecError` whose
  message names the file, or a clean no-op (0 rows).

Spark is slow per call, so each hypothesis example is one whole feed (several kinds mixed with valid rows, in
random order, plain or gzip, LF or CRLF) run through ingest + clean once, with few examples (more with
``SOCIALREC_FUZZ_EXAMPLES=N``) and no shrinking (a failure notes the kinds drawn).
``test_every_kind_at_once`` writes one batch with every kind and checks each kind's outcome by name.
"""
from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F
from pyspark.sql.types import TimestampType

from socialrec.errors import SocialrecError
from socialrec.ingest.base import SourceFormatError, SourceMissingError
from socialrec.lake import Lake
from socialrec.pipelines import clean, ingest
from socialrec.schema import columns as C
from socialrec.schema.tables import BRONZE_BATCHES, BRONZE_BY_STREAM, SILVER_AUDIT, SILVER_BY_STREAM, SILVER_QUARANTINE
from socialrec.secrets import pseudonym_key
from tests.conftest import lake_cfg

pytestmark = pytest.mark.slow

SOURCE = "platform"  # the adapter's source name for dataset=feed
BATCH = "b0001"
STREAMS = ("users", "items", "events", "social_edges", "reviews")
OMIT = object()  # a field left out of the JSON object
# Each example is a whole ingest + clean (~20 s on 2 busy cores); raise it for a longer fuzzing run.
FUZZ_EXAMPLES = int(os.environ.get("SOCIALREC_FUZZ_EXAMPLES", "2"))

# ------------------------------------------------------------------------------------------ outcomes


@dataclass(frozen=True)
class Outcome:
    """What the pipeline must do with one row: ``quarantined`` with ``reasons`` (sorted, as the cleaner
    stores them), ``kept`` with ``values`` in silver (silver column -> value, or a callable giving it;
    timestamps as epoch µs), or ``duplicate``."""

    outcome: str
    reasons: tuple[str, ...] = ()
    values: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        return f"{self.outcome}{list(self.reasons) if self.reasons else ''}"


def Q(*reasons: str) -> Outcome:
    return Outcome("quarantined", tuple(sorted(reasons)))


def K(**values: Any) -> Outcome:
    return Outcome("kept", values=tuple(sorted(values.items())))


DUP = Outcome("duplicate")


Key = tuple[Any, ...] | Callable[[], tuple[Any, ...]] | None  # a callable: computed once the key is loaded


@dataclass(frozen=True)
class Raw:
    """One line as written (without its line end); ``key``: its silver key when it is kept."""

    data: bytes
    key: Key = None
    stream: str | None = None  # default: the kind's stream
    eol: bytes = b"\n"

    def __post_init__(self) -> None:
        assert b"\n" not in self.data and b"\r" not in self.data, "a line end inside a line makes two lines"


@dataclass(frozen=True)
class Kind:
    name: str
    stream: str
    expect: tuple[Outcome, ...]  # one per row the kind writes, in order
    make: Callable[[random.Random, str], list[Raw]]  # (rng, tag for unique ids) -> rows

    def rows(self, rnd: random.Random, tag: str) -> list[Line]:
        raws = self.make(rnd, tag)
        assert len(raws) == len(self.expect), f"{self.name}: {len(raws)} rows, {len(self.expect)} outcomes"
        return [
            Line(self.name, r.stream or self.stream, r.data, r.eol, o, r.key) for r, o in zip(raws, self.expect, strict=True)
        ]


@dataclass(frozen=True)
class Line:
    kind: str
    stream: str
    data: bytes
    eol: bytes
    expect: Outcome
    key: Key


MALFORMATIONS: dict[str, Kind] = {}


def kind(stream: str, *expect: Outcome) -> Callable[[Callable[[random.Random, str], list[Raw]]], Any]:
    def register(fn: Callable[[random.Random, str], list[Raw]]) -> Callable[[random.Random, str], list[Raw]]:
        MALFORMATIONS[fn.__name__] = Kind(fn.__name__, stream, tuple(expect), fn)
        return fn

    return register


# ------------------------------------------------------------------------------------------- helpers

_KEY: bytes = b""  # the pseudonym key, set from the config by the first test (same as the pipeline's)


def _hmac(message: str) -> str:
    assert _KEY, "pseudonym key not loaded"
    return hmac.new(_KEY, message.encode("utf-8"), hashlib.sha256).hexdigest()


ID_WHITESPACE = " \t\n\x0b\f\r"  # what cleaning strips from ids (socialrec.clean.text.ID_WHITESPACE)


def uid(raw_id: str) -> str:
    """The silver user id of a raw id (ASCII whitespace stripped)."""
    return _hmac(f"{SOURCE}:{raw_id.strip(ID_WHITESPACE)}")


def qid(raw_id: str) -> str:
    return f"{SOURCE}:{raw_id.strip(ID_WHITESPACE)}"


def ukey(raw_id: str) -> Callable[[], tuple[str, ...]]:
    """A users key, pseudonymised when the lines are judged (the key is loaded by a fixture)."""
    return lambda: (uid(raw_id),)


def edge_key(src: str, dst: str, relation: str, directed: bool) -> Callable[[], tuple[str, ...]]:
    def key() -> tuple[str, ...]:
        s, d = uid(src), uid(dst)
        return (s, d, relation) if directed else (min(s, d), max(s, d), relation)

    return key


def j(obj: Any) -> bytes:
    """Compact JSON (NaN/Infinity as bare tokens, as some producers write them)."""
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if v is not OMIT}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def us(ts: str) -> int:
    """Epoch microseconds of an ISO-8601 text (no offset = UTC)."""
    dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // _US


_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
TS = "2024-03-01T12:00:00Z"


def ev(eid: Any, *, user: Any = "u1", item: Any = "i1", etype: Any = "view", ts: Any = TS, **extra: Any) -> dict[str, Any]:
    return {"event_id": eid, "user_id": user, "item_id": item, "event_type": etype, "ts": ts, **extra}


def edge(src: Any, dst: Any, relation: Any = "trust", **extra: Any) -> dict[str, Any]:
    return {"src_user_id": src, "dst_user_id": dst, "relation": relation, "ts": "2024-01-15", **extra}


def rv(rid: Any, *, user: Any = "u1", item: Any = "i1", rating: Any = 4, ts: Any = "2024-03-02", **extra: Any) -> dict[str, Any]:
    return {"review_id": rid, "user_id": user, "item_id": item, "rating": rating, "ts": ts, **extra}


def item(iid: Any, **extra: Any) -> dict[str, Any]:
    return {"item_id": iid, "updated_ts": "2023-06-01T00:00:00Z", **extra}


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


# ---------------------------------------------------------------------------------------------- kinds
# users


@kind("users", Q("missing:user_id"), Q("missing:user_id"), Q("missing:user_id"))
def user_missing_null_or_blank_id(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j({"signup_ts": "2021-01-01", "country": "DE", "attributes": {"marker": tag}})),
        Raw(j({"user_id": None, "signup_ts": "2021-01-02", "attributes": {"marker": tag}})),
        # blank: empty, spaces, tabs, newlines (all ASCII whitespace is stripped from ids)
        Raw(j({"user_id": r.choice(["", "   ", " ", "\t", " \t\n "]), "signup_ts": "2021-01-03",
               "attributes": {"marker": tag}})),
    ]


@kind("users", Q("bad_attributes"), Q("bad_attributes"))
def user_attributes_not_an_object(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j({"user_id": f"{tag}-1", "attributes": r.choice([[1, 2], ["a"], []])})),
        Raw(j({"user_id": f"{tag}-2", "attributes": r.choice(["plain text", "k=v", "42"])})),
    ]


@kind("users", Q("future_ts"), Q("unparseable_ts"))
def user_bad_signup_ts(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j({"user_id": f"{tag}-1", "signup_ts": r.choice(["2099-01-01T00:00:00Z", 4102444800, "4102444800"])})),
        Raw(j({"user_id": f"{tag}-2", "signup_ts": r.choice(["yesterday", "2024-02-30", {"$date": "2024-01-01"}])})),
    ]


@kind("users", Q("oversized:user_id"))
def user_oversized_id(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(j({"user_id": tag + "x" * r.randint(300, 2000)}))]


@kind(
    "users",
    K(first_seen_ts=us("2021-05-05"), attributes='{"country":"NL"}'),
    K(event_type="view"),
)
def user_id_with_whitespace(r: random.Random, tag: str) -> list[Raw]:
    """A padded id is trimmed: the same user as the unpadded id, so an event naming it is not unknown."""
    pad = r.choice(["  ", " ", "   "])
    return [
        Raw(j({"user_id": f"{pad}{tag}{pad}", "signup_ts": "2021-05-05", "country": " NL "}), ukey(tag)),
        Raw(j(ev(f"{tag}-e", user=tag)), (qid(f"{tag}-e"),), stream="events"),
    ]


@kind("users", K(first_seen_ts=us("2021-01-01")), K(event_type="click"), K(event_type="like"))
def numeric_ids(r: random.Random, tag: str) -> list[Raw]:
    """Ids sent as JSON numbers are their text (docs/feeds.md): user 4242 is the user "4242"."""
    return [
        Raw(j({"user_id": 4242, "signup_ts": "2021-01-01"}), ukey("4242")),
        Raw(j(ev(f"{tag}-e", user="4242", etype="click")), (qid(f"{tag}-e"),), stream="events"),
        Raw(j(ev(987654321, user=4242, etype="like")), (qid("987654321"),), stream="events"),
    ]


# items


@kind("items", K(title="Tea & Biscuits <fresh>", description="Box of 12"))
def item_html_in_title(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(j(item(tag, title="<p>Tea &amp; <i>Biscuits</i> &lt;fresh&gt;</p>", description="<b>Box</b> of 12")),
                (qid(tag),))]


@kind("items", K(title="Big Box", description="line one line two", brand="Acme"))
def item_extra_whitespace(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(j(item(tag, title="  Big\u00a0\u00a0 \t Box  ", description="line one\nline two\r\n", brand=" Acme ")),
                (qid(tag),))]


@kind("items", K(title="Café crème", category="Boulangerie"))
def item_mojibake(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(j(item(tag, title="CafÃ© crÃ¨me", category="Boulangerie")), (qid(tag),))]


@kind("items", K(title="\u00e0 x \u00ed \u00bf"))  # its C1 controls (U+0080, U+009F) become spaces
def item_invalid_mojibake_sequence(r: random.Random, tag: str) -> list[Raw]:
    """Latin-1 letters that look like UTF-8 but decode to an invalid sequence (an overlong form): not re-decoded
    (Spark 4's strict decode() used to fail the whole clean job here); the control characters go."""
    return [Raw(j(item(tag, title="\u00e0\u0080\u0080 x \u00ed\u009f\u00bf")), (qid(tag),))]


@kind("items", K(title="A B C D E"))
def item_control_chars_escaped(r: random.Random, tag: str) -> list[Raw]:
    """Escaped control characters are valid JSON. Cleaning turns U+2028 (a Unicode separator) and the C0/C1
    controls (NUL, ESC, NEL) into spaces, which then collapse."""
    return [Raw(j(item(tag, title="A\u0000B\u001bC\u2028D\u0085E")), (qid(tag),))]


@kind("items", Q("malformed_record"), Q("malformed_record"))
def raw_control_chars(r: random.Random, tag: str) -> list[Raw]:
    """Unescaped control characters inside a JSON string are not JSON."""
    c1, c2 = r.choice([b"\x00", b"\x01"]), r.choice([b"\x1b", b"\x07", b"\x0b"])
    return [
        Raw(b'{"item_id":"' + tag.encode() + b'-1","title":"a' + c1 + b'b"}'),
        Raw(b'{"item_id":"' + tag.encode() + b'-2","title":"a' + c2 + b'b"}'),
    ]


@kind("items", Q("oversized:title"), Q("oversized:description"))
def item_enormous_fields(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(item(f"{tag}-1", title="T" * (1_000_000 + r.randint(0, 1000))))),  # a 1 MB title
        Raw(j(item(f"{tag}-2", description="d" * (50_001 + r.randint(0, 100))))),
    ]


@kind("items", Q("negative_price"), Q("negative_price"), Q("negative_price"))
def item_negative_price(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(item(f"{tag}-1", price=r.choice([-12.5, -1, -0.01])))),
        Raw(j(item(f"{tag}-2", price=r.choice(["-3", "-0.5", "$-2.00"])))),
        Raw(j(item(f"{tag}-3", price=float("-inf")))),  # bare -Infinity
    ]


@kind("items", Q("nan_price"), Q("nan_price"))
def item_nan_price(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(j(item(f"{tag}-1", price=float("nan")))), Raw(j(item(f"{tag}-2", price="NaN")))]


@kind("items", Q("infinite_price"), Q("infinite_price"))
def item_infinite_price(r: random.Random, tag: str) -> list[Raw]:
    """+Infinity (bare token or text) parses as a number, but no price is infinite: quarantined."""
    return [Raw(j(item(f"{tag}-1", price=float("inf")))), Raw(j(item(f"{tag}-2", price="Infinity")))]


@kind("items", Q("unparseable_price"), Q("unparseable_price"), Q("unparseable_price"))
def item_non_numeric_price(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(item(f"{tag}-1", price=r.choice(["cheap", "12,5,0x", "1.2.3", "free!"])))),
        Raw(j(item(f"{tag}-2", price=r.choice([{"amount": 3, "currency": "EUR"}, [9.99]])))),  # object/array
        Raw(j(item(f"{tag}-3", price=r.choice([True, False])))),
    ]


@kind("items", K(price=1299.5), K(price=25.0), K(price=7.0), K(price=None))
def item_price_formats(r: random.Random, tag: str) -> list[Raw]:
    """Not malformed: the price spellings docs/feeds.md allows (blank = unknown)."""
    return [
        Raw(j(item(f"{tag}-1", price="€1,299.50")), (qid(f"{tag}-1"),)),
        Raw(j(item(f"{tag}-2", price="$25.00")), (qid(f"{tag}-2"),)),
        Raw(j(item(f"{tag}-3", price=7)), (qid(f"{tag}-3"),)),
        Raw(j(item(f"{tag}-4", price="  ")), (qid(f"{tag}-4"),)),
    ]


@kind("items", Q("key_conflict"), K(title="New title"))
def item_key_conflict(r: random.Random, tag: str) -> list[Raw]:
    """Same item twice, other content: the newest ``updated_ts`` wins, in whatever order they arrive."""
    return [
        Raw(j(item(tag, title="Old title", updated_ts="2023-01-01T00:00:00Z"))),
        Raw(j(item(tag, title="New title", updated_ts="2023-09-01T00:00:00Z")), (qid(tag),)),
    ]


@kind("items", K(title="Same"), DUP, DUP)
def item_exact_duplicate(r: random.Random, tag: str) -> list[Raw]:
    """The same line three times: whichever comes first is kept, the repeats are duplicates."""
    line = j(item(tag, title="Same"))
    return [Raw(line, (qid(tag),)) for _ in range(3)]


@kind("items", K(title="second"))
def item_duplicate_json_keys(r: random.Random, tag: str) -> list[Raw]:
    """Two values for one key in one object: the last one wins (Jackson's streaming parse)."""
    return [Raw(b'{"item_id":"' + tag.encode() + b'","title":"first","title":"second"}', (qid(tag),))]


@kind("items", Q("unparseable_ts"))
def item_unparseable_updated_ts(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(j(item(tag, updated_ts=r.choice(["soon", "2023-13-01", "01/02/2023 25:61"]))))]


@kind("items", Q("missing:item_id"), K(title="Extra"))
def item_schema_drift(r: random.Random, tag: str) -> list[Raw]:
    """A renamed key column loses the id; an unexpected extra column is ignored."""
    return [
        Raw(j({r.choice(["itemId", "id", "ItemID"]): f"{tag}-1", "title": "Renamed"})),
        Raw(j(item(f"{tag}-2", title="Extra", colour="red", dims={"w": [1, 2], "h": None})), (qid(f"{tag}-2"),)),
    ]


@kind("items", Q("malformed_record"), K(title='[[[["deep"]]]]'), K(title="Junk ignored"))
def item_deeply_nested_json(r: random.Random, tag: str) -> list[Raw]:
    """Nesting past the parser's depth limit (1000) is malformed; a nested value where a string belongs is
    kept as its JSON text (docs: bronze keeps the text); deep junk in an unknown field is ignored."""
    deep = r.randint(1_100, 20_000)
    return [
        Raw(b'{"item_id":"' + tag.encode() + b'-1","title":' + nested(deep).encode() + b"}"),
        Raw(j(item(f"{tag}-2", title=[[[["deep"]]]])), (qid(f"{tag}-2"),)),
        Raw(j(item(f"{tag}-3", title="Junk ignored"))[:-1] + b',"junk":' + nested(200).encode() + b"}", (qid(f"{tag}-3"),)),
    ]


# events


@kind("events", Q("malformed_record"), Q("malformed_record"))
def truncated_line(r: random.Random, tag: str) -> list[Raw]:
    """A JSON object cut anywhere before its closing brace."""
    out = []
    for i in (1, 2):
        line = j(ev(f"{tag}-{i}", value=None, session={"a": [1, 2, 3]}))
        out.append(Raw(line[: r.randint(1, len(line) - 1)]))
    return out


@kind("events", *[Q("malformed_record")] * 6)
def not_an_object(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j([ev(f"{tag}-1")])),  # an array holding the object
        Raw(j(f"{tag}-2 is a bare string")),
        Raw(b"null"),
        Raw(r.choice([b"42", b"-1.5e3", b"0"])),
        Raw(r.choice([b"true", b"false"])),
        Raw(j([1, 2, f"{tag}-6"])),
    ]


@kind(
    "events",
    Q("missing:event_id", "missing:event_type", "missing:item_id", "missing:ts", "missing:user_id"),
)
def empty_object(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(r.choice([b"{}", b"{ }", b'{"unknown_field":1}']))]


@kind("events", *[Q("malformed_record")] * 4)
def several_values_on_one_line(r: random.Random, tag: str) -> list[Raw]:
    """Two objects on one line (a lost newline), trailing junk, a trailing comma, a stray brace: none may
    silently keep only the first object (Spark's from_json ignores what follows it)."""
    a, b = j(ev(f"{tag}-1")), j(ev(f"{tag}-2"))
    return [Raw(a + r.choice([b"", b" "]) + b), Raw(a + b" trailing junk"), Raw(a + b","), Raw(a + b"}")]


@kind("events", *[Q("malformed_record")] * 5)
def not_strict_json(r: random.Random, tag: str) -> list[Raw]:
    """JSON5/JavaScript-isms the parser refuses."""
    return [
        Raw(b'{event_id:"' + tag.encode() + b'-1",user_id:"u1",item_id:"i1",event_type:"view",ts:"2024-03-01"}'),
        Raw(j(ev(f"{tag}-2"))[:-1] + b",}"),
        Raw(j(ev(f"{tag}-3"))[:-1] + b" /* comment */}"),
        Raw(j(ev(f"{tag}-4"))[:-1] + b',"value":007}'),
        Raw(j(ev(f"{tag}-5"))[:-1] + b',"value":1' + b"0" * 1_200 + b"}"),  # a number past the parser's limit
    ]


@kind("events", K(event_type="view"))
def single_quoted_json(r: random.Random, tag: str) -> list[Raw]:
    """Spark's JSON reader accepts single quotes (allowSingleQuotes): kept (current behaviour)."""
    return [Raw(f"{{'event_id':'{tag}','user_id':'u2','item_id':'i2','event_type':'view','ts':'{TS}'}}".encode(),
                (qid(tag),))]


@kind("events", Q("unknown_event_type"), Q("unknown_event_type"))
def unknown_event_type(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(ev(f"{tag}-1", etype=r.choice(["teleport", "viewed", "buy"])))),
        Raw(j(ev(f"{tag}-2", etype=r.choice(["view2", "ratings", "CLICKS"])))),
    ]


@kind("events", K(event_type="purchase"), K(event_type="view"))
def event_type_case_and_padding(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(ev(f"{tag}-1", etype=r.choice([" Purchase ", "PURCHASE", "purchase  "]))), (qid(f"{tag}-1"),)),
        Raw(j(ev(f"{tag}-2", etype="  VIEW")), (qid(f"{tag}-2"),)),
    ]


@kind("events", *[Q("unparseable_ts")] * 3)
def unparseable_ts(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(ev(f"{tag}-1", ts=r.choice(["not-a-date", "31/02/2024 25:61", "2024-02-30T10:00:00Z", "1e9"])))),
        Raw(j(ev(f"{tag}-2", ts=r.choice([True, [2024, 3, 1], {"$date": "2024-03-01"}])))),
        Raw(j(ev(f"{tag}-3", ts=r.choice(["2024-03-01 12:00 PM", "March 1st", "--"])))),
    ]


@kind("events", Q("future_ts"), Q("future_ts"))
def future_ts(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(ev(f"{tag}-1", ts=r.choice(["2099-01-01T00:00:00Z", "2199-12-31", "9999-12-31T23:59:59+14:00"])))),
        Raw(j(ev(f"{tag}-2", ts=r.choice([4102444800, "4102444800", 99999999999])))),
    ]


@kind("events", Q("before_launch_ts"), Q("before_launch_ts"))
def before_launch_ts(r: random.Random, tag: str) -> list[Raw]:
    """Before ``clean.platform_launch`` (2020-01-01 in every environment)."""
    return [
        Raw(j(ev(f"{tag}-1", ts=r.choice(["2011-05-05T10:00:00Z", "2019-12-31T23:59:59Z", "1900-01-01"])))),
        Raw(j(ev(f"{tag}-2", ts=r.choice([0, -86400, "1262304000"])))),
    ]


@kind(
    "events",
    K(ts=us("2024-03-01T10:34:56.250")),
    K(ts=us("2024-03-01")),
    K(ts=us("2024-03-01T12:34:56")),
    K(ts=us("2024-03-01T12:34:56")),
    K(ts=us("2024-03-01T12:34:56")),
)
def timestamp_formats(r: random.Random, tag: str) -> list[Raw]:
    """Not malformed: every timestamp spelling docs/feeds.md allows, all stored in UTC."""
    return [
        Raw(j(ev(f"{tag}-{i}", ts=ts)), (qid(f"{tag}-{i}"),))
        for i, ts in enumerate(
            ["2024-03-01T12:34:56.250+02:00", "2024-03-01", 1709296496, "1709296496", "2024-03-01T12:34:56"]
        )
    ]


@kind("events", Q("missing:event_type"), Q("missing:ts"), Q("missing:item_id"), Q("missing:user_id"))
def missing_required_field(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(ev(f"{tag}-1", etype=OMIT))),
        Raw(j(ev(f"{tag}-2", ts=OMIT))),
        Raw(j(ev(f"{tag}-3", item=OMIT))),
        Raw(j(ev(f"{tag}-4", user=OMIT))),
    ]


@kind("events", Q("missing:user_id"), Q("missing:event_id"), Q("missing:event_type"), Q("missing:ts"))
def null_or_blank_required_field(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(ev(f"{tag}-1", user=r.choice([None, "", "   "])))),
        Raw(j(ev(r.choice([None, "", "  "]), item="i2", etype="share", ts="2024-03-01T08:00:00Z", note=tag))),
        Raw(j(ev(f"{tag}-3", etype=r.choice([None, "", " "])))),
        Raw(j(ev(f"{tag}-4", ts=r.choice([None, "", "  "])))),
    ]


@kind("events", Q("missing:event_type", "missing:ts"), Q("missing:user_id"))
def renamed_columns(r: random.Random, tag: str) -> list[Raw]:
    """Schema drift: a producer renames columns (camelCase, a synonym)."""
    e1 = ev(f"{tag}-1", etype=OMIT, ts=OMIT, eventType="view", timestamp=TS)
    e2 = ev(f"{tag}-2", user=OMIT, **{r.choice(["userId", "uid", "User"]): "u1"})
    return [Raw(j(e1)), Raw(j(e2))]


@kind("events", K(event_type="cart"))
def extra_columns(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(j(ev(tag, etype="cart", session_id="s-1", context={"page": {"path": ["a", "b"]}}, v2=True)), (qid(tag),))]


@kind("events", Q("unknown_user"), Q("bad_value"), Q("unparseable_ts"))
def object_where_scalar_expected(r: random.Random, tag: str) -> list[Raw]:
    """An object/array where a scalar belongs: kept as its JSON text, which then fails the field's rule."""
    return [
        Raw(j(ev(f"{tag}-1", user={"id": "u1"}))),
        Raw(j(ev(f"{tag}-2", etype="rating", value=r.choice([{"stars": 4}, [4]])))),
        Raw(j(ev(f"{tag}-3", ts=r.choice([{"$date": TS}, [TS]])))),
    ]


@kind("events", *[Q("bad_value")] * 3)
def non_numeric_value(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(ev(f"{tag}-1", etype="rating", value=r.choice(["five", "4 stars", ""]) or "n/a"))),
        Raw(j(ev(f"{tag}-2", etype="rating", value=float("nan")))),
        Raw(j(ev(f"{tag}-3", etype="play", value=r.choice(["lots", "1,5,"])))),
    ]


@kind("events", *[Q("rating_out_of_range")] * 3, Q("missing:value"))
def rating_out_of_range_or_missing(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(ev(f"{tag}-1", etype="rating", value=r.choice([0, 0.5, 0.99])))),
        Raw(j(ev(f"{tag}-2", etype="rating", value=r.choice([6, 7, "10", 5.01])))),
        Raw(j(ev(f"{tag}-3", etype="rating", value=r.choice([float("inf"), float("-inf"), -1])))),
        Raw(j(ev(f"{tag}-4", etype="rating"))),
    ]


@kind("events", Q("unknown_user"), Q("unknown_item"), Q("unknown_item", "unknown_user"))
def unknown_references(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(ev(f"{tag}-1", user=f"ghost-{tag}"))),
        Raw(j(ev(f"{tag}-2", item=f"ghost-item-{tag}"))),
        Raw(j(ev(f"{tag}-3", user=f"ghost-{tag}", item=f"ghost-item-{tag}"))),
    ]


@kind("events", Q("future_ts", "unknown_event_type", "unknown_user"), Q("missing:value", "unparseable_ts"))
def several_reasons_at_once(r: random.Random, tag: str) -> list[Raw]:
    """Every reason that applies is given, sorted."""
    return [
        Raw(j(ev(f"{tag}-1", user="nobody", etype="teleport", ts="2099-06-01"))),
        Raw(j(ev(f"{tag}-2", etype="rating", ts="half past nine"))),
    ]


@kind("events", Q("key_conflict"), K(event_type="purchase"))
def event_key_conflict(r: random.Random, tag: str) -> list[Raw]:
    """Same event id, other content: the latest ``ts`` wins."""
    return [
        Raw(j(ev(tag, etype="cart", ts="2024-01-01T00:00:00Z"))),
        Raw(j(ev(tag, etype="purchase", ts="2024-02-01T00:00:00Z")), (qid(tag),)),
    ]


@kind("events", K(event_type="share"), DUP)
def event_resent_same_content(r: random.Random, tag: str) -> list[Raw]:
    """The same event re-sent with other formatting (key order, spacing, a number as text): a duplicate."""
    a = j(ev(tag, etype="share", item="i2"))
    b = b'{ "ts" : "' + TS.encode() + b'", "item_id": "i2", "event_type": "share", "user_id": "u1", "event_id": "' + tag.encode() + b'" }'
    return [Raw(a, (qid(tag),)), Raw(b, (qid(tag),))]


@kind("events", K(event_type="comment"), DUP, DUP)
def event_exact_duplicate(r: random.Random, tag: str) -> list[Raw]:
    line = j(ev(tag, etype="comment", user="u3"))
    return [Raw(line, (qid(tag),)) for _ in range(3)]


@kind("events", K(event_type="favourite"), K(event_type="click"), DUP)
def crlf_line_ends(r: random.Random, tag: str) -> list[Raw]:
    """CRLF line ends are line ends: the CR is not part of the row, so X<CR><LF> repeats X<LF>."""
    other = j(ev(f"{tag}-2", etype="click"))
    return [
        Raw(j(ev(f"{tag}-1", etype="favourite")), (qid(f"{tag}-1"),), eol=b"\r\n"),
        Raw(other, (qid(f"{tag}-2"),)),
        Raw(other, (qid(f"{tag}-2"),), eol=b"\r\n"),
    ]


@kind("events", K(event_type="view", user_id=lambda: uid("u2"), item_id="platform:i2"))
def ids_with_whitespace(r: random.Random, tag: str) -> list[Raw]:
    """Leading/trailing spaces around ids are trimmed (event, user and item ids)."""
    return [Raw(j(ev(f"  {tag} ", user=" u2  ", item=" i2")), (qid(tag),))]


@kind("events", Q("unknown_event_type"))
def event_duplicate_json_keys(r: random.Random, tag: str) -> list[Raw]:
    """Conflicting duplicate keys: the last value (``teleport``) is the one judged."""
    line = j(ev(tag))[:-1] + b',"event_type":"teleport"}'
    return [Raw(line)]


@kind("events", *[Q("malformed_record")] * 2)
def wrong_encoding(r: random.Random, tag: str) -> list[Raw]:
    """Bytes that are not UTF-8 (a Latin-1 "é") and a UTF-16 line inside a UTF-8 file."""
    latin1 = j(ev(f"{tag}-1", note=r.choice(["Café", "Ærø", "naïve"]))).decode().encode("latin-1")
    utf16 = j(ev(f"{tag}-2")).decode().encode("utf-16-le")
    return [Raw(latin1), Raw(utf16)]


@kind("users", Q("malformed_record"), Q("malformed_record"))
def latin1_ids_that_differ_in_one_byte(r: random.Random, tag: str) -> list[Raw]:
    """Two users whose Latin-1 ids differ only in a non-UTF-8 byte: both quarantined, neither swallowed as a
    "duplicate" of the other (read as UTF-8 both became "Jos\ufffd-...")."""
    return [Raw(f'{{"user_id":"José-{tag}"}}'.encode("latin-1")), Raw(f'{{"user_id":"Josè-{tag}"}}'.encode("latin-1"))]


@kind("events", Q("malformed_record"))
def byte_order_mark_mid_file(r: random.Random, tag: str) -> list[Raw]:
    """A UTF-8 BOM at the start of a line that is not the file's first (concatenated exports)."""
    return [Raw(b"\xef\xbb\xbf" + j(ev(tag)))]


@kind("events", Q("malformed_record"), Q("malformed_record"), Q("malformed_record"))
def empty_and_whitespace_lines(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(b""), Raw(b" " * r.randint(1, 5)), Raw(r.choice([b"\t", b" \t ", b"\t\t"]))]


# social edges


@kind("social_edges", Q("self_loop"), Q("self_loop"))
def self_loop(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(edge("u3", "u3", relation=r.choice(["follow", "trust", "friend"])))),
        Raw(j(edge(" u4", "u4 ", relation="interaction", note=tag))),  # equal once trimmed
    ]


@kind("social_edges", Q("unknown_relation"), Q("missing:relation"))
def unknown_or_missing_relation(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(edge("u1", "u3", relation=r.choice(["enemy", "follows", "blocked"]), note=tag))),
        Raw(j(edge("u1", "u4", relation=r.choice([OMIT, None, "  "]), note=tag))),
    ]


@kind("social_edges", *[Q("bad_weight")] * 4)
def non_positive_or_bad_weight(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(edge("u2", "u3", weight=r.choice([0, 0.0, "0"]), note=tag))),
        Raw(j(edge("u2", "u4", weight=r.choice([-1, -0.5, "-3"]), note=tag))),
        Raw(j(edge("u2", "u5", weight=r.choice(["heavy", {"w": 1}, True]), note=tag))),
        Raw(j(edge("u2", "u6", weight=float("nan"), note=tag))),
    ]


@kind("social_edges", Q("bad_directed"))
def bad_directed_flag(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(j(edge("u3", "u5", directed=r.choice(["maybe", 2, "sometimes"]), note=tag)))]


@kind("social_edges", Q("unknown_user"), Q("before_launch_ts"))
def edge_unknown_user_or_too_old(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(edge("u3", f"ghost-{tag}", relation="follow"))),
        Raw(j({**edge("u3", "u6", relation="interaction"), "ts": r.choice(["2015-06-01", 1262304000])})),
    ]


@kind("social_edges", K(weight=1.0, directed=False), DUP)
def friend_listed_both_ways(r: random.Random, tag: str) -> list[Raw]:
    """An undirected friendship listed in both directions is one edge plus a duplicate."""
    key = edge_key("u4", "u5", "friend", directed=False)
    return [Raw(j(edge("u4", "u5", "friend")), key), Raw(j(edge("u5", "u4", "friend")), key)]


@kind("social_edges", K(weight=2.5, directed=True), K(weight=1.0, directed=False))
def edge_flag_and_weight_spellings(r: random.Random, tag: str) -> list[Raw]:
    """Not malformed: booleans and numbers sent as text."""
    return [
        Raw(j(edge("u6", "u7", "trust", weight="2.5", directed=r.choice(["yes", "TRUE", "1", True]))),
            edge_key("u6", "u7", "trust", directed=True)),
        Raw(j(edge("u7", "u8", "interaction", directed=r.choice(["no", "false", 0, False]))),
            edge_key("u7", "u8", "interaction", directed=False)),
    ]


# reviews


@kind("reviews", Q("rating_out_of_range"), Q("rating_out_of_range"), Q("bad_value"), Q("bad_value"))
def review_bad_rating(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(rv(f"{tag}-1", rating=r.choice([0, -1, 0.5])))),
        Raw(j(rv(f"{tag}-2", rating=r.choice([6, 10, "5.5"])))),
        Raw(j(rv(f"{tag}-3", rating=r.choice(["great", "4/5", "★★★★"])))),
        Raw(j(rv(f"{tag}-4", rating=r.choice([{"stars": 5}, [5], float("nan")])))),
    ]


@kind("reviews", Q("oversized:text"))
def review_enormous_text(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(j(rv(tag, text="blah " * 10_001)))]


@kind("reviews", Q("bad_helpfulness"), Q("bad_helpfulness"), K(helpfulness=1234.0))
def review_helpfulness(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(rv(f"{tag}-1", helpfulness=r.choice([-3, "-1"])))),
        Raw(j(rv(f"{tag}-2", helpfulness=r.choice(["lots", "n/a", {"up": 3}])))),
        Raw(j(rv(f"{tag}-3", helpfulness="1,234")), (qid(f"{tag}-3"),)),
    ]


@kind("reviews", K(text="Great product & fast delivery", rating=5.0))
def review_html_text(r: random.Random, tag: str) -> list[Raw]:
    return [Raw(j(rv(tag, rating="5", text="<p>Great&nbsp;product &amp; <b>fast</b>\tdelivery</p>")), (qid(tag),))]


@kind("reviews", Q("unknown_item"), Q("missing:ts"), Q("missing:review_id"))
def review_missing_or_unknown(r: random.Random, tag: str) -> list[Raw]:
    return [
        Raw(j(rv(f"{tag}-1", item=f"ghost-item-{tag}"))),
        Raw(j(rv(f"{tag}-2", ts=r.choice([OMIT, None, ""])))),
        Raw(j(rv(r.choice([OMIT, None, " "]), text=tag))),
    ]


# ------------------------------------------------------------------------------- base and valid rows

N_USERS = 8
# Text of valid rows: letters that cleaning leaves alone (random Latin-1 letters can spell mojibake, e.g. "Âµ",
# which is repaired by design) and the spaces it collapses.
TEXT = st.sampled_from(list("abcXYZ019-éüß日本") + [" ", "\u00a0", "\u2003", "\t"])


def base_lines() -> list[Line]:
    """Declared users and items (strict references need them), and one valid first row per stream (a line
    at the very start of a file is where a UTF-8 BOM would be stripped)."""
    rows: list[Line] = []
    for n in range(1, N_USERS + 1):
        u = f"u{n}"
        rows.append(Line("base", "users", j({"user_id": u, "signup_ts": "2021-01-01", "country": "DE"}), b"\n",
                         K(first_seen_ts=us("2021-01-01"), attributes='{"country":"DE"}'), (uid(u),)))
    for n in (1, 2):
        rows.append(Line("base", "items", j(item(f"i{n}", title=f"Item {n}", price="9.99", currency="eur")), b"\n",
                         K(title=f"Item {n}", price=9.99, currency="EUR"), (qid(f"i{n}"),)))
    rows.append(Line("base", "events", j(ev("base-e")), b"\n", K(event_type="view", ts=us(TS)), (qid("base-e"),)))
    rows.append(Line("base", "social_edges", j(edge("u1", "u2", "follow")), b"\n", K(weight=1.0, directed=True),
                     (uid("u1"), uid("u2"), "follow")))
    rows.append(Line("base", "reviews", j(rv("base-r", text="Nice")), b"\n", K(rating=4.0, text="Nice"), (qid("base-r"),)))
    return rows


@st.composite
def valid_line(draw: st.DrawFn, stream: str, n: int) -> Line:
    """A valid row with a unique key, in one of the spellings the docs allow."""
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    ts_iso = draw(st.sampled_from(["2024-04-01T09:00:00Z", "2024-05-05T23:59:59.5Z", "2025-01-01T00:00:00"]))
    ts = draw(st.sampled_from([ts_iso, us(ts_iso) // 1_000_000 if us(ts_iso) % 1_000_000 == 0 else ts_iso]))
    if stream == "users":
        return Line("valid", stream, j({"user_id": f"ok-u{n}", "signup_ts": ts}), eol, K(first_seen_ts=us(ts_iso)),
                    (uid(f"ok-u{n}"),))
    if stream == "items":
        price = draw(st.sampled_from([0, 1.5, "2.50", "€3"]))
        want = {0: 0.0, 1.5: 1.5, "2.50": 2.5, "€3": 3.0}[price]
        title = draw(st.text(TEXT, min_size=1, max_size=20))
        return Line("valid", stream, j(item(f"ok-i{n}", title=title, price=price)), eol,
                    K(title=" ".join(title.split()) or None, price=want), (qid(f"ok-i{n}"),))
    if stream == "events":
        etype = draw(st.sampled_from(C.EVENT_TYPES))
        value: Any = OMIT
        if etype == "rating":
            value = draw(st.sampled_from([1, 2.5, "5", 4]))
        elif etype == "play":
            value = draw(st.integers(0, 500))
        user, it = draw(st.sampled_from([f"u{i}" for i in range(1, N_USERS + 1)])), draw(st.sampled_from(["i1", "i2"]))
        return Line("valid", stream, j(ev(f"ok-e{n}", user=user, item=it, etype=etype, ts=ts, value=value)), eol,
                    K(event_type=etype, ts=us(ts_iso)), (qid(f"ok-e{n}"),))
    if stream == "social_edges":
        # Distinct "follow" pairs among u3..u8 (the registry's kinds use other relations or quarantined rows).
        pairs = [(a, b) for a in range(3, N_USERS + 1) for b in range(3, N_USERS + 1) if a != b]
        a, b = pairs[n % len(pairs)]
        weight = draw(st.sampled_from([OMIT, 1, 0.25, "3"]))
        want = 1.0 if weight is OMIT else float(weight)
        row = edge(f"u{a}", f"u{b}", "follow", weight=weight, ts=ts_iso)
        return Line("valid", stream, j(row), eol, K(weight=want, directed=True), (uid(f"u{a}"), uid(f"u{b}"), "follow"))
    rating = draw(st.sampled_from([1, 3.5, "4", 5]))
    text = draw(st.text(TEXT, max_size=30))
    return Line("valid", stream, j(rv(f"ok-r{n}", rating=rating, text=text, ts=ts)), eol,
                K(rating=float(rating), text=" ".join(text.split()) or None), (qid(f"ok-r{n}"),))


# ------------------------------------------------------------------------------------------ the model


def spark_raw(data: bytes) -> str:
    """``_raw`` as bronze stores it: the line as UTF-8, or byte for byte as Latin-1 when it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def record_hash(stream: str, line: Line) -> str:
    """The quarantine's ``record_hash`` (docs/cleaning.md), recomputed from the raw line; events add their
    ``event_type`` as it arrived (empty for a line that could not be parsed)."""
    raw = spark_raw(line.data)
    parts = [SOURCE, BATCH, raw]
    if stream == "events":
        etype = ""
        if "malformed_record" not in line.expect.reasons:
            value = json.loads(raw).get("event_type")
            assert value is None or isinstance(value, str), f"{line.kind}: give event lines a string event_type"
            etype = value or ""
        parts.append(etype)
    return _hmac("\u001f".join(parts))


def resolve(key: Key) -> tuple[Any, ...] | None:
    return key() if callable(key) else key


@dataclass
class Expected:
    """What the pipeline must produce for one batch, derived from the lines in file order.

    A repeat of a raw line is a duplicate (a CR before the LF is not part of the line); among rows with the
    same key whose outcome is kept or duplicate, the first in the file is the kept one.
    """

    lines: dict[str, list[Line]]
    files: set[str]  # streams with a file (an empty file too): each gets an audit row
    per_line: list[tuple[str, Line, Outcome]] = field(default_factory=list)  # (label, line, outcome)
    audit: dict[str, dict[str, int]] = field(default_factory=dict)
    quarantine: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    kept: dict[str, set[tuple[Any, ...]]] = field(default_factory=dict)

    @classmethod
    def of(cls, lines: dict[str, list[Line]], files: set[str]) -> Expected:
        exp = cls(lines, files)
        numbers: Counter[str] = Counter()
        for stream in STREAMS:
            table = SILVER_BY_STREAM[stream].qualified_name
            seen: set[str] = set()
            kept: set[tuple[Any, ...]] = set()
            counts = {"input": 0, "kept": 0, "duplicate": 0, "quarantined": 0}
            for line in lines.get(stream, []):
                numbers[line.kind] += 1
                label = f"{line.kind}#{numbers[line.kind]}"
                raw = spark_raw(line.data)
                outcome, key = line.expect, resolve(line.key)
                if raw in seen:
                    outcome = DUP
                elif outcome.outcome == "quarantined":
                    exp.quarantine[(table, record_hash(stream, line))] = outcome.reasons
                elif key is None:
                    raise AssertionError(f"{label}: a kept or duplicate row needs its silver key")
                elif key in kept:
                    outcome = DUP
                else:
                    if outcome == DUP:  # the declared duplicate comes first in the file: it is the kept copy
                        outcome = next(x.expect for x in lines[stream] if resolve(x.key) == key and x.expect != DUP)
                    kept.add(key)
                seen.add(raw)
                counts["input"] += 1
                counts[outcome.outcome] += 1
                exp.per_line.append((label, line, outcome))
            if stream in files:
                exp.audit[table] = counts
            exp.kept[table] = kept
        return exp


# ------------------------------------------------------------------------------------- run and check


def write_feed(
    root: Path,
    lines: Iterable[Line],
    *,
    gz: Iterable[str] = (),
    bom: Iterable[str] = (),
    no_final_eol: Iterable[str] = (),
    empty: Iterable[str] = (),
) -> Expected:
    """``root/<BATCH>/`` with a file per stream that has lines (and an empty file for each of ``empty``);
    ``bom``: the file starts with a UTF-8 byte-order mark; ``no_final_eol``: its last line has no line end."""
    by_stream: dict[str, list[Line]] = {}
    for line in lines:
        by_stream.setdefault(line.stream, []).append(line)
    folder = root / BATCH
    folder.mkdir(parents=True)
    for stream in {*by_stream, *empty}:
        rows = by_stream.get(stream, [])
        body = b"".join(x.data + x.eol for x in rows)
        if stream in no_final_eol and rows and rows[-1].data:  # (an empty last line without its end is no line)
            body = body[: -len(rows[-1].eol)]
        if stream in bom:
            body = b"\xef\xbb\xbf" + body
        name = f"{stream}.jsonl.gz" if stream in gz else f"{stream}.jsonl"
        (folder / name).write_bytes(gzip.compress(body) if stream in gz and body else body)
    return Expected.of(by_stream, {*by_stream, *empty})


def run_feed(spark, cfg, root: Path):  # type: ignore[no-untyped-def]
    """ingest + clean of the feed under ``root/feed`` into a lake of its own."""
    c = lake_cfg(cfg, root, dataset="feed", path=str(root / "feed"))
    report = ingest.run(spark, c)
    clean.run(spark, c)
    return c, report


def _plain(df):  # type: ignore[no-untyped-def]
    """Timestamps as epoch µs (independent of the Python process's time zone)."""
    return df.select(
        *[
            F.unix_micros(F.col(f.name)).alias(f.name) if isinstance(f.dataType, TimestampType) else F.col(f.name)
            for f in df.schema.fields
        ]
    )


def _hash_if_quarantined(stream: str, line: Line) -> str:
    try:
        return record_hash(stream, line)
    except (ValueError, AttributeError, AssertionError):  # not JSON to Python (e.g. single quotes): not hashed
        return "-"


def check_lake(spark, c, report: ingest.IngestReport, exp: Expected) -> None:  # type: ignore[no-untyped-def]
    """Assert the lake holds exactly what ``exp`` predicts, line by line and table by table. Bronze: the
    ingest report counts each stream's bronze rows after the write, and the audit's input is bronze's count
    again, at clean time: both must be the number of lines written."""
    assert report.ingested == {BATCH: {s: len(exp.lines.get(s, [])) for s in sorted(exp.files)}}
    lake = Lake(spark, c)
    audit = {
        r[C.TABLE]: {
            "input": r[C.INPUT_ROWS], "kept": r[C.KEPT_ROWS], "duplicate": r[C.DUPLICATE_ROWS],
            "quarantined": r[C.QUARANTINED_ROWS],
        }
        for r in lake.read(SILVER_AUDIT).where((F.col(C.SOURCE) == SOURCE) & (F.col(C.BATCH_ID) == BATCH)).collect()
    }
    quarantine = {(r[C.TABLE], r[C.RECORD_HASH]): tuple(r[C.REASONS]) for r in lake.read(SILVER_QUARANTINE).collect()}
    silver: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    for stream in STREAMS:
        spec = SILVER_BY_STREAM[stream]
        silver[spec.qualified_name] = {tuple(r[k] for k in spec.keys): r.asDict() for r in _plain(lake.read(spec)).collect()}

    # Each line, found by its record hash (quarantined) or its key (kept); otherwise it was a duplicate.
    got: dict[str, str] = {}
    want: dict[str, str] = {}
    wrong_values: list[tuple[str, str, Any, Any]] = []
    claimed: set[Any] = set()
    for label, line, outcome in exp.per_line:
        table = SILVER_BY_STREAM[line.stream].qualified_name
        h, key = (table, _hash_if_quarantined(line.stream, line)), resolve(line.key)
        want[label] = str(outcome)
        if h in quarantine and h not in claimed:
            claimed.add(h)
            got[label] = str(Outcome("quarantined", quarantine[h]))
        elif key is not None and key in silver[table] and (table, key) not in claimed:
            claimed.add((table, key))
            got[label] = "kept"
            row = silver[table][key]
            for col, v in outcome.values:
                if row[col] != (v() if callable(v) else v):
                    wrong_values.append((label, col, v, row[col]))
        else:
            got[label] = "duplicate"

    assert got == want
    assert wrong_values == []
    assert audit == exp.audit
    assert all(v["input"] == v["kept"] + v["duplicate"] + v["quarantined"] for v in audit.values())
    assert quarantine == exp.quarantine
    assert all(quarantine.values()), "a quarantined row without a reason"
    assert {t: set(rows) for t, rows in silver.items()} == exp.kept


# --------------------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module", autouse=True)
def _pseudonym_key(cfg):  # type: ignore[no-untyped-def]
    global _KEY
    _KEY = pseudonym_key(cfg)


def test_registry() -> None:
    """At least 25 kinds over all five streams; each writes as many rows as it states outcomes for, and each
    quarantine reason is one the cleaner documents."""
    assert len(MALFORMATIONS) >= 25
    assert {k.stream for k in MALFORMATIONS.values()} == set(STREAMS)
    documented = (Path(__file__).resolve().parents[2] / "docs" / "cleaning.md").read_text(encoding="utf-8")
    for k in MALFORMATIONS.values():
        for seed in range(25):
            assert len(k.rows(random.Random(seed), k.name)) == len(k.expect)
        for o in k.expect:
            for reason in o.reasons:
                assert f"`{reason.split(':')[0]}" in documented, (k.name, reason)


def test_every_kind_at_once(spark, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One batch with every kind: each row ends exactly as its kind says (reasons included), nothing else."""
    lines = base_lines()
    for i, k in enumerate(MALFORMATIONS.values()):
        lines += k.rows(random.Random(i), k.name)
    # Also: the users file starts with a UTF-8 BOM, the items file has no final line end, reviews are gzipped.
    exp = write_feed(tmp_path / "feed", lines, bom={"users"}, no_final_eol={"items"}, gz={"reviews"})
    c, report = run_feed(spark, cfg, tmp_path)
    check_lake(spark, c, report, exp)
    # The BOM was stripped from the first users row (kept, see check_lake); no row keeps the CR of a CRLF.
    lake = Lake(spark, c)
    users = {r[C.B_RAW] for r in lake.read(BRONZE_BY_STREAM["users"]).collect()}
    assert j({"user_id": "u1", "signup_ts": "2021-01-01", "country": "DE"}).decode() in users
    events = [r[C.B_RAW] for r in lake.read(BRONZE_BY_STREAM["events"]).collect()]
    assert not any(r.startswith("\ufeff") for r in users) and not any(r.endswith("\r") for r in events)
    assert {line.kind for _label, line, _o in exp.per_line} == {*MALFORMATIONS, "base"}


@st.composite
def fuzzed_feed(draw: st.DrawFn) -> tuple[list[str], list[Line], dict[str, frozenset[str]]]:
    """A few kinds, a few valid rows per stream, in random order; each stream plain or gzip, with or without
    a UTF-8 BOM, with or without a line end after its last line."""
    names = draw(st.lists(st.sampled_from(sorted(MALFORMATIONS)), min_size=3, max_size=8, unique=True))
    rnd = draw(st.randoms(use_true_random=False))
    lines: list[Line] = []
    for name in names:
        lines += MALFORMATIONS[name].rows(rnd, name)
    for stream in STREAMS:
        lines += [draw(valid_line(stream, n)) for n in range(draw(st.integers(0, 3)))]
    rnd.shuffle(lines)
    # Users and items are always declared (references); a stream without any row here gets no file.
    base = [x for x in base_lines() if x.stream in ("users", "items") or any(y.stream == x.stream for y in lines)]
    files = {
        "gz": frozenset(draw(st.sets(st.sampled_from(STREAMS)))),
        "no_final_eol": frozenset(draw(st.sets(st.sampled_from(STREAMS)))),
        "bom": frozenset(draw(st.sets(st.sampled_from(STREAMS)))),  # every file starts with a base row
    }
    return names, base + lines, files


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: every example is a whole Spark pipeline
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(feed=fuzzed_feed())
def test_fuzzed_feeds(spark, cfg, tmp_path_factory: pytest.TempPathFactory, feed) -> None:  # type: ignore[no-untyped-def]
    names, lines, files = feed
    note(f"kinds: {names}; files: {files}")
    root = tmp_path_factory.mktemp("fuzz")
    exp = write_feed(root / "feed", lines, gz=files["gz"], no_final_eol=files["no_final_eol"], bom=files["bom"])
    c, report = run_feed(spark, cfg, root)
    check_lake(spark, c, report, exp)


# ---------------------------------------------------------------------------------- file-level kinds


def test_missing_feed_folder(spark, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "no-such-feed"
    with pytest.raises(SourceMissingError, match="feed folder .* not found") as err:
        ingest.run(spark, lake_cfg(cfg, tmp_path, dataset="feed", path=str(missing)))
    assert str(missing) in str(err.value)
    with pytest.raises(SourceMissingError, match="needs data.path"):
        ingest.run(spark, lake_cfg(cfg, tmp_path, dataset="feed", path=None))


@pytest.mark.parametrize(
    "layout",
    [
        {},  # an empty feed folder
        {"b0001/notes.txt": b"hello\n", "b0001/events.json": b"{}\n", "b0001/EVENTS.JSONL": b"{}\n"},
        {".b0001/events.jsonl": b"{}\n", "b 0001/events.jsonl": b"{}\n", "_tmp/events.jsonl": b"{}\n"},
        {"events.jsonl": b"{}\n"},  # stream files at the root, not in a batch folder
    ],
    ids=["empty-folder", "no-stream-file", "no-valid-batch-name", "files-without-batch-folder"],
)
def test_feed_folder_without_a_batch(spark, cfg, tmp_path: Path, layout: dict[str, bytes]) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "feed"
    feed.mkdir()
    for name, data in layout.items():
        (feed / name).parent.mkdir(parents=True, exist_ok=True)
        (feed / name).write_bytes(data)
    with pytest.raises(SourceMissingError, match="holds no batch folder with \\*.jsonl files") as err:
        ingest.run(spark, lake_cfg(cfg, tmp_path, dataset="feed", path=str(feed)))
    assert isinstance(err.value, SocialrecError) and str(feed) in str(err.value)


def _events(n: int = 2_000) -> bytes:
    return b"".join(j(ev(f"gz-{i}")) + b"\n" for i in range(n))


def _corrupt(data: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0x5A for b in data[mid : mid + 16]) + data[mid + 16 :]


UNREADABLE: dict[str, tuple[dict[str, bytes], str]] = {
    "truncated-gzip": ({"events.jsonl.gz": gzip.compress(_events())[:-200]}, "not a complete gzip file"),
    "corrupt-gzip": ({"events.jsonl.gz": _corrupt(gzip.compress(_events()))}, "not a complete gzip file"),
    "gzip-without-trailer": ({"events.jsonl.gz": gzip.compress(_events())[:-8]}, "not a complete gzip file"),
    "plain-text-named-gz": ({"events.jsonl.gz": _events(3)}, "not a complete gzip file"),
    "utf16-with-bom": ({"users.jsonl": '{"user_id":"u1"}\n'.encode("utf-16")}, "UTF-16/UTF-32"),
    "utf16-le-without-bom": ({"users.jsonl": '{"user_id":"u1"}\n'.encode("utf-16-le")}, "UTF-16/UTF-32"),
    "utf16-be-in-gzip": ({"users.jsonl.gz": gzip.compress('{"user_id":"u1"}\n'.encode("utf-16-be"))}, "UTF-16/UTF-32"),
    "utf32": ({"users.jsonl": '{"user_id":"u1"}\n'.encode("utf-32")}, "UTF-16/UTF-32"),
    "two-files-one-stream": ({"events.jsonl": _events(2), "events.jsonl.gz": gzip.compress(_events(2))}, "both events"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_file_fails_the_batch_clearly(spark, cfg, tmp_path: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    """A file Spark would crash on (opaque JVM error) or misread is a SourceFormatError naming the file, raised
    before anything of the batch is written."""
    files, message = UNREADABLE[case]
    folder = tmp_path / "feed" / BATCH
    folder.mkdir(parents=True)
    (folder / "items.jsonl").write_bytes(j(item("i1")) + b"\n")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    c = lake_cfg(cfg, tmp_path, dataset="feed", path=str(tmp_path / "feed"))
    with pytest.raises(SourceFormatError, match=message) as err:
        ingest.run(spark, c)
    assert isinstance(err.value, SocialrecError)
    assert any(name in str(err.value) for name in files), str(err.value)
    lake = Lake(spark, c)
    assert not lake.exists(BRONZE_BATCHES) and not lake.exists(BRONZE_BY_STREAM["items"]), "the batch was half-written"


def test_edge_case_files(spark, cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Files that are odd but readable: a whole file in Latin-1 (its ASCII lines kept, the others quarantined
    with their text intact in the record), a file of blank lines only (quarantined once, repeats are
    duplicates), a 0-byte file and a 0-byte .gz (0 rows, an audit row of zeros). (A UTF-8 BOM, CRLF and a
    missing final line end: see test_every_kind_at_once.)"""
    latin = "Crème brûlée"
    items = [ln for ln in base_lines() if ln.stream == "items"] + [
        Line("latin1", "items", j(item("i-latin", title=latin)).decode().encode("latin-1"), b"\n",
             Q("malformed_record"), None),
        Line("latin1", "items", j(item("i-ascii", title="Plain")).decode().encode("latin-1"), b"\n",
             K(title="Plain"), (qid("i-ascii"),)),
    ]
    blank = [Line("blank", "events", d, b"\n", Q("malformed_record"), None) for d in (b"", b"", b"   ", b"")]
    exp = write_feed(tmp_path / "feed", items + blank, gz={"reviews"}, empty={"social_edges", "reviews"})
    assert (tmp_path / "feed" / BATCH / "social_edges.jsonl").stat().st_size == 0
    assert (tmp_path / "feed" / BATCH / "reviews.jsonl.gz").stat().st_size == 0
    c, report = run_feed(spark, cfg, tmp_path)
    assert report.ingested == {BATCH: {"items": 4, "events": 4, "social_edges": 0, "reviews": 0}}
    check_lake(spark, c, report, exp)
    assert [str(o) for _l, _x, o in exp.per_line if _x.stream == "events"] == [
        "quarantined['malformed_record']", "duplicate", "quarantined['malformed_record']", "duplicate"
    ]
    (record,) = [
        json.loads(r[C.RECORD])
        for r in Lake(spark, c).read(SILVER_QUARANTINE).where(F.col(C.TABLE) == "silver.items").collect()
    ]
    assert record[C.B_PARSE_ERROR].startswith("not UTF-8 text") and latin in record[C.B_RAW]
