"""Kill real job processes at points inside every job; the reruns must converge to an uninterrupted run.

The processes run in the background from collection on (``crash_chain``, see ``crash_chain.py``); this test
checks what they recorded: every kill happened where it was meant to, every table stayed readable after it,
and once the chain has run to the end every table's content equals the uninterrupted reference's (notebook 02's
stage-by-stage run of the same platform, or the chain's own ``jobs.run_all``; volatile columns aside); after forgetting a user (killed once too), exactly that user's rows are gone.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import signal

import pytest

from tests.integration.crash_chain import CHAIN, FORGET_KILLS, FORGOTTEN, NAMES_FORGOTTEN, Results

pytestmark = pytest.mark.slow


def names_the_user(row: tuple[str, ...], pseudonym: str) -> bool:
    text = " ".join(row)
    return pseudonym in text or NAMES_FORGOTTEN.search(text) is not None


def test_every_job_killed_mid_way_converges_on_rerun(crash_chain: Results) -> None:
    pipeline = crash_chain.reference_state
    assert pipeline is not None and "gold.evaluation" in pipeline, crash_chain.reference_by

    kills, (resumed, *forget_kills, forget_rerun) = crash_chain.chain[:len(CHAIN)], crash_chain.chain[len(CHAIN):]
    assert [s.kill for s in kills] == CHAIN and [s.kill for s in forget_kills] == FORGET_KILLS
    for step in [*kills, *forget_kills]:
        assert step.kill is not None
        if step.kill.failpoint.startswith("train."):
            # The training workers die; the job reports the failure (it is not killed itself).
            assert step.returncode != 0 and "TorchDistributor failed" in step.log, (step.kill, step.log[-3000:])
        else:
            assert step.returncode == -signal.SIGKILL, (step.kill, step.log[-3000:])
        assert f"stage {step.kill.killed_in} done" not in step.log, (step.kill, "the fail point was not reached in that stage")
        assert step.unreadable is None, (step.kill, step.unreadable)  # every table the kill left reads from its log

    assert resumed.returncode == 0, resumed.log[-3000:]
    assert resumed.state is not None and set(resumed.state) == set(pipeline)
    for table, rows in pipeline.items():
        assert resumed.state[table] == rows, table

    # Forgetting, killed after its first table's deletes (before that table's vacuum), then rerun: exit code 0
    # (1 = some file still holds an id), and every table is the reference minus exactly the rows that name the
    # user, by raw id (parsed rows and unparseable lines alike) or pseudonym.
    assert forget_rerun.returncode == 0, forget_rerun.log[-3000:]
    assert forget_rerun.state is not None
    key = os.environ["SOCIALREC_PSEUDONYM_KEY"].encode()
    pseudonym = hmac.new(key, f"synthetic:{FORGOTTEN}".encode(), hashlib.sha256).hexdigest()
    malformed = [r for r in pipeline["bronze.social_edges"] if "malformed JSON" in " ".join(r)]
    assert any(names_the_user(r, pseudonym) for r in malformed)
    for table, rows in pipeline.items():
        assert forget_rerun.state[table] == [r for r in rows if not names_the_user(r, pseudonym)], table
    assert len(forget_rerun.state["bronze.users"]) == len(pipeline["bronze.users"]) - 1
