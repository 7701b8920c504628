from __future__ import annotations

import hashlib
import hmac
import logging
import stat
from pathlib import Path

import pytest
from pyspark.sql.types import StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from socialrec.errors import MissingColumnError, SecretMissingError
from socialrec.secrets import PSEUDONYM_KEY_ENV, pseudonym_key
from socialrec.transforms.privacy import pseudonymise

KEY = b"k" * 40


def ref(value: str, key: bytes = KEY) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def test_pseudonyms_equal_python_hmac_and_keep_nulls(spark) -> None:  # type: ignore[no-untyped-def]
    schema = StructType([StructField("user_id", StringType()), StructField("friend", StringType())])
    raw = [("alice", "bob"), ("Zoë 東京", None), ("", "alice")]
    got = pseudonymise(spark.createDataFrame(raw, schema), KEY, ["user_id", "friend"])
    expected = [(ref(u), ref(f) if f is not None else None) for u, f in raw]
    assertDataFrameEqual(got, spark.createDataFrame(expected, schema))


def test_long_keys_are_hashed_first_as_in_rfc2104(spark) -> None:  # type: ignore[no-untyped-def]
    long_key = bytes(range(100))
    got = pseudonymise(spark.createDataFrame([("u1",)], "user_id string"), long_key, ["user_id"]).first()
    assert got is not None and got[0] == ref("u1", long_key)


def test_another_key_gives_other_pseudonyms(spark) -> None:  # type: ignore[no-untyped-def]
    df = spark.createDataFrame([("u1",)], "user_id string")
    a = pseudonymise(df, KEY, ["user_id"]).first()
    b = pseudonymise(df, b"x" * 40, ["user_id"]).first()
    assert a is not None and b is not None and a[0] != b[0]


def test_missing_column_is_a_clear_error(spark) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MissingColumnError, match="user_id"):
        pseudonymise(spark.createDataFrame([("x",)], "other string"), KEY, ["user_id"])


def _cfg(cfg, env: str, secrets_dir: Path):  # type: ignore[no-untyped-def]
    return cfg.model_copy(update={"env": env, "paths": cfg.paths.model_copy(update={"secrets": str(secrets_dir)})})


def test_key_comes_from_the_environment(cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = pseudonym_key(_cfg(cfg, "cluster", tmp_path), {PSEUDONYM_KEY_ENV: "s" * 32})
    assert key == b"s" * 32
    with pytest.raises(SecretMissingError, match="at least 32"):
        pseudonym_key(_cfg(cfg, "local", tmp_path), {PSEUDONYM_KEY_ENV: "short"})


def test_cluster_refuses_to_run_without_a_key(cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SecretMissingError, match="cluster environment refuses"):
        pseudonym_key(_cfg(cfg, "cluster", tmp_path / "s"), {})
    assert not (tmp_path / "s").exists()


def test_local_generates_a_private_key_outside_the_repo_once(cfg, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    c = _cfg(cfg, "local", tmp_path / "secrets")
    with caplog.at_level(logging.WARNING):
        first = pseudonym_key(c, {})
    assert "generated a local pseudonym key" in caplog.text
    key_file = tmp_path / "secrets" / "pseudonym.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 32 and pseudonym_key(c, {}) == first  # stable across runs


def test_local_key_folder_inside_the_project_is_refused(cfg) -> None:  # type: ignore[no-untyped-def]
    inside = Path(cfg.project_root) / "var" / "secrets"
    with pytest.raises(SecretMissingError, match="inside the project"):
        pseudonym_key(_cfg(cfg, "local", inside), {})


TOKEN_CASES = [  # (id, text, holds the id as a token)
    ("u10000005", '{"user_id":"u10000005"}', True),
    ("u10000005", '{"user_id":"u100000051"}', False),  # a longer id starting with it
    ("u10000005", "xu10000005", False),
    ("u10000005", "u10000005", True),
    ("u10000005", "u10000005,i1,view\n", True),
    ("u10000005", 'quoted \\"u10000005\\" inside a JSON string', True),
    ("a.b(c)", "id=a.b(c);", True),
    ("a.b(c)", "id=aXb(c);", False),  # metacharacters are literal
    ("jo@x.org", "to jo@x.org.", False),  # '.' is an id character: the token does not end there
    ("Zoë", "name: Zoë}", True),
]


@pytest.mark.parametrize(("needle", "text", "expected"), TOKEN_CASES)
def test_token_match_is_the_same_in_spark_and_python(spark, needle: str, text: str, expected: bool) -> None:  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    from socialrec.lake.base import token_regex, token_regex_bytes

    in_python = token_regex_bytes(needle).search(text.encode()) is not None
    in_spark = spark.createDataFrame([(text,)], "t string").select(F.col("t").rlike(token_regex(needle))).first()[0]
    assert (in_python, in_spark) == (expected, expected)
