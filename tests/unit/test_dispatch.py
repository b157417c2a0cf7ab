"""Messages name a node attempt and stay O(segment), never O(DAG) (no broker needed)."""

from __future__ import annotations

import json

from orchestrator.model import plan, spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.settings import Settings
from orchestrator.transport import dispatch
from tests.support import TEST_SIGNING_KEY


def _line(n: int) -> CompiledDag:
    tasks = [{"id": f"t{i}", "kind": "shell", "command": "true",
              "upstream": [f"t{i - 1}"] if i else []} for i in range(n)]
    return CompiledDag.of(spec.build({"id": "line", "tasks": tasks}))


def _wide(n: int) -> CompiledDag:
    tasks = [{"id": "root", "kind": "shell", "command": "true"}]
    tasks += [{"id": f"w{i}", "kind": "shell", "command": "true", "upstream": ["root"]}
              for i in range(n)]
    return CompiledDag.of(spec.build({"id": "wide", "tasks": tasks}))


def _dispatcher() -> dispatch.Dispatcher:
    settings = Settings.from_env({"ORCH_BROKER_URL": "redis://127.0.0.1:1/0",
                                  "ORCH_SIGNING_KEY": TEST_SIGNING_KEY})
    return dispatch.Dispatcher(dispatch.make_producer_app(settings, "redis://127.0.0.1:1/0"),
                               settings)


def _message_bytes(dag: CompiledDag, head: str) -> int:
    sig = _dispatcher().segment(dag, "r" * 32, head, {})
    return len(json.dumps(dict(sig)))


def test_a_message_names_one_node_attempt_and_carries_no_data() -> None:
    sig = _dispatcher().signature(_line(3), "run1", "t1", 2)
    assert sig.task == "line.t1"
    assert sig.kwargs.pop("sig")
    assert sig.kwargs == {"dag": "line", "task": "t1", "run": "run1", "attempt": 2}
    assert sig.immutable


def test_message_size_does_not_grow_with_the_dag() -> None:
    # Lines longer than MAX_SEGMENT are cut into chains of at most MAX_SEGMENT messages.
    capped = _message_bytes(_line(plan.MAX_SEGMENT), "t0")
    assert _message_bytes(_line(2000), "t0") == capped
    assert _message_bytes(_line(10), "t0") < capped
    # A fan-out root is one message however many children it releases later.
    assert _message_bytes(_wide(5000), "root") == _message_bytes(_wide(5), "root")


def test_an_instance_of_a_mapped_task_is_one_small_message() -> None:
    dag = CompiledDag.of(spec.build({"id": "m", "tasks": [
        {"id": "src", "kind": "python", "callable": "x:src"},
        {"id": "sq", "kind": "python", "callable": "x:sq",
         "args": [{"kind": "item", "task": "src"}]}]}))
    sig = _dispatcher().signature(dag, "run1", "sq[99999]", 1)
    # the item stays in the database: the message names the instance, whatever the list
    assert sig.task == "m.sq"
    assert sig.kwargs.pop("sig")
    assert sig.kwargs == {"dag": "m", "task": "sq[99999]", "run": "run1", "attempt": 1}
    assert _message_bytes(dag, "sq") < 1000
