"""Hooks see every transition of a run exactly once, whichever process made it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState, TaskState
from tests import recording_hooks
from tests.hook_checks import check_each_transition_once
from tests.support import make_settings

pytestmark = pytest.mark.integration
HOOK = "tests.recording_hooks:Recorder"


@pytest.fixture
def hooked_stack(broker_url: str, database_url: str, ledger_dir: Path,
                 tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(make_settings(broker_url, database_url, hooks=HOOK), workers=1,
                    concurrency=2, coordinator=True, log_dir=str(tmp_path)) as s:
        yield s


def test_a_recording_hook_sees_every_transition_once(hooked_stack: LocalStack) -> None:
    with Client(hooked_stack.settings) as client:
        run = client.wait(client.submit("hooked"), timeout=120)
    assert run.state == RunState.FAILED  # 'after_crash' is a leaf that never ran
    states = {t: ti.state for t, ti in run.tasks.items()}
    assert (states["flaky_once"], states["not_taken"], states["below_not_taken"],
            states["triple"], states["after_crash"]) == (
        TaskState.SUCCESS, TaskState.SKIPPED, TaskState.SKIPPED, TaskState.SUCCESS,
        TaskState.UPSTREAM_FAILED)
    assert len(run.tasks["flaky_once"].attempts) == 2
    events = recording_hooks.events(run.id)
    check_each_transition_once(run, events)
    # the client announced the start; workers announced the rest
    (started,) = [e for e in events if e["hook"] == "run_started"]
    assert {e["pid"] for e in events if e["hook"] == "attempt_started"} - {started["pid"]}
