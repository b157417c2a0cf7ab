"""backfill accept: an hourly DAG a year of which is backfilled (and cancelled) by
benchmarks/features.py; the accept is what is timed."""

from orchestrator import dag, task


@task
def hour_noop() -> None:
    return None


@dag(id="bench_hourly", schedule="@hourly", catchup="none")
def bench_hourly() -> None:
    hour_noop()
