"""grid: 200 tasks, 20 parallel chains of 10 steps; the runs grid is measured over runs
of it seeded straight into the database (it is never run by a worker)."""

from orchestrator import dag, task

CHAINS, STEPS = 20, 10


@task
def grid_step() -> None:
    return None


@dag(id="bench_grid")
def bench_grid() -> None:
    """20 chains x 10 steps: a grid 200 tasks wide."""
    for c in range(CHAINS):
        prev = None
        for s in range(STEPS):
            node = grid_step.override(task_id=f"c{c:02d}_s{s}")()
            if prev is not None:
                prev >> node
            prev = node
