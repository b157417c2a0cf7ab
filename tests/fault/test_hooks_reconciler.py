"""Hooks see the transitions the reconciler makes, once each: a takeover of a lost
attempt, a timeout it enforces, and every resend it logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import AttemptOutcome, RunState
from tests import recording_hooks
from tests.hook_checks import check_each_transition_once
from tests.support import Ledger, make_settings, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]
HOOK = "tests.recording_hooks:Recorder"
WAIT_S = 90


def _resends_logged(log_dir: Path, run_id: str, task_id: str) -> int:
    line = f"resending {task_id} of run {run_id} "
    return sum(f.read_text(errors="replace").count(line) for f in log_dir.glob("coordinator-*.log"))


def _resends_seen(events: list[dict[str, object]], task_id: str) -> int:
    return sum(1 for e in events if e["hook"] == "task_queued" and e["reason"] == "resend"
               and e["task_id"] == task_id)


def test_a_takeover_and_its_resends_are_seen_once(broker_url: str, database_url: str,
                                                  ledger: Ledger, tmp_path: Path) -> None:
    settings = make_settings(broker_url, database_url, hooks=HOOK, visibility_timeout=3600.0,
                             reconcile_interval=0.3)
    with LocalStack(settings, workers=0, coordinator=True, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        victim = stack.add_worker("victim", concurrency=1)
        run_id = client.submit("killme")
        wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
        victim.kill()
        ledger.open_gate(run_id, "go")
        stack.add_worker("rescuer", concurrency=1)
        run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert [a.outcome for a in run.tasks["gated"].attempts] == [
        AttemptOutcome.LOST, AttemptOutcome.SUCCESS]
    events = recording_hooks.events(run_id)
    check_each_transition_once(run, events)
    lost = [e for e in events if e["hook"] == "attempt_finished" and e["outcome"] == "lost"]
    assert [(e["task_id"], e["attempt"]) for e in lost] == [("gated", 1)]
    assert _resends_seen(events, "gated") == _resends_logged(tmp_path, run_id, "killme.gated") >= 1


def test_a_timeout_the_coordinator_enforces_is_seen_once(broker_url: str, database_url: str,
                                                         ledger: Ledger,
                                                         tmp_path: Path) -> None:
    settings = make_settings(broker_url, database_url, hooks=HOOK, reconcile_interval=0.2,
                             time_limit_grace=0.5)
    with LocalStack(settings, workers=0, coordinator=True, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        victim = stack.add_worker("victim", concurrency=1)
        run_id = client.submit("hangs")
        wait_until(lambda: ledger.of(run_id, "hang"), what="'hang' to start")
        victim.kill()  # no worker is left: the coordinator times it out
        run = client.wait(run_id, timeout=WAIT_S)
        coordinator = stack.coordinators[0].pid
    assert run.state == RunState.FAILED
    events = recording_hooks.events(run_id)
    check_each_transition_once(run, events)
    (timed_out,) = [e for e in events if e["hook"] == "attempt_finished"]
    assert (timed_out["task_id"], timed_out["error_type"]) == ("hang", "TaskTimeout")
    assert timed_out["pid"] == coordinator
    assert _resends_seen(events, "hang") == _resends_logged(tmp_path, run_id, "hangs.hang")
