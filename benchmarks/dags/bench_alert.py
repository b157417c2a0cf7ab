"""For the alert latency figure: a run that fails at once, with a webhook rule whose URL
the benchmark's own receiver gives (read by the coordinator from its environment)."""

from orchestrator import dag, task


@task
def alert_fail() -> None:
    raise RuntimeError("fails on purpose, to be alerted")


@dag(id="bench_alert", notify=[{"on": ["run_failed"],
                                "webhook": {"url": {"env": "BENCH_ALERT_URL"}}}])
def bench_alert() -> None:
    alert_fail()
