"""chain: 100 tasks in a line, each returning its input + 1 (the last returns 100)."""

from orchestrator import dag, task

LENGTH = 100
EXPECTED = LENGTH


@task
def chain_inc(x: int) -> int:
    return x + 1


@dag(id="bench_chain")
def bench_chain() -> None:
    """100 hops: per-hop latency."""
    x = chain_inc(0)
    for _ in range(LENGTH - 1):
        x = chain_inc(x)
