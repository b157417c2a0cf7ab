"""A worker SIGKILLed while its task holds a pool slot never leaks the slot: once the lease
expires the task is taken over (or given up) in a transaction that counts usage from the
rows, so usage equals what is live, and the waiter behind it runs next."""

from __future__ import annotations

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from tests.support import Ledger, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]
WAIT_S = 120
POOL = "tdag_loss_pool"


def _used(client: Client) -> int:
    return next(p.used for p in client.pools() if p.name == POOL)


def test_a_killed_holder_gives_its_slot_to_the_live_count(own_stack: LocalStack,
                                                          ledger: Ledger) -> None:
    victim = own_stack.add_worker("victim", concurrency=2)
    with Client(own_stack.settings) as client:
        client.set_pool(POOL, 1)
        first = client.submit("pool_loss")
        second = client.submit("pool_loss")
        wait_until(lambda: ledger.of(first, "holder"), timeout=WAIT_S, what="the holder")
        assert client.get_run(second).tasks["holder"].state == TaskState.WAITING
        assert _used(client) == 1
        victim.kill()  # SIGKILL: no ack, no result, no lease renewal
        own_stack.add_worker("rescuer", concurrency=2)
        # the rescuer takes the lost attempt over once its lease expires
        wait_until(lambda: len(ledger.of(first, "holder")) == 2, timeout=WAIT_S,
                   what="the takeover")
        live = [r for r in (first, second)
                if client.get_run(r).tasks["holder"].state == TaskState.RUNNING]
        assert live == [first] and _used(client) == 1
        assert client.get_run(second).tasks["holder"].state == TaskState.WAITING
        ledger.open_gate(first, "go-2")
        wait_until(lambda: ledger.of(second, "holder"), timeout=WAIT_S, what="the waiter")
        assert _used(client) == 1
        ledger.open_gate(second, "go-1")
        done = [client.wait(r, timeout=WAIT_S) for r in (first, second)]
    assert [r.state for r in done] == [RunState.SUCCESS, RunState.SUCCESS]
    assert [a.outcome for a in done[0].tasks["holder"].attempts] == [
        AttemptOutcome.LOST, AttemptOutcome.SUCCESS]
    began, ended = done[1].tasks["holder"].started_at, done[0].tasks["holder"].finished_at
    assert began is not None and ended is not None and began >= ended
    assert _used(client) == 0
