"""Events and assets with real workers: an emitted event runs its subscriber DAG; a
producer task's success creates its consumer's run in the same transaction, which the
producing worker sends."""

from __future__ import annotations

from orchestrator.client import Client
from orchestrator.model.states import RunState, TaskState
from tests.integration.test_events_store import _register
from tests.support import wait_until

WAIT_S = 60


def test_an_event_runs_its_subscriber(client: Client) -> None:
    _register(client.store, [client.dag("tev_consumer")])
    res = client.emit("tev-ping", {"k": 1})
    assert len(res.runs) == 1 and res.started == res.runs
    run = client.wait(res.runs[0], timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    header = client.store.header(res.runs[0])
    assert header.trigger == "event" and header.payload["payload"] == {"k": 1}


def test_a_producer_task_starts_its_consumer_in_its_transaction(client: Client) -> None:
    _register(client.store, [client.dag("tev_producer"), client.dag("tev_asset_consumer")])
    before = {r.id for r in client.runs(dag_id="tev_asset_consumer", limit=1000)}
    run_id = client.submit("tev_producer")
    produced = client.wait(run_id, timeout=WAIT_S)
    assert produced.tasks["produce"].state == TaskState.SUCCESS
    # The consumer's run exists as soon as the producer's task is success: no loop.
    new = [r for r in client.runs(dag_id="tev_asset_consumer", limit=1000)
           if r.id not in before]
    assert len(new) == 1
    assert new[0].created_at == produced.tasks["produce"].finished_at
    done = wait_until(lambda: client.get_run(new[0].id).state == RunState.SUCCESS
                      and client.get_run(new[0].id), timeout=WAIT_S,
                      what="the consumer run to succeed")
    assert done.tasks["note"].state == TaskState.SUCCESS
