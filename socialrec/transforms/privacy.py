"""Pseudonymisation with a keyed hash, in Spark built-ins only.

HMAC-SHA256 (RFC 2104): ``H((K ^ opad) || H((K ^ ipad) || m))`` with SHA-256's 64-byte block. The padded
keys are computed once on the driver and enter the plan as binary literals; the two hashes are
``sha2`` over binary concatenations, so no Python UDF runs and the result equals Python's
``hmac.new(key, m, sha256).hexdigest()`` byte for byte.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from socialrec.schema.validate import require_columns

BLOCK = 64  # SHA-256 block size in bytes


def _padded_keys(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK, b"\x00")
    inner = bytes(b ^ 0x36 for b in key)
    outer = bytes(b ^ 0x5C for b in key)
    return inner, outer


def hmac_sha256_hex(col: Column | str, key: bytes) -> Column:
    """HMAC-SHA256 of the UTF-8 bytes of ``col`` as 64 lowercase hex characters; null stays null."""
    inner_key, outer_key = _padded_keys(key)
    value = F.col(col) if isinstance(col, str) else col
    message = F.encode(value.cast("string"), "UTF-8")
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_key), message), 256))
    return F.sha2(F.concat(F.lit(outer_key), inner), 256)


def pseudonymise(df: DataFrame, key: bytes, columns: Iterable[str]) -> DataFrame:
    """Replace each of ``columns`` (raw user ids) with its keyed pseudonym, keeping names and order."""
    cols = list(columns)
    require_columns(df, cols, "pseudonymise input")
    return df.withColumns({c: hmac_sha256_hex(c, key) for c in cols})
