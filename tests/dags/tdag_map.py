"""Mapped-task DAGs the integration and fault tests run."""

from __future__ import annotations

from typing import Any

from _support import gate_open, record, wait_gate

from orchestrator import context, dag, task


@task
def listing(n: int) -> list[int]:
    return list(range(n))


@task
def square(x: int, factor: int = 1) -> int:
    record()
    return x * x * factor


@task
def total(xs: list[int]) -> dict[str, Any]:
    record()
    return {"xs": xs, "sum": sum(xs)}


@dag(id="mapsq")
def mapsq(n: int = 5, factor: int = 1) -> None:
    total(square.map(listing(n), factor=factor))


@dag(id="mapmap")
def mapmap(n: int = 4) -> None:
    total(square.map(square.map(listing(n))))


@task
def held(x: int) -> int:
    record()
    wait_gate("go")
    return x


@dag(id="mapbound")
def mapbound(n: int = 6) -> None:
    total(held.override(max_active=2).map(listing(n)))


@task
def picky(x: int) -> int:
    record()
    if x % 3 == 1 and not gate_open("fix"):
        raise ValueError(f"item {x} is not fixed yet")
    return x * 10


@dag(id="mapfix")
def mapfix(n: int = 6) -> None:
    total(picky.map(listing(n)))


@task
def not_a_list() -> dict[str, int]:
    return {"a": 1}


@dag(id="mapbad")
def mapbad() -> None:
    total(square.map(not_a_list()))


@task
def whoami(x: int) -> list[Any]:
    ctx = context()
    return [ctx.task_id, ctx.attempt, x]


@dag(id="mapctx")
def mapctx() -> None:
    whoami.map(listing(3))


@task
def varying() -> list[int]:
    return [1, 2] if gate_open("short") else [1, 2, 3, 4]


@dag(id="mapvary")
def mapvary() -> None:
    total(square.map(varying()))
