"""A seeded synthetic social e-commerce platform, written as canonical JSON-lines feeds (docs/feeds.md).

Why it exists: the pipeline needs data with *known* properties to be tested end to end. Everything the
cleaner, the graph features and the recommenders must find is planted here on purpose and recorded:

* realistic structure: users with a category taste, a catalogue with brands and lognormal prices, a
  power-law follow graph with preferential attachment and homophily, a view -> click -> cart -> purchase
  funnel, ratings, plays, reviews;
* planted social influence: followers are exposed to a followee's purchase and often buy the same item
  shortly after (counts in ``_generator.json``);
* batches with late data, late-declared users/items and legitimate catalogue updates;
* dirt: ``cfg.dirt_rate`` of the rows carry exactly one dirt kind each, every dirty line listed in
  ``_manifest.jsonl`` with the exact outcome and reasons the cleaner must give.

Design choices:

* The whole "world" (ids, times, categorical codes) is generated as numpy arrays first; only the JSON text
  is produced chunk by chunk while writing, because the text is what costs memory (10M events are ~200 MB
  of arrays but ~1.2 GB of text).
* Dirty rows are *extra* rows derived from a clean template row (a copy with its own fresh id), except the
  ``fixed`` kinds (edited in place, the row stays valid) and ``key_conflict``/``exact_duplicate`` (which
  reuse the key by definition). So the clean data set is exactly the generated one and no dirt can break a
  reference of a clean row.
* Deterministic: one ``SeedSequence(seed)`` with a child stream per concern, no wall clock, no hash-order
  iteration, gzip headers with ``mtime=0``.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, cast

import numpy as np
import pandas as pd

from socialrec.config import SyntheticConfig
from socialrec.schema.columns import EVENT_TYPES
from socialrec.synth import text as tx

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
GENERATOR_FILE = "_generator.json"
MANIFEST_FILE = "_manifest.jsonl"
STREAMS: tuple[str, ...] = ("users", "items", "events", "social_edges", "reviews")
CHUNK_ROWS = 1_000_000
DAY = 86_400

ProgressHook = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called while generating (stage ``build``) and writing (``write``)."""

# Fixed-width ids: the digit count never changes, so no id is a substring of another. Undeclared ids
# (``unknown_user``/``unknown_item`` dirt) and phantom rows (quarantined extra users/items) use number
# ranges above anything the platform declares.
USER_BASE, UNKNOWN_USER_BASE, PHANTOM_USER_BASE = 10_000_000, 90_000_000, 95_000_000
ITEM_BASE, UNKNOWN_ITEM_BASE, PHANTOM_ITEM_BASE = 10_000_000, 90_000_000, 95_000_000
EVENT_BASE, DIRTY_EVENT_BASE = 10_000_000_000, 90_000_000_000
REVIEW_BASE, DIRTY_REVIEW_BASE = 1_000_000_000, 9_000_000_000

REQUIRED: dict[str, tuple[str, ...]] = {
    "users": ("user_id",),
    "items": ("item_id",),
    "events": ("event_id", "user_id", "item_id", "event_type", "ts"),
    "social_edges": ("src_user_id", "dst_user_id", "relation"),
    "reviews": ("review_id", "user_id", "item_id", "ts"),
}
ID_FIELD: dict[str, str | None] = {
    "users": "user_id", "items": "item_id", "events": "event_id", "social_edges": None, "reviews": "review_id",
}
DIRT_KINDS: dict[str, tuple[str, ...]] = {
    "users": ("malformed_json", "missing_field", "whitespace"),
    "items": (
        "malformed_json", "missing_field", "negative_price", "nan_price", "oversized_field", "exact_duplicate",
        "html_title", "whitespace", "mojibake",
    ),
    "events": (
        "malformed_json", "missing_field", "unknown_event_type", "unparseable_ts", "future_ts",
        "before_launch_ts", "rating_out_of_range", "unknown_user", "unknown_item", "key_conflict",
        "exact_duplicate",
    ),
    "social_edges": ("malformed_json", "missing_field", "self_loop", "unknown_user", "exact_duplicate"),
    "reviews": (
        "malformed_json", "missing_field", "unparseable_ts", "rating_out_of_range", "unknown_user",
        "unknown_item", "oversized_field",
    ),
}
ALL_DIRT_KINDS: tuple[str, ...] = (
    "malformed_json", "missing_field", "unknown_event_type", "unparseable_ts", "future_ts", "before_launch_ts",
    "negative_price", "nan_price", "rating_out_of_range", "self_loop", "unknown_user", "unknown_item",
    "oversized_field", "key_conflict", "exact_duplicate", "html_title", "whitespace", "mojibake",
)
FIXED_KINDS = frozenset({"html_title", "whitespace", "mojibake"})
IN_PLACE_KINDS = FIXED_KINDS
REASON: dict[str, str] = {
    "malformed_json": "malformed_record", "unknown_event_type": "unknown_event_type",
    "unparseable_ts": "unparseable_ts", "future_ts": "future_ts", "before_launch_ts": "before_launch_ts",
    "negative_price": "negative_price", "nan_price": "nan_price", "rating_out_of_range": "rating_out_of_range",
    "self_loop": "self_loop", "unknown_user": "unknown_user", "unknown_item": "unknown_item",
    "key_conflict": "key_conflict",
}
BAD_EVENT_TYPES: tuple[str, ...] = ("teleport", "hover", "bookmark", "checkout")
BAD_TIMESTAMPS: tuple[str, ...] = ("not-a-date", "31/02/2024 25:61", "2024-13-45T99:99:99Z", "yesterday")

# event type codes follow EVENT_TYPES
VIEW, CLICK, CART, PURCHASE, FAVOURITE, LIKE, COMMENT, SHARE, RATING, PLAY = range(10)
VALUE_TYPES = (RATING, PLAY)
FOLLOW, FRIEND, TRUST = 0, 1, 2
RELATION_NAMES: tuple[str, ...] = ("follow", "friend", "trust")

# timestamp formats (docs/feeds.md "Timestamps"); offsets and milliseconds derive from the value itself
TS_ISO_Z, TS_EPOCH_NUM, TS_EPOCH_STR, TS_ISO_OFFSET, TS_ISO_NAIVE, TS_DATE = range(6)
EVENT_TS_MIX = (0.82, 0.06, 0.04, 0.05, 0.03, 0.0)
_OFFSET_SECONDS = np.array([3600, 7200, -18000, 19800], dtype=np.int64)
_OFFSET_TEXT = np.array(["+01:00", "+02:00", "-05:00", "+05:30"], dtype=object)
_MILLIS = np.array([f"{k:03d}" for k in range(1000)], dtype=object)

# behaviour parameters (why these values: a plausible e-commerce funnel with ~1.6 events per session)
TASTE_PRIMARY, TASTE_SECONDARY = 0.6, 0.2
HOMOPHILY = 0.7
OUT_DEGREE_ALPHA = 1.6
INFLUENCE_FUNNEL = (0.95, 0.85, 0.8, 0.8)  # P(view | exposed), P(click | view), P(cart | click), P(buy | cart)


# --------------------------------------------------------------------------------------------------
# the report


@dataclass
class GeneratorReport:
    """What a generation produced; also the content of ``_generator.json`` (less ``out_dir``).

    ``rows`` counts the lines written per batch and stream (dirty lines included); ``dirt`` counts manifest
    rows per dirt kind. Paths are stored relative in the JSON so the same parameters give byte-identical
    files wherever they are written.
    """

    out_dir: Path
    parameters: dict[str, Any]
    rows: dict[str, dict[str, int]]
    dirt: dict[str, int]
    manifest: Path
    dirt_by_stream: dict[str, dict[str, int]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    generated: bool = True  # False when ensure_platform found an up-to-date feed (not serialised)

    @property
    def batches(self) -> list[str]:
        return sorted(self.rows)

    @property
    def stream_rows(self) -> dict[str, int]:
        """Lines written per stream over all batches."""
        out = dict.fromkeys(STREAMS, 0)
        for per_stream in self.rows.values():
            for stream, n in per_stream.items():
                out[stream] += n
        return out

    @property
    def total_rows(self) -> int:
        return sum(self.stream_rows.values())

    @property
    def dirty_rows(self) -> int:
        return sum(self.dirt.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator_version": GENERATOR_VERSION,
            "parameters": self.parameters,
            "rows": self.rows,
            "dirt": self.dirt,
            "dirt_by_stream": self.dirt_by_stream,
            "manifest": self.manifest.name,
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, out_dir: Path | str, data: dict[str, Any], *, generated: bool = True) -> GeneratorReport:
        out = Path(out_dir)
        return cls(
            out_dir=out,
            parameters=data["parameters"],
            rows=data["rows"],
            dirt=data["dirt"],
            manifest=out / data.get("manifest", MANIFEST_FILE),
            dirt_by_stream=data.get("dirt_by_stream", {}),
            stats=data.get("stats", {}),
            generated=generated,
        )


# --------------------------------------------------------------------------------------------------
# public entry points


def generator_parameters(cfg: SyntheticConfig, platform_launch: str, max_text_chars: int) -> dict[str, Any]:
    """Everything the output depends on; ``ensure_platform`` regenerates when any of it changes."""
    return {
        "generator_version": GENERATOR_VERSION,
        **cfg.model_dump(mode="json"),
        "platform_launch": platform_launch,
        "max_text_chars": max_text_chars,
    }


def generate_platform(
    out_dir: Path | str,
    cfg: SyntheticConfig,
    *,
    platform_launch: str = "2020-01-01",
    max_text_chars: int = 50_000,
    progress: ProgressHook | None = None,
) -> GeneratorReport:
    """Generate the platform into ``out_dir`` (replacing what is there) and return its report.

    Atomic: everything is written into a hidden sibling folder that is renamed into place at the end, so a
    killed run never leaves a half-written feed under ``out_dir``.
    """
    out = Path(out_dir).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_siblings(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        platform = _Platform(cfg, platform_launch, max_text_chars, progress)
        data = platform.write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Path | None = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    report = GeneratorReport.from_dict(out, data)
    logger.info(
        "synthetic platform written to %s: %d rows, %d dirty (%s)",
        out, report.total_rows, report.dirty_rows, ", ".join(f"{s}={n}" for s, n in report.stream_rows.items()),
    )
    return report


def ensure_platform(
    out_dir: Path | str,
    cfg: SyntheticConfig,
    *,
    platform_launch: str = "2020-01-01",
    max_text_chars: int = 50_000,
    progress: ProgressHook | None = None,
) -> GeneratorReport:
    """Generate only when ``<out_dir>/_generator.json`` is missing or records other parameters.

    Lets ``make run`` call this on every start without paying for regeneration.
    """
    out = Path(out_dir).expanduser().resolve()
    meta = out / GENERATOR_FILE
    params = generator_parameters(cfg, platform_launch, max_text_chars)
    if meta.is_file():
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and data.get("parameters") == params:
            logger.info("synthetic platform at %s is up to date (seed %s); not regenerating", out, cfg.seed)
            return GeneratorReport.from_dict(out, data, generated=False)
        logger.info("synthetic platform at %s was generated with other parameters; regenerating", out)
    return generate_platform(
        out, cfg, platform_launch=platform_launch, max_text_chars=max_text_chars, progress=progress
    )


def _remove_stale_siblings(out: Path) -> None:
    """Delete temp/old folders left by killed runs (only those whose process is gone)."""
    for prefix in (f".{out.name}.tmp-", f".{out.name}.old-"):
        for path in out.parent.glob(prefix + "*"):
            pid_text = path.name[len(prefix):]
            if not pid_text.isdigit() or int(pid_text) == os.getpid() or not _pid_alive(int(pid_text)):
                shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------------------
# small vectorised helpers


def _epoch(text: str) -> int:
    """ISO date or timestamp (naive = UTC) -> Unix seconds."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _iso_z(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ids(prefix: str, numbers: np.ndarray) -> np.ndarray:
    """JSON string fragments ``"u10000042"`` for an int array (object array)."""
    digits = np.asarray(numbers, dtype=np.int64).astype(str).astype(object)
    return ('"' + prefix) + digits + '"'


def _iso(ts: np.ndarray, unit: Literal["s", "D"] = "s") -> np.ndarray:
    return np.datetime_as_string(ts.astype("datetime64[s]"), unit=unit).astype(object)


def _ts_fragments(ts: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """JSON fragments for timestamps in the format chosen per row (see ``TS_*``)."""
    out = np.empty(len(ts), dtype=object)
    for code in np.unique(codes):
        m = codes == code
        t = ts[m]
        if code == TS_ISO_Z:
            out[m] = '"' + _iso(t) + 'Z"'
        elif code == TS_EPOCH_NUM:
            out[m] = t.astype(str).astype(object)
        elif code == TS_EPOCH_STR:
            out[m] = '"' + t.astype(str).astype(object) + '"'
        elif code == TS_ISO_OFFSET:
            k = t % len(_OFFSET_SECONDS)
            out[m] = '"' + _iso(t + _OFFSET_SECONDS[k]) + "." + _MILLIS[(t * 7919) % 1000] + _OFFSET_TEXT[k] + '"'
        elif code == TS_ISO_NAIVE:
            out[m] = '"' + _iso(t) + '"'
        else:
            out[m] = '"' + _iso(t, "D") + '"'
    return out


def _ts_codes(rng: np.random.Generator, n: int, mix: tuple[float, ...]) -> np.ndarray:
    p = np.asarray(mix, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


def _lookup(values: list[str] | tuple[str, ...]) -> np.ndarray:
    """An object array of JSON string literals, indexed by code."""
    return np.array([tx.json_str(v) for v in values], dtype=object)


_TYPE_JSON = _lookup(EVENT_TYPES)


def _assemble(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Vectorised ``{"k":v,...}`` lines; ``None`` cells are left out. Same format as :func:`_line`."""
    out: np.ndarray | None = None
    for n, (key, col) in enumerate(cols.items()):
        prefix = ('{"' if n == 0 else ',"') + key + '":'
        missing = pd.isna(col)
        if n == 0 and missing.any():
            raise ValueError(f"the first column ({key}) must always be present")
        if missing.any():
            piece = np.where(missing, "", prefix + np.where(missing, "", col)).astype(object)
        else:
            piece = prefix + col
        out = piece if out is None else out + piece
    assert out is not None
    return out + "}"


def _line(fields: dict[str, str]) -> str:
    """One JSON line from already-encoded value fragments (the per-row twin of :func:`_assemble`)."""
    return "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"


def _delay(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """Log-uniform delays in seconds, at least ``lo`` (>= 3 s keeps step order under millisecond noise)."""
    return np.exp(rng.uniform(math.log(lo), math.log(hi), n)).astype(np.int64) + 1


class _GroupSampler:
    """Weighted sampling of members within a group (e.g. items of a category) in one vectorised call.

    Members are sorted by group; a draw for group g is a point in g's slice of the global weight cumsum.
    Groups without weight fall back to sampling from everyone.
    """

    def __init__(self, groups: np.ndarray, weights: np.ndarray, n_groups: int) -> None:
        self.order = np.argsort(groups, kind="stable")
        w = weights[self.order].astype(np.float64)
        self.cum = np.cumsum(w)
        g_sorted = groups[self.order]
        self.lo = np.searchsorted(g_sorted, np.arange(n_groups), side="left")
        self.hi = np.searchsorted(g_sorted, np.arange(n_groups), side="right")
        before = np.concatenate([[0.0], self.cum])
        self.cum_lo = before[self.lo]
        self.total = before[self.hi] - self.cum_lo
        self.grand = float(self.cum[-1])

    def any(self, rng: np.random.Generator, n: int) -> np.ndarray:
        k = np.searchsorted(self.cum, rng.random(n) * self.grand, side="right")
        return self.order[np.minimum(k, len(self.order) - 1)]

    def within(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        n = len(groups)
        u = rng.random(n)
        fallback = self.any(rng, n)
        tot = self.total[groups]
        k = np.searchsorted(self.cum, self.cum_lo[groups] + u * tot, side="right")
        k = np.clip(k, self.lo[groups], np.maximum(self.hi[groups] - 1, self.lo[groups]))
        k = np.minimum(k, len(self.order) - 1)
        return np.where(tot > 0, self.order[k], fallback)


@dataclass
class _Events:
    """A block of generated events (arrays of equal length)."""

    user: np.ndarray
    item: np.ndarray
    etype: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    removable: np.ndarray
    influenced: np.ndarray

    @staticmethod
    def concat(blocks: list[_Events]) -> _Events:
        return _Events(*(np.concatenate([getattr(b, f) for b in blocks]) for f in _Events.__dataclass_fields__))

    def take(self, idx: np.ndarray) -> _Events:
        return _Events(*(getattr(self, f)[idx] for f in _Events.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.ts)


@dataclass
class _Purchases:
    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray
    rating: np.ndarray  # the rating event's value, 0 when the purchase was not rated
    match: np.ndarray  # item in the buyer's primary category

    @staticmethod
    def concat(blocks: list[_Purchases]) -> _Purchases:
        return _Purchases(*(np.concatenate([getattr(b, f) for b in blocks]) for f in _Purchases.__dataclass_fields__))


@dataclass
class _Dirt:
    """One planned dirty row: its kind, the clean template row it derives from, and its parameters."""

    kind: str
    row: int
    params: dict[str, Any]


@dataclass
class _Table:
    """A stream as written: batch and file position per row, and the fragment builder for row chunks."""

    stream: str
    batch: np.ndarray
    orders: list[np.ndarray]
    fragments: Callable[[np.ndarray], dict[str, np.ndarray]]
    pos: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.pos = np.empty(len(self.batch), dtype=np.int64)
        for order in self.orders:
            self.pos[order] = np.arange(len(order))

    def __len__(self) -> int:
        return len(self.batch)


# --------------------------------------------------------------------------------------------------
# the platform


class _Platform:
    """Builds the world as arrays (``__init__``), then writes batches, manifest and report (:meth:`write`)."""

    def __init__(
        self, cfg: SyntheticConfig, platform_launch: str, max_text_chars: int, progress: ProgressHook | None
    ) -> None:
        self.cfg = cfg
        self.platform_launch = platform_launch
        self.max_text_chars = max_text_chars
        self.progress = progress
        self.launch = _epoch(platform_launch)
        self.start = _epoch(cfg.start)
        self.end = self.start + cfg.days * DAY
        if self.start < self.launch:
            raise ValueError(f"synthetic start {cfg.start} is before platform_launch {platform_launch}")
        self.n_batches = cfg.batches
        self.bounds = self.start + (np.arange(cfg.batches + 1, dtype=np.int64) * (self.end - self.start)) // cfg.batches
        self.last_lo = int(self.bounds[-2])
        self.stats: dict[str, Any] = {}
        steps: list[Callable[[], None]] = [
            self._build_users, self._build_items, self._build_edges, self._build_events, self._build_reviews,
            self._assign_batches,
        ]
        for k, step in enumerate(steps):
            self._progress("build", k, len(steps))
            step()
        self._progress("build", len(steps), len(steps))

    def _rng(self, *key: int) -> np.random.Generator:
        """An independent stream per concern, so e.g. more events never change the users."""
        return np.random.default_rng(np.random.SeedSequence(self.cfg.seed, spawn_key=key))

    def _progress(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    # ---- users ------------------------------------------------------------------------------------

    def _build_users(self) -> None:
        cfg, rng = self.cfg, self._rng(1)
        n, n_cat = cfg.users, cfg.categories
        self.cat_names = tx.category_names(n_cat)
        self.media_cat = self.cat_names.index(tx.MEDIA_CATEGORY)
        cat_pop = 1.0 / (np.arange(n_cat) + 1.0) ** 0.8
        self.cat_p = cat_pop / cat_pop.sum()
        self.u_primary = rng.choice(n_cat, size=n, p=self.cat_p).astype(np.int32)
        self.u_secondary = rng.choice(n_cat, size=n, p=self.cat_p).astype(np.int32)
        self.u_late = np.zeros(n, dtype=bool)
        if self.n_batches > 1:
            self.u_late[rng.choice(n, size=max(1, round(0.05 * n)), replace=False)] = True
        lo = max(self.launch, self.start - 3 * 365 * DAY)
        signup = lo + (rng.random(n) * (self.start - DAY - lo)).astype(np.int64)
        late_span = max(1, (self.end - self.last_lo) * 3 // 10)
        late_signup = self.last_lo + (rng.random(n) * late_span).astype(np.int64)
        self.u_signup = np.where(self.u_late, late_signup, signup)
        self.u_from = np.maximum(self.u_signup, self.start) + 60
        avail = (self.end - self.u_from) / (self.end - self.start)
        self.u_activity = rng.lognormal(0.0, 1.0, n) * avail
        self.u_popularity = rng.lognormal(0.0, 1.4, n)
        self.u_country = rng.choice(len(tx.COUNTRIES), size=n, p=_norm(tx.COUNTRY_WEIGHTS)).astype(np.int16)
        self.u_age = rng.choice(len(tx.AGE_BANDS), size=n, p=_norm(tx.AGE_WEIGHTS)).astype(np.int16)
        self.u_signup_fmt = _ts_codes(rng, n, (0.6, 0.1, 0.0, 0.1, 0.0, 0.2))
        self.country_json = _lookup(tx.COUNTRIES)
        self.attr_json = np.array(
            [
                json.dumps({"age_band": age, "segment": cat}, ensure_ascii=False, separators=(",", ":"))
                for age in tx.AGE_BANDS
                for cat in self.cat_names
            ],
            dtype=object,
        )

    def _user_fragments(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "user_id": _ids("u", USER_BASE + rows),
            "signup_ts": _ts_fragments(self.u_signup[rows], self.u_signup_fmt[rows]),
            "country": self.country_json[self.u_country[rows]],
            "attributes": self.attr_json[self.u_age[rows] * self.cfg.categories + self.u_primary[rows]],
        }

    # ---- items ------------------------------------------------------------------------------------

    def _build_items(self) -> None:
        cfg, rng = self.cfg, self._rng(2)
        n, n_cat = cfg.items, cfg.categories
        cat = rng.choice(n_cat, size=n, p=self.cat_p).astype(np.int32)
        cat[: min(n, n_cat)] = np.arange(min(n, n_cat))  # every category has an item when items >= categories
        self.i_cat = cat
        per_cat = int(np.clip(n // (n_cat * 6), 3, 12))
        self.brands = tx.brand_names(rng, n_cat * per_cat)
        self.i_brand = (cat * per_cat + rng.integers(per_cat, size=n)).astype(np.int32)
        adjective = rng.integers(len(tx.ADJECTIVES), size=n)
        non_ascii = rng.random(n) < 0.05
        if n >= 20 and not non_ascii.any():
            non_ascii[0] = True
        accented = rng.integers(len(tx.NON_ASCII_WORDS), size=n)
        noun_pick = rng.integers(1 << 30, size=n)
        suffix = rng.integers(len(tx.SUFFIXES), size=n)
        desc_r = rng.integers(1 << 30, size=(n, 6)).tolist()
        self.i_noun: list[str] = []
        titles: list[str] = []
        descriptions: list[str] = []
        for k in range(n):
            nouns = tx.nouns_for(self.cat_names[cat[k]])
            noun = nouns[int(noun_pick[k]) % len(nouns)]
            adj = tx.NON_ASCII_WORDS[accented[k]] if non_ascii[k] else tx.ADJECTIVES[adjective[k]]
            brand = self.brands[self.i_brand[k]]
            title = tx.make_title(brand, adj, noun, tx.SUFFIXES[suffix[k]])
            self.i_noun.append(noun)
            titles.append(title)
            descriptions.append(tx.make_description(title, noun, brand, desc_r[k]))
        self.i_title = titles
        self.i_desc = descriptions
        self.i_mojibake_ok = np.array([tx.has_mojibake_letters(t) for t in titles], dtype=bool)
        self.i_title_json = _lookup(titles)
        self.i_desc_json = _lookup(descriptions)
        self.cat_json = _lookup(self.cat_names)
        self.brand_json = _lookup(self.brands)
        self.currency_json = _lookup(tx.CURRENCIES)
        mu = rng.uniform(math.log(8.0), math.log(250.0), n_cat)
        self.i_price = np.maximum(np.round(np.exp(mu[cat] + 0.55 * rng.standard_normal(n)), 2), 0.5)
        self.i_currency = rng.choice(len(tx.CURRENCIES), size=n, p=_norm(tx.CURRENCY_WEIGHTS)).astype(np.int16)
        self.i_late = np.zeros(n, dtype=bool)
        if self.n_batches > 1:
            self.i_late[rng.choice(n, size=max(1, round(0.05 * n)), replace=False)] = True
        lo = max(self.launch, self.start - 2 * 365 * DAY)
        updated = lo + (rng.random(n) * (self.start - 3600 - lo)).astype(np.int64)
        late_span = max(1, (self.end - self.last_lo) * 3 // 10)
        late_updated = self.last_lo + (rng.random(n) * late_span).astype(np.int64)
        self.i_updated = np.where(self.i_late, late_updated, updated)
        self.i_from = np.maximum(self.i_updated, self.start) + 60
        self.i_popularity = rng.lognormal(0.0, 1.2, n) * (self.end - self.i_from) / (self.end - self.start)
        self.i_media = cat == self.media_cat
        # legitimate catalogue updates: ~1% of the b0001 items re-sent in the last batch with a new price
        if self.n_batches > 1:
            regular = np.flatnonzero(~self.i_late)
            k = min(len(regular), max(1, round(0.01 * n)))
            self.upd_item = np.sort(rng.choice(regular, size=k, replace=False))
            factor = rng.uniform(0.7, 1.3, k)
            new_price = np.round(self.i_price[self.upd_item] * factor, 2)
            same = new_price == self.i_price[self.upd_item]
            new_price[same] = np.round(self.i_price[self.upd_item][same] + 1.0, 2)
            self.upd_price = np.maximum(new_price, 0.5)
            self.upd_updated = self.last_lo + (rng.random(k) * (self.end - self.last_lo)).astype(np.int64)
        else:
            self.upd_item = np.zeros(0, dtype=np.int64)
            self.upd_price = np.zeros(0)
            self.upd_updated = np.zeros(0, dtype=np.int64)
        n_rows = n + len(self.upd_item)
        self.item_row_item = np.concatenate([np.arange(n), self.upd_item]).astype(np.int64)
        self.item_row_price = np.concatenate([self.i_price, self.upd_price])
        self.item_row_updated = np.concatenate([self.i_updated, self.upd_updated])
        self.item_row_ts_fmt = _ts_codes(rng, n_rows, (0.85, 0.05, 0.0, 0.1, 0.0, 0.0))
        self.item_row_price_str = rng.random(n_rows) < 0.1
        self.stats["late_items"] = int(self.i_late.sum())
        self.stats["price_updates"] = len(self.upd_item)
        self.stats["non_ascii_titles"] = int(non_ascii.sum())

    def _item_fragments(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        item = self.item_row_item[rows]
        price_text = np.array([f"{p:.2f}" for p in self.item_row_price[rows]], dtype=object)
        price = np.where(self.item_row_price_str[rows], '"' + price_text + '"', price_text).astype(object)
        return {
            "item_id": _ids("i", ITEM_BASE + item),
            "title": self.i_title_json[item],
            "description": self.i_desc_json[item],
            "category": self.cat_json[self.i_cat[item]],
            "brand": self.brand_json[self.i_brand[item]],
            "price": price,
            "currency": self.currency_json[self.i_currency[item]],
            "updated_ts": _ts_fragments(self.item_row_updated[rows], self.item_row_ts_fmt[rows]),
        }

    # ---- social graph -----------------------------------------------------------------------------

    def _build_edges(self) -> None:
        cfg, rng = self.cfg, self._rng(3)
        n = cfg.users
        sampler = _GroupSampler(self.u_primary, self.u_popularity, cfg.categories)
        target = cfg.avg_follows
        cat_size = np.bincount(self.u_primary, minlength=cfg.categories)
        factor = 1.0
        keys = np.zeros(0, dtype=np.int64)
        for _attempt in range(5):
            # power-law out-degrees (Pareto, alpha 1.7), capped at everyone else
            xm = target * (OUT_DEGREE_ALPHA - 1.0) / OUT_DEGREE_ALPHA * factor
            raw = xm * (1.0 - rng.random(n)) ** (-1.0 / OUT_DEGREE_ALPHA)
            deg = np.minimum(np.floor(raw + 0.5), n - 1).astype(np.int64)
            src = np.repeat(np.arange(n, dtype=np.int64), deg)
            # preferential in-degree (popularity weights) with homophily (same primary category); hubs
            # follow outside their category more, so a small category does not cap their distinct follows
            p_same = np.minimum(HOMOPHILY, 0.5 * cat_size[self.u_primary] / np.maximum(deg, 1))[src]
            same = rng.random(len(src)) < p_same
            dst = np.where(same, sampler.within(rng, self.u_primary[src]), sampler.any(rng, len(src)))
            keep = dst != src
            keys = np.unique(src[keep] * n + dst[keep])
            mean = len(keys) / n
            if abs(mean - target) <= 0.05 * target or mean == 0:
                break
            factor *= target / mean
        f_src, f_dst = keys // n, keys % n
        f_ts = self._edge_times(rng, f_src, f_dst, historical=0.7)
        # friends: a subset of follow pairs, written once per unordered pair with directed=false
        pick = rng.choice(len(keys), size=min(len(keys), round(0.8 * n)), replace=False) if len(keys) else keys
        a = np.minimum(f_src[pick], f_dst[pick])
        b = np.maximum(f_src[pick], f_dst[pick])
        pair, first = np.unique(a * n + b, return_index=True)
        fr_src, fr_dst = pair // n, pair % n
        fr_ts = f_ts[pick][first] + _delay(rng, len(pair), 3600, 20 * DAY)
        ok = fr_ts < self.end
        fr_src, fr_dst, fr_ts = fr_src[ok], fr_dst[ok], fr_ts[ok]
        # trust: a few follow edges also carry an explicit trust score in (0, 1]
        tpick = np.sort(rng.choice(len(keys), size=min(len(keys), round(0.15 * n)), replace=False))
        tr_src, tr_dst = f_src[tpick], f_dst[tpick]
        tr_ts = f_ts[tpick] + _delay(rng, len(tpick), 600, 10 * DAY)
        ok = tr_ts < self.end
        tr_src, tr_dst, tr_ts, tpick = tr_src[ok], tr_dst[ok], tr_ts[ok], tpick[ok]
        tr_w = np.round(rng.uniform(0.1, 1.0, len(tr_src)), 2)
        src = np.concatenate([f_src, fr_src, tr_src])
        dst = np.concatenate([f_dst, fr_dst, tr_dst])
        rel = np.concatenate(
            [np.full(len(f_src), FOLLOW), np.full(len(fr_src), FRIEND), np.full(len(tr_src), TRUST)]
        ).astype(np.int8)
        ts = np.concatenate([f_ts, fr_ts, tr_ts])
        weight = np.concatenate([np.ones(len(f_src)), np.ones(len(fr_src)), tr_w])
        order = np.lexsort((rel, dst, src, ts))
        self.e_src, self.e_dst, self.e_rel, self.e_ts, self.e_weight = (
            src[order], dst[order], rel[order], ts[order], weight[order],
        )
        m = len(order)
        self.e_fmt = _ts_codes(rng, m, EVENT_TS_MIX)
        self.e_omit_weight = (rng.random(m) < 0.5) & (self.e_rel != TRUST)
        self.e_omit_directed = (rng.random(m) < 0.5) & (self.e_rel != FRIEND)
        # the follow graph as CSR by followee, for the influence step
        fm = self.e_rel == FOLLOW
        fsrc, fdst, fts = self.e_src[fm], self.e_dst[fm], self.e_ts[fm]
        by_dst = np.argsort(fdst, kind="stable")
        self.fol_src, self.fol_ts = fsrc[by_dst], fts[by_dst]
        indeg = np.bincount(fdst, minlength=n)
        self.fol_indeg = indeg
        self.fol_ptr = np.concatenate([[0], np.cumsum(indeg)]).astype(np.int64)
        out_deg = np.bincount(fsrc, minlength=n)
        same_share = float(np.mean(self.u_primary[fsrc] == self.u_primary[fdst])) if len(fsrc) else 0.0
        share = np.bincount(self.u_primary, minlength=cfg.categories) / n
        self.stats["graph"] = {
            "follow_edges": int(fm.sum()),
            "friend_edges": len(fr_src),
            "trust_edges": len(tr_src),
            "mean_out_degree": round(float(out_deg.mean()), 4),
            "max_out_degree": int(out_deg.max()),
            "max_in_degree": int(indeg.max()),
            "same_category_share": round(same_share, 4),
            "random_same_category_share": round(float((share**2).sum()), 4),
        }

    def _edge_times(self, rng: np.random.Generator, src: np.ndarray, dst: np.ndarray, historical: float) -> np.ndarray:
        """Creation times after both signups: a share before the window (history), the rest inside it."""
        lo = np.maximum(self.u_signup[src], self.u_signup[dst]) + 60
        hist = (rng.random(len(src)) < historical) & (lo < self.start)
        u = rng.random(len(src))
        before = lo + (u * (self.start - lo)).astype(np.int64)
        lo_in = np.maximum(lo, self.start)
        inside = lo_in + (u * (self.end - lo_in)).astype(np.int64)
        return np.where(hist, before, inside)

    def _edge_fragments(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        rel = self.e_rel[rows]
        weight = np.where(
            rel == TRUST, np.array([f"{w:.2f}" for w in self.e_weight[rows]], dtype=object), "1"
        ).astype(object)
        weight[self.e_omit_weight[rows]] = None
        directed = np.where(rel == FRIEND, "false", "true").astype(object)
        directed[self.e_omit_directed[rows]] = None
        return {
            "src_user_id": _ids("u", USER_BASE + self.e_src[rows]),
            "dst_user_id": _ids("u", USER_BASE + self.e_dst[rows]),
            "relation": _lookup(RELATION_NAMES)[rel],
            "weight": weight,
            "directed": directed,
            "ts": _ts_fragments(self.e_ts[rows], self.e_fmt[rows]),
        }

    # ---- events -----------------------------------------------------------------------------------

    def _build_events(self) -> None:
        cfg = self.cfg
        self.item_sampler = _GroupSampler(self.i_cat, self.i_popularity, cfg.categories)
        self.cat_cdf = np.cumsum(self.cat_p)
        self.user_cdf = np.cumsum(self.u_activity) / self.u_activity.sum()
        # events per session (influence included) from a pilot, so trimming stays small
        n_sessions = math.ceil(cfg.events / 1.45)
        pilot = min(n_sessions, max(20_000, n_sessions // 20))
        per_session = len(self._simulate(self._rng(4, 99), pilot)[0]) / pilot
        n_sessions = math.ceil(cfg.events / max(per_session, 0.1) * 1.03)
        for attempt in range(6):
            rng = self._rng(4, attempt)
            events, purchases, influence = self._simulate(rng, n_sessions)
            if len(events) >= cfg.events:
                break
            logger.debug("events: %d < %d target with %d sessions; retrying", len(events), cfg.events, n_sessions)
            n_sessions = math.ceil(n_sessions * cfg.events / max(len(events), 1) * 1.05)
        events = self._trim(rng, events, cfg.events)
        order = np.argsort(events.ts, kind="stable")
        ev = events.take(order)
        del events
        self.ev_user = ev.user
        self.ev_item = ev.item
        self.ev_type = ev.etype
        self.ev_ts = ev.ts
        self.ev_value = ev.value
        self.ev_fmt = _ts_codes(self._rng(5), len(ev), EVENT_TS_MIX)
        self.purchases = purchases
        influence["influenced_events"] = int(ev.influenced.sum())
        influence["influenced_purchases"] = int((ev.influenced & (ev.etype == PURCHASE)).sum())
        influence.update(self._measure_influence())
        self.stats["influence"] = influence
        self.stats["events_by_type"] = {
            name: int(c) for name, c in zip(EVENT_TYPES, np.bincount(ev.etype, minlength=len(EVENT_TYPES)), strict=True)
        }

    def _simulate(self, rng: np.random.Generator, n_sessions: int) -> tuple[_Events, _Purchases, dict[str, Any]]:
        """Organic sessions in blocks, then one generation of influenced sessions from their purchases."""
        blocks: list[_Events] = []
        bought: list[_Purchases] = []
        block = 1_000_000
        for lo in range(0, n_sessions, block):
            n = min(block, n_sessions - lo)
            u, i, t0 = self._sessions(rng, n)
            p_click = np.where(self.u_primary[u] == self.i_cat[i], 0.38, 0.22)
            ev, pu = self._funnel(rng, u, i, t0, p_click, 0.3, 0.5, influenced=False)
            blocks.append(ev)
            bought.append(pu)
        base = _Purchases.concat(bought)
        infl_ev, infl_pu, stats = self._influence(rng, base)
        blocks.append(infl_ev)
        return _Events.concat(blocks), _Purchases.concat([base, infl_pu]), stats

    def _sessions(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Who looks at what and when: users by activity, a category from their taste, items by popularity."""
        u = np.minimum(np.searchsorted(self.user_cdf, rng.random(n), side="right"), self.cfg.users - 1)
        r = rng.random(n)
        other = np.minimum(np.searchsorted(self.cat_cdf, rng.random(n), side="right"), self.cfg.categories - 1)
        cat = np.where(r < TASTE_PRIMARY, self.u_primary[u], np.where(r < TASTE_PRIMARY + TASTE_SECONDARY,
                                                                      self.u_secondary[u], other))
        i = self.item_sampler.within(rng, cat.astype(np.int64))
        lo = np.maximum(self.u_from[u], self.i_from[i])
        t0 = lo + (rng.random(n) * (self.end - lo)).astype(np.int64)
        return u.astype(np.int64), i.astype(np.int64), t0

    def _funnel(
        self,
        rng: np.random.Generator,
        u: np.ndarray,
        i: np.ndarray,
        t0: np.ndarray,
        p_click: np.ndarray | float,
        p_cart: float,
        p_buy: float,
        *,
        influenced: bool,
    ) -> tuple[_Events, _Purchases]:
        """One session per row: view, then click/cart/purchase as time-ordered subsets, plus engagement."""
        n, end = len(u), self.end
        match = self.u_primary[u] == self.i_cat[i]
        click = rng.random(n) < p_click
        t_click = t0 + _delay(rng, n, 5, 900)
        click &= t_click < end
        cart = click & (rng.random(n) < p_cart)
        t_cart = t_click + _delay(rng, n, 20, 3 * 3600)
        cart &= t_cart < end
        buy = cart & (rng.random(n) < p_buy)
        t_buy = t_cart + _delay(rng, n, 30, 2 * DAY)
        buy &= t_buy < end
        like = rng.random(n) < 0.06
        t_like = t0 + _delay(rng, n, 3, 600)
        like &= t_like < end
        fav = click & (rng.random(n) < 0.12)
        t_fav = t_click + _delay(rng, n, 3, 900)
        fav &= t_fav < end
        comment = click & (rng.random(n) < 0.06)
        t_comment = t_click + _delay(rng, n, 30, 3600)
        comment &= t_comment < end
        share = click & (rng.random(n) < 0.05)
        t_share = t_click + _delay(rng, n, 3, 1800)
        share &= t_share < end
        play = self.i_media[i] & (rng.random(n) < 0.7)
        t_play = t0 + _delay(rng, n, 10, 3600)
        play &= t_play < end
        plays = rng.geometric(0.15, n)
        rate = buy & (rng.random(n) < 0.45)
        t_rate = t_buy + _delay(rng, n, 3600, 14 * DAY)
        rate &= t_rate < end
        cum = np.where(match[:, None], np.cumsum([0.03, 0.05, 0.12, 0.35, 0.45]), np.cumsum([0.08, 0.12, 0.25, 0.3, 0.25]))
        stars = 1 + (rng.random(n)[:, None] > cum[:, :4]).sum(axis=1)
        only_view = ~(click | like | play)
        parts = (
            (np.ones(n, dtype=bool), VIEW, t0, None),
            (click, CLICK, t_click, None),
            (cart, CART, t_cart, None),
            (buy, PURCHASE, t_buy, None),
            (fav, FAVOURITE, t_fav, None),
            (like, LIKE, t_like, None),
            (comment, COMMENT, t_comment, None),
            (share, SHARE, t_share, None),
            (rate, RATING, t_rate, stars),
            (play, PLAY, t_play, plays),
        )
        blocks = []
        for mask, code, ts, value in parts:
            k = int(mask.sum())
            blocks.append(
                _Events(
                    user=u[mask].astype(np.int32),
                    item=i[mask].astype(np.int32),
                    etype=np.full(k, code, dtype=np.int8),
                    ts=ts[mask],
                    value=(value[mask] if value is not None else np.full(k, -1)).astype(np.int32),
                    removable=(only_view[mask] if code == VIEW else np.zeros(k, dtype=bool)),
                    influenced=np.full(k, influenced),
                )
            )
        purchases = _Purchases(u[buy], i[buy], t_buy[buy], np.where(rate, stars, 0)[buy], match[buy])
        return _Events.concat(blocks), purchases

    def _influence(self, rng: np.random.Generator, base: _Purchases) -> tuple[_Events, _Purchases, dict[str, Any]]:
        """Planted social influence: followers see a followee's purchase and often buy the item too.

        Each follower whose follow edge existed at purchase time is exposed with probability
        ``cfg.influence``; an exposed follower views the item hours to days later with a high probability and
        goes down a funnel with high step probabilities (``INFLUENCE_FUNNEL``). One generation only.
        """
        p_view, p_click, p_cart, p_buy = INFLUENCE_FUNNEL
        vs, items, times = [], [], []
        block = 200_000
        for lo in range(0, len(base.user), block):
            buyer = base.user[lo : lo + block]
            pt = base.ts[lo : lo + block]
            pi = base.item[lo : lo + block]
            cnt = self.fol_indeg[buyer]
            total = int(cnt.sum())
            if total == 0:
                continue
            rep = np.repeat(np.arange(len(buyer)), cnt)
            first = np.repeat(np.cumsum(cnt) - cnt, cnt)
            pos = np.repeat(self.fol_ptr[buyer], cnt) + (np.arange(total) - first)
            follower = self.fol_src[pos]
            exposed = (self.fol_ts[pos] <= pt[rep]) & (rng.random(total) < self.cfg.influence)
            vs.append(follower[exposed])
            items.append(pi[rep[exposed]])
            times.append(pt[rep[exposed]])
        v = np.concatenate(vs) if vs else np.zeros(0, dtype=np.int64)
        i = np.concatenate(items) if items else np.zeros(0, dtype=np.int64)
        t = np.concatenate(times) if times else np.zeros(0, dtype=np.int64)
        # one exposure per (follower, item): the earliest
        key = v.astype(np.int64) * self.cfg.items + i
        order = np.lexsort((t, key))
        keep = np.ones(len(order), dtype=bool)
        keep[1:] = key[order][1:] != key[order][:-1]
        sel = np.sort(order[keep])
        v, i, t = v[sel], i[sel], t[sel]
        exposures = len(v)
        t_view = t + _delay(rng, len(v), 3600, 4 * DAY)
        ok = (t_view >= self.u_from[v]) & (t_view < self.end) & (rng.random(len(v)) < p_view)
        ev, pu = self._funnel(rng, v[ok], i[ok], t_view[ok], p_click, p_cart, p_buy, influenced=True)
        stats = {
            "probability": self.cfg.influence,
            "organic_purchases": len(base.user),
            "exposures": exposures,
            "influenced_views": int(ok.sum()),
        }
        return ev, pu, stats

    def _trim(self, rng: np.random.Generator, ev: _Events, target: int) -> _Events:
        """Cut to exactly ``target`` events by dropping only views that nothing else depends on."""
        excess = len(ev) - target
        if excess <= 0:
            return ev
        candidates = np.flatnonzero(ev.removable)
        if len(candidates) < excess:
            leaves = np.isin(ev.etype, (FAVOURITE, LIKE, COMMENT, SHARE, RATING, PLAY))
            candidates = np.flatnonzero(ev.removable | leaves)
        drop = rng.choice(candidates, size=min(excess, len(candidates)), replace=False)
        keep = np.ones(len(ev), dtype=bool)
        keep[drop] = False
        if len(ev) - len(drop) != target:
            logger.warning("events: could only trim to %d (target %d)", len(ev) - len(drop), target)
        return ev.take(np.flatnonzero(keep))

    def _measure_influence(self) -> dict[str, Any]:
        """P(buy i | a followee bought i earlier) vs the item's base buyer share, from the final events."""
        buys = pd.DataFrame(
            {"u": self.ev_user[self.ev_type == PURCHASE], "i": self.ev_item[self.ev_type == PURCHASE],
             "t": self.ev_ts[self.ev_type == PURCHASE]}
        )
        if buys.empty:
            return {"followee_purchase_rate": 0.0, "base_rate": 0.0, "lift": 0.0}
        first = buys.groupby(["u", "i"], sort=True)["t"].min().reset_index()
        fm = self.e_rel == FOLLOW
        follows = pd.DataFrame({"v": self.e_src[fm], "u": self.e_dst[fm], "et": self.e_ts[fm]})
        exposed = follows.merge(first, on="u")
        exposed = exposed[exposed["et"] <= exposed["t"]]
        exposed = exposed.groupby(["v", "i"], sort=True)["t"].min().reset_index()
        own = first.rename(columns={"u": "v", "t": "own_t"})
        joined = exposed.merge(own, on=["v", "i"], how="left")
        rate = float((joined["own_t"] > joined["t"]).mean()) if len(joined) else 0.0
        buyers = first.groupby("i").size() / self.cfg.users
        base = float(joined["i"].map(buyers).mean()) if len(joined) else 0.0
        return {
            "followee_purchase_rate": round(rate, 6),
            "base_rate": round(base, 6),
            "lift": round(rate / base, 4) if base > 0 else 0.0,
        }

    def _event_fragments(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        value = self.ev_value[rows]
        has = value >= 0
        value_col = np.full(len(rows), None, dtype=object)
        value_col[has] = value[has].astype(str).astype(object)
        return {
            "event_id": _ids("e", EVENT_BASE + rows),
            "user_id": _ids("u", USER_BASE + self.ev_user[rows]),
            "item_id": _ids("i", ITEM_BASE + self.ev_item[rows]),
            "event_type": _TYPE_JSON[self.ev_type[rows]],
            "value": value_col,
            "ts": _ts_fragments(self.ev_ts[rows], self.ev_fmt[rows]),
        }

    # ---- reviews ----------------------------------------------------------------------------------

    def _build_reviews(self) -> None:
        rng = self._rng(6)
        p = self.purchases
        pick = rng.random(len(p.user)) < 0.25
        ts = p.ts[pick] + _delay(rng, int(pick.sum()), 2 * DAY, 20 * DAY)
        ok = ts < self.end
        user, item, ts = p.user[pick][ok], p.item[pick][ok], ts[ok]
        rated = p.rating[pick][ok]
        match = p.match[pick][ok]
        n = len(ts)
        cum = np.where(match[:, None], np.cumsum([0.04, 0.06, 0.15, 0.35, 0.40]), np.cumsum([0.1, 0.15, 0.25, 0.3, 0.2]))
        sampled = 1 + (rng.random(n)[:, None] > cum[:, :4]).sum(axis=1)
        rating = np.where(rated > 0, rated, sampled)
        order = np.argsort(ts, kind="stable")
        self.rv_user, self.rv_item, self.rv_ts, self.rv_rating = user[order], item[order], ts[order], rating[order]
        self.rv_help = (rng.geometric(0.35, n) - 1)[order]
        self.rv_text_r = rng.integers(1 << 30, size=(n, 6))[order]
        self.rv_fmt = _ts_codes(rng, n, EVENT_TS_MIX)
        self.stats["reviews"] = n

    def _review_fragments(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        texts = [
            tx.json_str(tx.make_review(int(r), self.i_title[it], self.i_noun[it], self.brands[self.i_brand[it]], rr))
            for r, it, rr in zip(
                self.rv_rating[rows], self.rv_item[rows], self.rv_text_r[rows].tolist(), strict=True
            )
        ]
        return {
            "review_id": _ids("r", REVIEW_BASE + rows),
            "user_id": _ids("u", USER_BASE + self.rv_user[rows]),
            "item_id": _ids("i", ITEM_BASE + self.rv_item[rows]),
            "rating": self.rv_rating[rows].astype(str).astype(object),
            "text": np.array(texts, dtype=object),
            "helpfulness": self.rv_help[rows].astype(str).astype(object),
            "ts": _ts_fragments(self.rv_ts[rows], self.rv_fmt[rows]),
        }

    # ---- batches ----------------------------------------------------------------------------------

    def _window(self, ts: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.bounds, ts, side="right") - 1, 0, self.n_batches - 1)

    def _assign_batches(self) -> None:
        rng = self._rng(7)
        nb, last = self.n_batches, self.n_batches - 1
        # events: by time window; late_fraction of each window but the last arrives with the next batch
        window = self._window(self.ev_ts)
        batch = window.copy()
        arrival = self.ev_ts.copy()
        for b in range(nb - 1):
            lo, hi = np.searchsorted(window, [b, b + 1])  # events are sorted by ts, so windows are contiguous
            k = round(self.cfg.late_fraction * (hi - lo))
            if k:
                late = lo + rng.choice(hi - lo, size=k, replace=False)
                batch[late] = b + 1
                arrival[late] = self.bounds[b + 1] + (rng.random(k) * min(2 * DAY, self.bounds[b + 2] - self.bounds[b + 1])).astype(np.int64)
        self.stats["late_events"] = int((batch != window).sum())
        ev_orders = []
        for b in range(nb):
            rows = np.flatnonzero(batch == b)
            ev_orders.append(rows[np.argsort(arrival[rows], kind="stable")])
        n_users, n_item_rows = self.cfg.users, len(self.item_row_item)
        u_batch = np.where(self.u_late, last, 0)
        i_batch = np.where(self.i_late[self.item_row_item], last, 0)
        i_batch[self.cfg.items :] = last
        e_batch = self._window(self.e_ts)
        r_batch = self._window(self.rv_ts)
        self.tables: dict[str, _Table] = {
            "users": _Table("users", u_batch, _split(u_batch, nb), self._user_fragments),
            "items": _Table("items", i_batch, _split(i_batch, nb), self._item_fragments),
            "events": _Table("events", batch, ev_orders, self._event_fragments),
            "social_edges": _Table("social_edges", e_batch, _split(e_batch, nb), self._edge_fragments),
            "reviews": _Table("reviews", r_batch, _split(r_batch, nb), self._review_fragments),
        }
        assert len(self.tables["users"]) == n_users and len(self.tables["items"]) == n_item_rows
        self.stats["late_users"] = int(self.u_late.sum())
        self.stats["windows"] = [
            {"batch": _label(b), "start": _iso_z(int(self.bounds[b])), "end": _iso_z(int(self.bounds[b + 1]))}
            for b in range(nb)
        ]

    # ---- dirt -------------------------------------------------------------------------------------

    def _plan_dirt(self) -> dict[str, list[_Dirt]]:
        """Choose every dirty row up front: kind, clean template row, and random parameters."""
        rng = self._rng(8)
        rate = self.cfg.dirt_rate
        plan: dict[str, list[_Dirt]] = {}
        counters = {"fresh": 0, "unknown_user": 0, "unknown_item": 0, "phantom": 0}
        for stream in STREAMS:
            table = self.tables[stream]
            kinds = DIRT_KINDS[stream]
            n = len(table)
            entries: list[_Dirt] = []
            plan[stream] = entries
            if rate <= 0 or n == 0:
                continue
            target = round(rate * n)
            counts = np.ones(len(kinds), dtype=np.int64)
            if target > len(kinds):
                counts += rng.multinomial(target - len(kinds), np.full(len(kinds), 1.0 / len(kinds)))
            used = np.zeros(n, dtype=bool)  # template of some dirt
            pinned = np.zeros(n, dtype=bool)  # edited in place or whose key is reused: never a template again
            for kind, count in zip(kinds, counts, strict=True):
                eligible = self._eligible(stream, kind)
                candidates = np.flatnonzero(eligible & ~used)
                copy_kind = kind not in IN_PLACE_KINDS and kind not in ("exact_duplicate", "key_conflict")
                if len(candidates) < count and copy_kind and stream != "social_edges" and kind != "missing_field":
                    # tiny streams: extra rows may share a clean template (each gets its own fresh id)
                    reuse = np.flatnonzero(eligible & ~pinned)
                    rows = np.sort(rng.choice(reuse, size=int(count), replace=True)) if len(reuse) else reuse
                elif len(candidates):
                    rows = np.sort(rng.choice(candidates, size=min(int(count), len(candidates)), replace=False))
                else:
                    rows = candidates
                if len(rows) == 0:
                    logger.warning("dirt: no clean %s row can carry %s", stream, kind)
                    continue
                used[rows] = True
                if not copy_kind:
                    pinned[rows] = True
                for row in rows.tolist():
                    entries.append(_Dirt(kind, row, self._dirt_params(rng, stream, kind, row, counters)))
        return plan

    def _eligible(self, stream: str, kind: str) -> np.ndarray:
        n = len(self.tables[stream])
        if stream == "items" and kind == "mojibake":
            return self.i_mojibake_ok[self.item_row_item]
        if stream == "events":
            no_value = ~np.isin(self.ev_type, VALUE_TYPES)
            if kind == "unknown_event_type":
                return no_value
            if kind == "rating_out_of_range":
                return self.ev_type == RATING
            if kind == "key_conflict":
                return no_value & (self.ev_ts >= self.start + 10)
        if stream == "social_edges" and kind == "self_loop":
            ok = np.zeros(n, dtype=bool)
            _, first = np.unique(self.e_src, return_index=True)
            ok[first] = True
            return ok
        return np.ones(n, dtype=bool)

    def _dirt_params(
        self, rng: np.random.Generator, stream: str, kind: str, row: int, counters: dict[str, int]
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"u": float(rng.random()), "variant": int(rng.integers(1 << 20))}
        if kind not in IN_PLACE_KINDS and kind not in ("exact_duplicate", "key_conflict"):
            params["fresh"] = counters["fresh"]
            counters["fresh"] += 1
        if kind == "missing_field":
            required = REQUIRED[stream]
            params["field"] = required[int(rng.integers(len(required)))]
            params["style"] = ("absent", "absent", "absent", "null", "blank")[int(rng.integers(5))]
        elif kind == "unknown_user":
            params["id"] = UNKNOWN_USER_BASE + counters["unknown_user"]
            counters["unknown_user"] += 1
            params["side"] = ("src_user_id", "dst_user_id")[int(rng.integers(2))]
        elif kind == "unknown_item":
            params["id"] = UNKNOWN_ITEM_BASE + counters["unknown_item"]
            counters["unknown_item"] += 1
        elif kind == "future_ts":
            lo = _epoch("2099-01-01")
            params["ts"] = lo + int(rng.integers(360 * DAY))
        elif kind == "before_launch_ts":
            lo = max(_epoch("1990-01-01"), self.launch - 9 * 365 * DAY)
            params["ts"] = lo + int(rng.integers(max(1, self.launch - 30 * DAY - lo)))
        elif kind == "rating_out_of_range":
            params["rating"] = (0, 7, -1)[int(rng.integers(3))]
        elif kind == "key_conflict":
            orig = int(self.ev_ts[row])
            lo = max(self.start, orig - 7 * DAY)
            params["ts"] = lo + int(rng.integers(max(1, orig - lo)))  # strictly earlier: loses the tie-break
            current = int(self.ev_type[row])
            choices = [c for c in (VIEW, CLICK, CART, LIKE, SHARE, FAVOURITE) if c != current]
            params["type"] = choices[int(rng.integers(len(choices)))]
        if kind in ("malformed_json", "missing_field", "negative_price", "nan_price", "oversized_field") and stream in (
            "users", "items",
        ):
            params["phantom"] = counters["phantom"]
            counters["phantom"] += 1
        return params

    def _dirty_row(
        self, stream: str, dirt: _Dirt, fields: dict[str, str], attempt: int = 0
    ) -> tuple[str, str, list[str], dict[str, Any] | None]:
        """The dirty line for ``dirt`` from its template's fragments: (line, outcome, reasons, expected).

        ``attempt`` > 0 asks for a variant (another cut point, another way of leaving a field out) when the
        first one repeats an earlier dirty line of the same file, which would make it a duplicate instead.
        """
        kind, p = dirt.kind, dirt.params
        if kind == "exact_duplicate":
            return _line(fields), "duplicate", [], None
        f = dict(fields)
        if kind in FIXED_KINDS:
            name = "country" if stream == "users" else "title"
            clean = json.loads(f[name])
            if kind == "html_title":
                dirty = tx.html_wrap(clean, p["variant"])
                expected = tx.clean_text(dirty)
            elif kind == "whitespace":
                dirty = tx.whitespace_mess(clean, p["variant"])
                expected = clean
            else:
                dirty = tx.mojibake(clean)
                expected = clean
            assert dirty != expected
            f[name] = tx.json_str(dirty)
            return _line(f), "fixed", [], {name: expected}
        # quarantined rows: extra rows with their own key (except key_conflict)
        if "phantom" in p:
            prefix, base = ("u", PHANTOM_USER_BASE) if stream == "users" else ("i", PHANTOM_ITEM_BASE)
            f[ID_FIELD[stream] or ""] = f'"{prefix}{base + p["phantom"]}"'
        elif "fresh" in p and stream == "events":
            f["event_id"] = f'"e{DIRTY_EVENT_BASE + p["fresh"]}"'
        elif "fresh" in p and stream == "reviews":
            f["review_id"] = f'"r{DIRTY_REVIEW_BASE + p["fresh"]}"'
        reasons = [REASON.get(kind, "")]
        if kind == "malformed_json":
            line = _line(f)
            cut = len(line) // 2
            if stream == "social_edges":  # no id: keep the whole key (src, dst, relation) so cuts stay distinct
                value_at = line.find('"relation":') + len('"relation":"')
                cut = max(cut, line.find('"', value_at) + 1)
            return line[: min(cut + attempt, len(line) - 1)], "quarantined", reasons, None
        if kind == "missing_field":
            name = p["field"]
            styles = ("absent", "null", "blank")
            style = styles[(styles.index(p["style"]) + attempt) % len(styles)]
            if style == "absent":
                del f[name]
            else:
                f[name] = "null" if style == "null" else '""'
            reasons = [f"missing:{name}"]
        elif kind == "unknown_event_type":
            f["event_type"] = tx.json_str(BAD_EVENT_TYPES[p["variant"] % len(BAD_EVENT_TYPES)])
        elif kind == "unparseable_ts":
            f["ts"] = tx.json_str(BAD_TIMESTAMPS[p["variant"] % len(BAD_TIMESTAMPS)])
        elif kind in ("future_ts", "before_launch_ts"):
            f["ts"] = f'"{_iso_z(p["ts"])}"'
        elif kind == "negative_price":
            f["price"] = "-" + f["price"].strip('"')
        elif kind == "nan_price":
            f["price"] = '"NaN"'
        elif kind == "rating_out_of_range":
            f["value" if stream == "events" else "rating"] = str(p["rating"])
        elif kind == "self_loop":
            f["dst_user_id"] = f["src_user_id"]
        elif kind == "unknown_user":
            f[p["side"] if stream == "social_edges" else "user_id"] = f'"u{p["id"]}"'
        elif kind == "unknown_item":
            f["item_id"] = f'"i{p["id"]}"'
        elif kind == "oversized_field":
            name = "description" if stream == "items" else "text"
            value = json.loads(f[name])
            reps = self.max_text_chars // (len(value) + 1) + 2
            f[name] = tx.json_str(" ".join([value] * reps))
            reasons = [f"oversized:{name}"]
        elif kind == "key_conflict":
            f["ts"] = f'"{_iso_z(p["ts"])}"'
            f["event_type"] = _TYPE_JSON[p["type"]]
        else:  # pragma: no cover - every kind is handled above
            raise ValueError(f"unknown dirt kind {kind}")
        return _line(f), "quarantined", sorted(reasons), None

    # ---- writing ----------------------------------------------------------------------------------

    def write(self, root: Path) -> dict[str, Any]:
        """Write every batch folder, then ``_manifest.jsonl`` and ``_generator.json``; return the report dict."""
        plan = self._plan_dirt()
        suffix = ".jsonl.gz" if self.cfg.gzip else ".jsonl"
        rows: dict[str, dict[str, int]] = {}
        dirt = dict.fromkeys(ALL_DIRT_KINDS, 0)
        dirt_by_stream: dict[str, dict[str, int]] = {s: dict.fromkeys(DIRT_KINDS[s], 0) for s in STREAMS}
        total = sum(len(t) for t in self.tables.values()) + sum(len(v) for v in plan.values())
        done = 0
        with (root / MANIFEST_FILE).open("wb") as manifest:
            for b in range(self.n_batches):
                label = _label(b)
                rows[label] = {}
                folder = root / label
                folder.mkdir()
                for stream in STREAMS:
                    table = self.tables[stream]
                    entries = sorted((d for d in plan[stream] if table.batch[d.row] == b), key=lambda d: table.pos[d.row])
                    if len(table.orders[b]) == 0 and not entries:
                        continue
                    written = 0
                    with _open_out(folder / f"{stream}{suffix}", self.cfg.gzip) as fh:
                        for lines, found in self._chunks(table, b, entries, label):
                            if not lines:
                                continue
                            fh.write(("\n".join(lines) + "\n").encode("utf-8"))
                            written += len(lines)
                            for entry in found:
                                manifest.write((json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
                                dirt[entry["kind"]] += 1
                                dirt_by_stream[stream][entry["kind"]] += 1
                            done += len(lines)
                            self._progress("write", done, total)
                    rows[label][stream] = written
        self._progress("write", total, total)
        missing = [k for k, c in dirt.items() if c == 0]
        if self.cfg.dirt_rate > 0 and missing:
            logger.warning("dirt kinds that could not be planted (data too small?): %s", ", ".join(missing))
        report = GeneratorReport(
            out_dir=root,
            parameters=generator_parameters(self.cfg, self.platform_launch, self.max_text_chars),
            rows=rows,
            dirt=dirt,
            manifest=root / MANIFEST_FILE,
            dirt_by_stream=dirt_by_stream,
            stats=self.stats,
        )
        data = report.to_dict()
        (root / GENERATOR_FILE).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return data

    def _chunks(
        self, table: _Table, b: int, entries: list[_Dirt], label: str
    ) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
        """Lines of one batch file in chunks, with its dirty rows edited in or inserted; plus their manifest."""
        order = table.orders[b]
        seen: set[str] = set()  # quarantined lines of this file: each must be unique to be judged as such
        k = 0
        for lo in range(0, max(len(order), 1), CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, len(order))
            rows = order[lo:hi]
            lines = _assemble(table.fragments(rows)) if len(rows) else np.zeros(0, dtype=object)
            mine: list[_Dirt] = []
            while k < len(entries) and table.pos[entries[k].row] < hi:
                mine.append(entries[k])
                k += 1
            if not mine:
                yield lines.tolist(), []
                continue
            frags = table.fragments(np.array([d.row for d in mine], dtype=np.int64))
            keys = [float(j) for j in range(len(lines))]
            extra_lines: list[str] = []
            extra_keys: list[float] = []
            manifest: list[tuple[float, dict[str, Any]]] = []
            n = len(lines)
            for idx, d in enumerate(mine):
                j = int(table.pos[d.row]) - lo
                fields = {key: col[idx] for key, col in frags.items() if col[idx] is not None}
                for attempt in range(6):
                    line, outcome, reasons, expected = self._dirty_row(table.stream, d, fields, attempt)
                    if outcome != "quarantined" or line not in seen:
                        break
                else:
                    logger.warning("dirt: %s %s row repeats an earlier dirty line", table.stream, d.kind)
                seen.add(line)
                if d.kind in IN_PLACE_KINDS:
                    lines[j] = line
                    key = float(j)
                else:
                    if d.kind == "exact_duplicate":
                        key = j + 0.5 + d.params["u"] * (n - j - 0.5)
                    else:
                        key = d.params["u"] * n - 0.25
                    extra_lines.append(line)
                    extra_keys.append(key)
                entry = {
                    "batch": label, "stream": table.stream, "kind": d.kind, "outcome": outcome,
                    "reasons": reasons, "raw": line, "expected": expected,
                }
                manifest.append((key, entry))
            all_lines = lines.tolist() + extra_lines
            merged = np.argsort(np.array(keys + extra_keys), kind="stable")
            manifest.sort(key=lambda pair: pair[0])
            yield [all_lines[m] for m in merged.tolist()], [entry for _, entry in manifest]


def _split(batch: np.ndarray, n_batches: int) -> list[np.ndarray]:
    """Rows of each batch in row order (rows are already in the intended file order)."""
    return [np.flatnonzero(batch == b) for b in range(n_batches)]


def _label(b: int) -> str:
    return f"b{b + 1:04d}"


def _norm(weights: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


@contextlib.contextmanager
def _open_out(path: Path, compress: bool) -> Iterator[IO[bytes]]:
    """A binary file, gzip-compressed without name or mtime in the header (byte-identical reruns)."""
    with path.open("wb", buffering=1 << 20) as raw:
        if not compress:
            yield raw
            return
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
            yield cast(IO[bytes], gz)
