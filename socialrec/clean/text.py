"""Column functions that parse and normalise the text that arrived. Spark built-ins only."""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

# Decoded in this order; "&amp;" last so "&amp;lt;" becomes the literal text "&lt;", as a browser shows it.
HTML_ENTITIES: tuple[tuple[str, str], ...] = (
    ("&nbsp;", " "),
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&quot;", '"'),
    ("&#39;", "'"),
    ("&apos;", "'"),
    ("&amp;", "&"),
)
# UTF-8 bytes read as Latin-1 ("CafÃ©"): every non-ASCII character is part of a well-formed 2- or 3-byte
# UTF-8 sequence spelled in Latin-1 letters, and there is at least one. Text with a real "é" (one Latin-1
# letter on its own) does not match, so correct text is never "repaired".
# (Checked by deleting the well-formed sequences and looking for leftovers: a single anchored regex with a
# repeated alternation overflows Java's regex stack on long descriptions.)
_UTF8_AS_LATIN1 = "[\\u00C2-\\u00DF][\\u0080-\\u00BF]|[\\u00E0-\\u00EF][\\u0080-\\u00BF]{2}"
_NON_ASCII = "[^\\u0000-\\u007F]"
_EPOCH = "^-?[0-9]{1,12}(\\.[0-9]+)?$"
_BOOL_TRUE = ("true", "1", "yes", "t")
_BOOL_FALSE = ("false", "0", "no", "f")


# ASCII whitespace, as Python's str.split() and Java's \s see it: Spark's trim() strips spaces only, so a
# tab-only id would count as present and "\tu1" would be another user than "u1".
ID_WHITESPACE = " \t\n\x0b\f\r"
_EDGE_WHITESPACE = "^[ \\t\\n\\x0B\\f\\r]+|[ \\t\\n\\x0B\\f\\r]+$"


def strip_ws(col: Column) -> Column:
    """``col`` without leading and trailing ASCII whitespace (tabs and newlines too, unlike ``F.trim``)."""
    return F.regexp_replace(col, _EDGE_WHITESPACE, "")


def blank_to_null(col: Column) -> Column:
    """Stripped text, or null when absent or blank."""
    s = strip_ws(col)
    return F.when(s != "", s)


def present(col: Column) -> Column:
    """True when the field arrived with non-blank text."""
    return F.coalesce(strip_ws(col) != "", F.lit(False))


def fix_mojibake(col: Column) -> Column:
    """Re-decode text that is UTF-8 mis-read as Latin-1; leave everything else unchanged."""
    leftover = F.regexp_replace(col, _UTF8_AS_LATIN1, "")
    broken = (leftover != col) & ~leftover.rlike(_NON_ASCII)
    # The pattern also matches byte pairs/triples that are not valid UTF-8 (overlong "\u00e0\u0080\u0080",
    # surrogates "\u00ed\u00a0\u0080"), on which Spark 4's strict decode() fails the whole job
    # (MALFORMED_CHARACTER_CODING). The bytes are re-read as UTF-8 only when valid; otherwise the text stays.
    as_utf8 = F.try_validate_utf8(F.encode(col, "ISO-8859-1").cast("string"))
    return F.when(broken, F.coalesce(as_utf8, col)).otherwise(col)


def clean_text(col: Column) -> Column:
    """Display text: mojibake repaired, control characters and HTML tags (also a cut-off ``<span class=...``)
    replaced by a space, entities decoded, whitespace runs collapsed, trimmed; null when nothing is left."""
    s = fix_mojibake(col)
    # Control characters (NUL, ESC, DEL, C1) are not text: a terminal escape in a title must not reach a report.
    s = F.regexp_replace(s, "\\p{Cc}", " ")
    s = F.regexp_replace(s, "<[^>]*(>|$)", " ")
    for entity, char in HTML_ENTITIES:
        s = F.replace(s, F.lit(entity), F.lit(char))
    # Java's \s misses the no-break space (U+00A0) and other Unicode spaces; \p{Z} covers them.
    s = F.trim(F.regexp_replace(s, "[\\s\\p{Z}]+", " "))
    return F.when(s != "", s)


def _unquote(col: Column) -> Column:
    # A JSON NaN token arrives as the text "NaN" with quotes; numbers sent as strings arrive without.
    return F.regexp_replace(F.trim(col), '^"|"$', "")


def parse_double(col: Column) -> Column:
    """The number in the text (null when absent or unparseable; NaN stays NaN)."""
    return _unquote(col).try_cast("double")


def parse_count(col: Column) -> Column:
    """A count such as a vote total, allowing thousands separators ("1,234")."""
    return F.regexp_replace(_unquote(col), ",", "").try_cast("double")


def parse_price(col: Column) -> Column:
    """A price such as ``25``, ``"25.00"``, ``$25.00`` or ``€1,299.50``."""
    s = F.regexp_replace(_unquote(col), "^[$€£¥]\\s*|\\s*(USD|EUR|GBP)$", "")
    return F.regexp_replace(s, ",", "").try_cast("double")


def parse_bool(col: Column) -> Column:
    """true/false/1/0/yes/no (any case); null otherwise."""
    s = F.lower(_unquote(col))
    return F.when(s.isin(*_BOOL_TRUE), F.lit(True)).when(s.isin(*_BOOL_FALSE), F.lit(False))


def parse_ts(col: Column) -> Column:
    """A UTC timestamp from ISO-8601 (with or without offset), a date, or Unix epoch seconds."""
    s = _unquote(col)
    return F.when(s.rlike(_EPOCH), F.timestamp_seconds(s.try_cast("double"))).otherwise(F.try_to_timestamp(s))
