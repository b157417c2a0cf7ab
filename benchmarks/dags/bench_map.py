"""map: a root returns a list of 500 items -> a task mapped over it -> 1 join of all
results (dynamic fan-out: the width is only known at run time)."""

from orchestrator import dag, task

WIDTH = 500
EXPECTED = sum(range(WIDTH))


@task
def map_items() -> list[int]:
    return list(range(WIDTH))


@task
def map_noop(i: int) -> int:
    return i


@task
def map_join(xs: list[int]) -> int:
    return sum(xs)


@dag(id="bench_map")
def bench_map() -> None:
    """Map a no-op over a runtime list of 500 items, then join all their results."""
    map_join(map_noop.map(map_items()))
