r"""The quick-start DAG: a mapped task, a fan-out and a fan-in join, with data passed by
value. ``square`` runs once per number ``extract`` returns (square[0], square[1], ...).

    extract -> square[i] -> total ---\
                         \-> largest -> report
"""

from orchestrator import dag, task


@task
def extract(n: int) -> list[int]:
    return list(range(1, n + 1))


@task(retries=2, retry_backoff=0.5, max_active=4)
def square(x: int) -> int:
    return x * x


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
    squares = square.map(extract(n))
    report(total(squares), largest(squares))
