"""Secrets scanner for the repository (``make lint``, and CI through tests/unit/test_secrets_scan.py).

Scans every file git would commit (tracked, plus untracked files that are not ignored) with Yelp's
detect-secrets and its default plugins (private keys, AWS/GitHub/Slack/... tokens, basic-auth URLs,
keyword assignments such as ``password = "..."``, high-entropy strings) and exits 1 listing each finding.

A false positive is silenced where it is, with an inline ``# pragma: allowlist secret`` comment (detect-secrets'
own convention), so every exception is visible in review. Measured outputs (bench/results/*.json) are
excluded: they hold MLflow run ids, which are random hex by design and not secrets.

Usage: ``python scripts/check_secrets.py [--root DIR]`` (default: the repository this script lives in).
"""
from __future__ import annotations

import argparse
import fnmatch
import subprocess
import sys
from pathlib import Path

EXCLUDED = ("bench/results/*.json",)


def candidate_files(root: Path) -> list[str]:
    """Files git would commit under ``root``; every file when ``root`` is not a git work tree."""
    done = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                          capture_output=True, text=True)
    if done.returncode == 0:
        files = [f for f in done.stdout.split("\0") if f]
    else:
        files = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    return sorted(f for f in files if (root / f).is_file() and not any(fnmatch.fnmatch(f, pat) for pat in EXCLUDED))


def scan(root: Path) -> list[dict[str, object]]:
    """Every finding as ``{"file", "line", "type"}`` (the secret itself is never printed)."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    found = SecretsCollection(root=str(root))
    with default_settings():
        for f in candidate_files(root):
            found.scan_file(f)
    return sorted(
        ({"file": f, "line": s["line_number"], "type": s["type"]} for f, secrets in found.json().items() for s in secrets),
        key=lambda x: (str(x["file"]), int(str(x["line"]))),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    findings = scan(args.root.resolve())
    for f in findings:
        sys.stderr.write(f"{f['file']}:{f['line']}: possible secret ({f['type']})\n")
    if findings:
        sys.stderr.write(f"{len(findings)} possible secret(s). Move real secrets to the environment; mark a false "
                         "positive with '# pragma: allowlist secret' on its line.\n")
        return 1
    sys.stdout.write(f"secrets scan: no findings in {len(candidate_files(args.root.resolve()))} files\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
