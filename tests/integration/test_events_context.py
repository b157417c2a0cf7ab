"""YAML tasks given the run's context as arguments (``{context: NAME}``), on real workers:
a run submitted at a logical time, a manual run without one, and an event's run, whose
task gets the event's payload."""

from __future__ import annotations

import datetime as dt

from orchestrator.client import Client
from orchestrator.model.states import RunState
from tests.integration.test_events_store import _register

WAIT_S = 60


def test_a_task_gets_the_logical_time_it_was_submitted_with(client: Client) -> None:
    at = dt.datetime(2026, 3, 1, 6, 30, tzinfo=dt.UTC)
    run_id = client.submit("yaml_context_args", logical_time=at)
    assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS
    # An unscheduled DAG's data interval is [logical_time, logical_time].
    assert client.result(run_id, "show") == {
        "logical_time": at.isoformat(), "interval_start": at.isoformat(),
        "interval_end": at.isoformat(), "payload": None, "run_id": run_id,
        "dag_id": "yaml_context_args", "agrees": True}


def test_a_manual_run_without_a_logical_time_gets_none(client: Client) -> None:
    run_id = client.submit("yaml_context_args")
    assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS
    got = client.result(run_id, "show")
    assert [got[k] for k in ("logical_time", "interval_start", "interval_end", "payload")] \
        == [None] * 4
    assert got["run_id"] == run_id and got["agrees"] is True


def test_an_event_run_task_gets_the_payload_as_an_argument(client: Client) -> None:
    _register(client.store, [client.dag("yaml_context_event")])
    res = client.emit("tev-yaml-context", {"rows": [1, 2], "table": "orders"})
    assert len(res.runs) == 1 and res.started == res.runs
    assert client.wait(res.runs[0], timeout=WAIT_S).state == RunState.SUCCESS
    got = client.result(res.runs[0], "show")
    assert got["payload"] == {"event": "tev-yaml-context", "id": res.event_id,
                              "payload": {"rows": [1, 2], "table": "orders"}}
    assert got["logical_time"] is None and got["agrees"] is True
