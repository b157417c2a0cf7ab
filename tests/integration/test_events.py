"""Events and assets with real workers: an emitted event runs its subscriber DAG; a
producer task's success creates its consumer's run in the same transaction, which the
producing worker sends; with one run slot, each of five events gets its run in turn;
unpausing a DAG consumes the events that waited for it. Tasks read their event through
context().payload."""

from __future__ import annotations

import itertools
from typing import Any

from orchestrator.client import Client
from orchestrator.control.triggers import Events
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState, TaskState
from orchestrator.wiring import Wiring
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


def _seen(client: Client, run_id: str) -> Any:
    return client.result(run_id, "seen")


def test_five_events_with_one_run_slot_each_get_a_run_in_order(client: Client) -> None:
    _register(client.store, [client.dag("tev_serial")])  # max_active_runs=1
    made = [client.emit("tev-serial", {"i": i}) for i in range(5)]
    assert [len(m.runs) for m in made] == [1] * 5
    run_ids = [m.runs[0] for m in made]
    # The first starts at once; a later one is queued, unless the run before it has
    # already ended by the time its event came (a fast worker): then it starts at once too.
    assert made[0].started == run_ids[:1]
    assert all(m.started in ([], [r]) for m, r in zip(made[1:], run_ids[1:], strict=True))
    # Each queued run is started (and sent) by the worker whose transaction ended the one
    # before it: no coordinator runs in this stack.
    runs = [client.wait(r, timeout=WAIT_S) for r in run_ids]
    assert [r.state for r in runs] == [RunState.SUCCESS] * 5
    assert [_seen(client, r) for r in run_ids] == [
        {"trigger": "event", "event": "tev-serial", "payload": {"i": i}} for i in range(5)]
    for before, after in itertools.pairwise(runs):
        started = after.tasks["seen"].started_at
        assert before.finished_at is not None and started is not None
        assert started >= before.finished_at  # one at a time, in the events' order
    listed = {e.id: e for e in client.store.events(name="tev-serial")}
    assert [listed[m.event_id].consumers for m in made] == [[("tev_serial", r)]
                                                            for r in run_ids]
    assert client.store.events(name="tev-serial", pending_only=True) == []


def test_unpausing_consumes_the_pending_events_and_sends_their_runs(
        client: Client, stack: LocalStack) -> None:
    _register(client.store, [client.dag("tev_held")])
    with Wiring(stack.settings) as wiring:
        events = Events(wiring.settings, wiring.outcomes)
        assert events.set_paused("tev_held", True).runs == []
        held = [client.emit("tev-held", {"n": n}) for n in (1, 2)]
        assert all(h.runs == [] and h.pending == 1 for h in held)
        assert {e.id for e in client.store.events(name="tev-held", pending_only=True)} == {
            h.event_id for h in held}
        done = events.set_paused("tev_held", False)
    assert len(done.runs) == 2 and done.started == done.runs and done.unsent == []
    runs = [client.wait(r, timeout=WAIT_S) for r in done.runs]
    assert [r.state for r in runs] == [RunState.SUCCESS] * 2
    assert [_seen(client, r)["payload"] for r in done.runs] == [{"n": 1}, {"n": 2}]
    assert client.store.events(name="tev-held", pending_only=True) == []
    listed = {e.id: e.consumers for e in client.store.events(name="tev-held")}
    assert [listed[h.event_id] for h in held] == [[("tev_held", r)] for r in done.runs]
