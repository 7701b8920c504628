"""The secrets scanner (``make lint``) passes on the repository and finds planted secrets; no config file can
carry the pseudonym key or tracking credentials (they only come from the environment)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from socialrec.config import load_config
from socialrec.errors import SocialrecError
from tests.conftest import REPO

SCANNER = REPO / "scripts" / "check_secrets.py"


def scan(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCANNER), "--root", str(root)], capture_output=True, text=True, timeout=300)


def test_the_repository_holds_no_secrets() -> None:
    done = scan(REPO)
    assert done.returncode == 0, done.stderr
    assert "no findings" in done.stdout


def test_planted_secrets_are_found_and_never_echoed(tmp_path: Path) -> None:
    aws = "AKIA" + "IOSFODNN7EXAMPLE"  # split: this test file itself must pass the scan
    (tmp_path / "conf.py").write_text(
        f'aws_access_key_id = "{aws}"\n'
        "-----BEGIN RSA " "PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
        "-----END RSA " "PRIVATE KEY-----\n"
        'pass' 'word = "hunter2-correct-horse"\n'
        'allowed = "hunter3-correct-horse"  # pragma: allowlist secret\n'
    )
    (tmp_path / "b.yaml").write_text('db = "postgres://admin:' + 's3cr3tpass@db.example.com/x"\n')
    done = scan(tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines()[:-1] == [
        "b.yaml:1: possible secret (Basic Auth Credentials)",
        "conf.py:1: possible secret (AWS Access Key)",
        "conf.py:2: possible secret (Private Key)",
        "conf.py:5: possible secret (Secret Keyword)",
    ]
    assert aws not in done.stderr + done.stdout and "hunter2" not in done.stderr + done.stdout


@pytest.mark.parametrize("key", ["secrets.pseudonym_key", "paths.pseudonym_key", "tracking.password", "tracking.token"])
def test_config_has_no_place_for_secrets(key: str) -> None:
    # extra="forbid": a secret put in conf/ or --set is refused at start, so it only comes from the environment.
    with pytest.raises(SocialrecError):
        load_config("test", {key: "x" * 40}, conf_dir=REPO / "conf")
