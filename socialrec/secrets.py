"""Secrets come from the environment, never from ``conf/`` or the repository.

The pseudonymisation key (DESIGN §8): ``$SOCIALREC_PSEUDONYM_KEY``. Local and test runs without it get a
generated key kept in ``paths.secrets`` (default ``~/.config/socialrec``, outside the repo) with a warning;
the cluster environment refuses to run without one, since a lost or changed key re-identifies nobody but
silently splits every user into two pseudonyms.
"""
from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from socialrec.config import AppConfig
from socialrec.errors import SecretMissingError

logger = logging.getLogger(__name__)

PSEUDONYM_KEY_ENV = "SOCIALREC_PSEUDONYM_KEY"
MIN_KEY_BYTES = 32
LOCAL_KEY_FILE = "pseudonym.key"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def pseudonym_key(cfg: AppConfig, environ: Mapping[str, str] | None = None) -> bytes:
    """The key for :func:`socialrec.transforms.privacy.hmac_sha256_hex`, as bytes (at least 32)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(PSEUDONYM_KEY_ENV)
    if raw:
        key = raw.encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise SecretMissingError(
                f"${PSEUDONYM_KEY_ENV} is {len(key)} bytes; use at least {MIN_KEY_BYTES} "
                "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        return key
    if cfg.env == "cluster":
        raise SecretMissingError(
            f"${PSEUDONYM_KEY_ENV} is not set: the cluster environment refuses to pseudonymise with a generated "
            "key. Provide it from the secret store (e.g. a Databricks secret scope mapped to this variable)."
        )
    folder = Path(cfg.paths.secrets).expanduser()
    if _inside(folder, Path(cfg.project_root)):
        raise SecretMissingError(
            f"paths.secrets ({folder}) is inside the project; keys must live outside the repository"
        )
    key_file = folder / LOCAL_KEY_FILE
    if not key_file.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(MIN_KEY_BYTES))
        logger.warning(
            "$%s is not set: generated a local pseudonym key at %s (fine for local runs; set the variable "
            "to keep pseudonyms stable across machines)", PSEUDONYM_KEY_ENV, key_file,
        )
    else:
        logger.warning("$%s is not set: using the local key at %s", PSEUDONYM_KEY_ENV, key_file)
    return key_file.read_text().strip().encode("utf-8")
