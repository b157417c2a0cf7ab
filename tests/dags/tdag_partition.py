"""DAGs the partition tests run on three hosts (tests/fault/test_partition.py)."""

from __future__ import annotations

from typing import Any

from _support import mark, record, wait_gate

from orchestrator import context, dag, task


@task
def held(i: int) -> dict[str, int]:
    """Waits for gate 'go'; a takeover (a later attempt) also waits for gate 'again', so
    the test can hold it running while the first attempt's late result comes in."""
    record()
    wait_gate("go")
    ctx = context()
    if ctx.attempt > 1:
        wait_gate("again")
    mark(f"{ctx.task_id}-{ctx.attempt}-done")
    return {"i": i, "attempt": ctx.attempt}


@task
def step(x: dict[str, int] | int) -> int:
    record()
    return (x["i"] if isinstance(x, dict) else x) + 1


@task
def gather(*parts: object) -> int:
    record()
    return len(parts)


@dag(id="spread3")
def spread3() -> None:
    """Three held tasks, one per host, joined."""
    gather(*[held.override(task_id=f"h{i}")(i) for i in range(3)])


@dag(id="spread3chains")
def spread3chains() -> None:
    """Three held tasks, each followed by a chain of five steps, all joined: many
    transitions land right after the held tasks finish."""
    ends = []
    for i in range(3):
        v: Any = held.override(task_id=f"h{i}")(i)
        for j in range(5):
            v = step.override(task_id=f"s{i}_{j}")(v)
        ends.append(v)
    gather(*ends)
