"""Hypothesis draws graphs: cyclic ones are rejected naming a real cycle, with nothing
written and nothing sent; acyclic ones run to success on a real worker; DAGs of maps over
maps, with random lengths and bounds, give on workers what they give in-process."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest
import redis
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator import errors
from orchestrator.authoring import discovery
from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.execution import local
from orchestrator.model.states import RunState
from tests.support import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.fault]


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]], bool]:
    """(nodes, edges parent -> child, cyclic?)."""
    n = draw(st.integers(min_value=2, max_value=8))
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if draw(st.booleans())]
    cyclic = bool(edges) and draw(st.booleans())
    if cyclic:
        i, j = draw(st.sampled_from(edges))
        edges.append((j, i))  # closes a cycle through i -> ... -> j
    return n, edges, cyclic


def _write(folder: Path, dag_id: str, n: int, edges: list[tuple[int, int]]) -> Path:
    tasks = [{"id": f"t{k}", "shell": f"echo {k}",
              "upstream": [f"t{i}" for i, j in edges if j == k]} for k in range(n)]
    path = folder / f"{dag_id}.yaml"
    path.write_text(yaml.safe_dump({"id": dag_id, "tasks": tasks}))
    return path


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=graphs())
@example(graph=(3, [(0, 1), (1, 2), (2, 0)], True))  # both kinds, whatever is drawn
@example(graph=(4, [(0, 1), (0, 2), (1, 3), (2, 3)], False))
def test_random_graphs(graph: tuple[int, list[tuple[int, int]], bool], broker_url: str,
                       database_url: str, tmp_path: Path) -> None:
    n, edges, cyclic = graph
    folder = tmp_path / f"dags_{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    dag_id = f"g_{uuid.uuid4().hex[:8]}"
    path = _write(folder, dag_id, n, edges)
    s = make_settings(broker_url, database_url, dags_path=folder)
    if cyclic:
        err = discovery.load(folder).errors[str(path)]
        assert isinstance(err, errors.CycleError)
        cycle = err.cycle
        assert cycle[0] == cycle[-1]
        assert all((int(a[1:]), int(b[1:])) in edges for a, b in itertools.pairwise(cycle))
        with Client(s) as client:
            before = client.store.count_rows()
            with pytest.raises(errors.UnknownDag, match=path.name):
                client.submit(dag_id)
            assert client.store.count_rows() == before
        r = redis.Redis.from_url(broker_url)
        assert r.llen(s.worker.default_queue) == 0
        r.close()
        return
    with LocalStack(s, workers=1, concurrency=2, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        run = client.wait(client.submit(dag_id), timeout=120)
    assert run.state == RunState.SUCCESS
    assert {t: ti.result for t, ti in run.tasks.items()} == {f"t{k}": str(k) for k in range(n)}
    for i, j in edges:  # every task started after each of its parents finished
        assert run.tasks[f"t{j}"].started_at >= run.tasks[f"t{i}"].finished_at


_not_int = st.one_of(st.text(max_size=5), st.floats(allow_nan=True), st.booleans(),
                     st.none(), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=_not_int, extra=st.dictionaries(
    st.text(min_size=1, max_size=6).filter(lambda k: k not in ("name", "times", "tags")),
    st.integers(), max_size=2))
def test_random_bad_params_write_and_send_nothing(times: object, extra: dict[str, int],
                                                  broker_url: str, database_url: str) -> None:
    s = make_settings(broker_url, database_url,
                      dags_path=Path(__file__).resolve().parents[1] / "dags")
    with Client(s) as client:
        before = client.store.count_rows()
        with pytest.raises(errors.ParamsError) as exc:
            client.submit("typed", {"name": "ada", "times": times, **extra})
        assert "'times' must be integer" in str(exc.value)
        assert all(f"unknown param {k!r}" in str(exc.value) for k in extra)
        assert client.store.count_rows() == before
    r = redis.Redis.from_url(broker_url)
    assert r.llen(s.worker.default_queue) == 0
    r.close()


_FNS = '''
def listing(n):
    return list(range(n))


def square(x, factor):
    return x * x * factor


def total(xs, offset):
    return sum(xs) + offset
'''


@st.composite
def mapped_dags(draw: st.DrawFn) -> dict[str, object]:
    """A list of 0..12 items, mapped over 1..3 times in a row (each map over the one
    before, with a random bound on instances in flight), and a total of the last map."""
    n = draw(st.integers(min_value=0, max_value=12))
    tasks: list[dict[str, object]] = [
        {"id": "items", "python": "rmap_fns:listing", "kwargs": {"n": n}}]
    prev = "items"
    for k in range(draw(st.integers(min_value=1, max_value=3))):
        bound = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=4)))
        tasks.append({"id": f"m{k}", "python": "rmap_fns:square", "args": [{"item": prev}],
                      "kwargs": {"factor": draw(st.integers(min_value=-2, max_value=2))},
                      **({"max_active": bound} if bound else {})})
        prev = f"m{k}"
    tasks.append({"id": "total", "python": "rmap_fns:total", "args": [{"task": prev}],
                  "kwargs": {"offset": {"param": "offset"}}})
    return {"params": {"offset": {"type": "integer", "default": 0}}, "tasks": tasks}


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=mapped_dags(), offset=st.integers(min_value=-5, max_value=5))
def test_random_mapped_dags_match_an_in_process_run(shape: dict[str, object], offset: int,
                                                    broker_url: str, database_url: str,
                                                    tmp_path: Path) -> None:
    folder = tmp_path / f"dags_{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "rmap_fns.py").write_text(_FNS)
    dag_id = f"m_{uuid.uuid4().hex[:8]}"
    (folder / f"{dag_id}.yaml").write_text(yaml.safe_dump({"id": dag_id, **shape}))
    s = make_settings(broker_url, database_url, dags_path=folder)
    with LocalStack(s, workers=1, concurrency=2, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        dag = client.dag(dag_id)
        run = client.wait(client.submit(dag_id, {"offset": offset}), timeout=120)
    expected = local.run_in_process(dag.spec, {"offset": offset})
    assert run.state == RunState.SUCCESS
    assert {t: run.tasks[t].result for t in expected} == expected
    for t in dag.spec.tasks:
        if t.map_over is None:
            continue
        items = expected[t.map_over]
        instances = [ti for ti in run.tasks.values() if ti.map_parent == t.id]
        assert sorted((ti.map_index, ti.map_item) for ti in instances) == list(
            enumerate(items))
        assert all(len(ti.attempts) == 1 for ti in instances)  # each ran once
