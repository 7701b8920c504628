"""Named errors. Each message says what is wrong and, where it can, what to do next."""
from __future__ import annotations

from collections.abc import Sequence


class SocialrecError(Exception):
    """Base of every error socialrec raises on purpose."""


class ConfigError(SocialrecError):
    """The configuration is invalid (unknown key, bad value, missing file)."""


class MissingColumnError(SocialrecError, ValueError):
    """A DataFrame lacks columns a function needs."""

    def __init__(self, missing: Sequence[str], present: Sequence[str], what: str = "DataFrame") -> None:
        self.missing = list(missing)
        self.present = list(present)
        super().__init__(f"{what} is missing columns {self.missing}; present: {self.present}")


class SchemaMismatchError(SocialrecError, ValueError):
    """A DataFrame does not match a table contract; ``differences`` lists every difference."""

    def __init__(self, table: str, differences: Sequence[str]) -> None:
        self.table = table
        self.differences = list(differences)
        body = "\n".join(f"  - {d}" for d in self.differences)
        super().__init__(f"DataFrame does not match the contract of {table}:\n{body}")


class LakeError(SocialrecError):
    """A lake operation failed."""


class LakeConflictError(LakeError):
    """A concurrent writer committed first and the operation could not be retried safely."""


class EngineUnavailableError(LakeError):
    """The requested Delta engine cannot run in this session."""


class SecretMissingError(SocialrecError):
    """A secret required in this environment is not set."""


class AccountingError(SocialrecError):
    """A cleaning step did not account for every input row (input != kept + duplicates + quarantined)."""
