"""schedule delay: a DAG on a one-second cron (six fields, seconds first).

It stays paused except while benchmarks/features.py measures it: the coordinator that
registers this folder would otherwise fire it every second for as long as it runs.
``catchup="latest"``: unpausing fires the last missed tick only, not a backlog."""

from orchestrator import dag, task

SCHEDULE = "* * * * * *"


@task
def tick_noop() -> None:
    return None


@dag(id="bench_tick", schedule=SCHEDULE, catchup="latest")
def bench_tick() -> None:
    tick_noop()
