"""small: the DAGs most of the 100,000 seeded runs belong to (two tasks each), so that a
filter by DAG has many others' runs to skip."""

from orchestrator import dag, task

COUNT = 10


@task
def small_extract() -> int:
    return 1


@task
def small_load(n: int) -> int:
    return n


def _make(i: int) -> object:
    @dag(id=f"bench_small_{i}")
    def small() -> None:
        small_load(small_extract())

    return small


for _i in range(COUNT):
    globals()[f"bench_small_{_i}"] = _make(_i)
