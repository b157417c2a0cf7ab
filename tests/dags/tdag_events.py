"""DAGs of the event and asset tests: a consumer of a named event, an asset producer and
its consumer (ids and names of their own)."""

from __future__ import annotations

from _support import record

from orchestrator import dag, task


@task
def note() -> str:
    record()
    return "ok"


@dag(id="tev_consumer", schedule={"event": "tev-ping"})
def tev_consumer() -> None:
    note()


@task(outlets=["tev/orders"])
def produce() -> str:
    record()
    return "made"


@dag(id="tev_producer")
def tev_producer() -> None:
    produce()


@dag(id="tev_asset_consumer", schedule={"assets": ["tev/orders"], "when": "any"})
def tev_asset_consumer() -> None:
    note()
