"""Sensors for tests/integration/test_sensors.py: each waits for a gate the test opens."""

from __future__ import annotations

from _support import gate_open, mark, record

from orchestrator import dag, sensor, task


@sensor(poke_interval=0.2, timeout=60)
def file_there() -> str | None:
    record()
    return "found" if gate_open("file") else None


@task
def beside() -> str:
    # the worker's only slot: free while the sensor waits between pokes
    record()
    return "done"


@sensor(poke_interval=0.2, timeout=60)
def first_poke_marks() -> bool:
    record()
    mark("poked")
    return gate_open("file")


@task
def after(found: str) -> str:
    return f"after {found}"


@dag(id="sensor_file")
def sensor_file() -> None:
    after(file_there())


@dag(id="sensor_beside")
def sensor_beside() -> None:
    first_poke_marks()
    beside()


@sensor(poke_interval=0.2, timeout=1.0)
def never() -> bool:
    record()
    return False


@dag(id="sensor_timeout")
def sensor_timeout() -> None:
    after(never())
