"""dag10k: 20 stages of fan-out(1) -> 498 parallel -> join(1) = 10,000 nodes.

Stage k's fan-out takes stage k-1's join value and adds 1; its 498 leaves take that
value; the join checks they agree and passes it on. The last join returns STAGES."""

from orchestrator import dag, task

STAGES = 20
LEAVES = 498
EXPECTED = STAGES


@task
def d10k_fan(x: int) -> int:
    return x + 1


@task
def d10k_leaf(x: int) -> int:
    return x


@task
def d10k_join(*xs: int) -> int:
    if len(set(xs)) != 1:
        raise ValueError(f"leaves disagree: {sorted(set(xs))}")
    return xs[0]


@dag(id="bench_dag10k")
def bench_dag10k() -> None:
    """10,000 nodes: fan-outs of 498 and joins over 498 results, 20 times in a row."""
    x = 0
    for _ in range(STAGES):
        f = d10k_fan(x)
        x = d10k_join(*[d10k_leaf(f) for _ in range(LEAVES)])
