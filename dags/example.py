r"""The quick-start DAG: a chain, a fan-out and a fan-in join, with data passed by value.

    extract -> square -> total ---\
                      \-> largest -> report
"""

from orchestrator import dag, task


@task
def extract(n: int) -> list[int]:
    return list(range(1, n + 1))


@task(retries=2, retry_backoff=0.5)
def square(rows: list[int]) -> list[int]:
    return [r * r for r in rows]


@task
def total(rows: list[int]) -> int:
    return sum(rows)


@task
def largest(rows: list[int]) -> int:
    return max(rows)


@task
def report(total: int, largest: int) -> str:
    return f"sum of squares {total}, largest {largest}"


@dag(id="example")
def example(n: int = 10) -> None:
    """Square the numbers 1..n, then report their sum and the largest."""
    squares = square(extract(n))
    report(total(squares), largest(squares))
