"""wide: 1 root -> 500 parallel no-op tasks -> 1 join that takes all 500 results."""

from orchestrator import dag, task

WIDTH = 500
EXPECTED = sum(range(WIDTH))


@task
def wide_root() -> int:
    return 0


@task
def wide_noop(i: int) -> int:
    return i


@task
def wide_join(*xs: int) -> int:
    return sum(xs)


@dag(id="bench_wide")
def bench_wide() -> None:
    """Fan-out to 500 no-op tasks, then a fan-in join over all their results."""
    root = wide_root()
    leaves = [wide_noop(i) for i in range(WIDTH)]
    root >> leaves
    wide_join(*leaves)
