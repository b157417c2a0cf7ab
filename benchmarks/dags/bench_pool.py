"""slot hand-off: 20 independent tasks sharing a pool of one slot (benchmarks/features.py
sets the pool to 1), so each task's end admits the next waiter."""

from orchestrator import dag, task

POOL = "bench_one_slot"
TASKS = 20


@task(pool=POOL)
def pool_hold(i: int) -> int:
    return i


@dag(id="bench_pool")
def bench_pool() -> None:
    """No edges: only the pool orders them."""
    for i in range(TASKS):
        pool_hold.override(task_id=f"slot_{i:02d}")(i)
