"""Pools with real workers: a pool of one slot runs one task at a time although the worker
has two, and each end admits the next waiter in its own transaction."""

from __future__ import annotations

import itertools

import pytest

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.model.states import RunState, TaskState
from tests.support import Ledger, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 60


def _states(client: Client, run_id: str) -> dict[str, TaskState]:
    return {t: x.state for t, x in client.get_run(run_id).tasks.items()
            if t.startswith("one_at_a_time[")}


def test_a_one_slot_pool_runs_mapped_instances_one_at_a_time(client: Client,
                                                             ledger: Ledger) -> None:
    client.set_pool("tdag_one_slot", 1)
    run_id = client.submit("pool_mapped")
    for i in range(3):
        wait_until(lambda i=i: ledger.of(run_id, f"one_at_a_time[{i}]"), timeout=WAIT_S,
                   what=f"instance {i} to start")
        states = _states(client, run_id)
        # the worker has a second process free, and the pool keeps it idle
        assert states[f"one_at_a_time[{i}]"] == TaskState.RUNNING
        assert sorted(states.values()).count(TaskState.RUNNING) == 1
        assert all(s == TaskState.WAITING for t, s in states.items()
                   if t > f"one_at_a_time[{i}]")
        assert [p.used for p in client.pools() if p.name == "tdag_one_slot"] == [1]
        ledger.open_gate(run_id, f"g{i}")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(run_id, "one_at_a_time") == [0, 1, 2]
    ran = [run.tasks[f"one_at_a_time[{i}]"] for i in range(3)]
    for before, after in itertools.pairwise(ran):
        assert before.finished_at is not None and after.started_at is not None
        assert after.started_at >= before.finished_at  # never two at once
    assert [p.used for p in client.pools() if p.name == "tdag_one_slot"] == [0]


def test_a_dag_taking_an_unknown_pool_is_refused_and_writes_nothing(client: Client) -> None:
    before = client.store.count_rows()
    with pytest.raises(errors.UnknownPool, match="'tdag_never_made', which does not exist"):
        client.submit("pool_unknown")
    assert client.store.count_rows() == before
