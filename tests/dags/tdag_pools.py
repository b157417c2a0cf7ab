"""Pooled tasks for tests/integration/test_pools_workers.py and tests/fault/test_pool_loss.py:
each holds its slot until the test opens its gate."""

from __future__ import annotations

from _support import record, wait_gate

from orchestrator import context, dag, task


@task
def three() -> list[int]:
    return [0, 1, 2]


@task(pool="tdag_one_slot")
def one_at_a_time(i: int) -> int:
    record()
    wait_gate(f"g{i}")
    return i


@dag(id="pool_mapped")
def pool_mapped() -> None:
    one_at_a_time.map(three())


@task(pool="tdag_loss_pool")
def holder() -> str:
    record()
    wait_gate(f"go-{context().attempt}")
    return "held"


@dag(id="pool_loss")
def pool_loss() -> None:
    holder()


@task(pool="tdag_never_made")
def nowhere() -> None:
    record()


@dag(id="pool_unknown")
def pool_unknown() -> None:
    nowhere()
