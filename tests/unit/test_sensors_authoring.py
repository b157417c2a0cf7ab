"""@sensor and YAML ``sensor:`` compile to TaskSpec.sensor; a sensor is a plain python task."""

from __future__ import annotations

import pytest

from orchestrator import dag, errors, sensor, task
from orchestrator.authoring import yaml_dags
from orchestrator.model.spec import SensorSpec


def test_sensor_decorator_sets_the_sensor_option() -> None:
    @sensor(poke_interval=5, timeout=60, retries=2)
    def ready() -> bool:
        return True

    @dag(id="sensor_auth")
    def d() -> None:
        ready()

    t = d.spec.task("ready")
    assert t.sensor == SensorSpec(poke_interval=5, timeout=60)
    assert t.retries == 2


def test_yaml_sensor_key() -> None:
    spec = yaml_dags.load_text(
        "id: ys\ntasks:\n  - id: s\n    python: m:f\n    sensor: {poke_interval: 5, timeout: 60}\n")
    assert spec.task("s").sensor == SensorSpec(poke_interval=5, timeout=60)


@pytest.mark.parametrize("extra", ["shell: 'true'", "python: m:f\n    branch: true"])
def test_a_sensor_is_a_python_task_that_does_not_branch(extra: str) -> None:
    with pytest.raises(errors.DagError, match="a sensor is a python task"):
        yaml_dags.load_text(f"id: ys\ntasks:\n  - id: s\n    {extra}\n    sensor: {{}}\n")


def test_a_sensor_is_not_mapped() -> None:
    @task
    def items() -> list[int]:
        return [1]

    @sensor(poke_interval=1)
    def each(i: int) -> bool:
        return True

    with pytest.raises(errors.DagError, match="neither mapped"):
        @dag(id="sensor_mapped")
        def d() -> None:
            each.map(items())


def test_a_bad_poke_interval_is_refused() -> None:
    with pytest.raises(errors.DagError, match="poke_interval"):
        yaml_dags.load_text("id: ys\ntasks:\n  - id: s\n    python: m:f\n"
                            "    sensor: {poke_interval: 0}\n")
