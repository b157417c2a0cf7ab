"""asset latency: a producer task with an outlet, and a DAG scheduled on that asset, whose
run the producer's success creates in the same transaction."""

from orchestrator import dag, task

ASSET = "bench/asset"


@task(outlets=[ASSET])
def asset_produce() -> str:
    return "made"


@dag(id="bench_asset_producer")
def bench_asset_producer() -> None:
    asset_produce()


@task
def asset_consume() -> str:
    return "used"


@dag(id="bench_asset_consumer", schedule={"assets": [ASSET]})
def bench_asset_consumer() -> None:
    asset_consume()
