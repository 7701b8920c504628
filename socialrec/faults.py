"""Fail points for crash tests: ``SOCIALREC_FAILPOINT=<name>`` makes the process SIGKILL itself at the
checkpoint of that name (``name@N``: at its N-th pass), like a node lost mid-job. Unset in production,
where :func:`checkpoint` is a dictionary lookup."""
from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "SOCIALREC_FAILPOINT"
_passes: Counter[str] = Counter()


def checkpoint(name: str) -> None:
    """Die here, abruptly (no cleanup, no finally blocks), if the fail point names this checkpoint."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    target, _, nth = wanted.partition("@")
    if target != name:
        return
    _passes[name] += 1
    if _passes[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
