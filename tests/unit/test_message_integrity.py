"""Signatures and the checks workers make on task messages (no broker, no database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from kombu.message import Message

from orchestrator import errors
from orchestrator.authoring import discovery
from orchestrator.model import spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.settings import Settings
from orchestrator.transport import dispatch
from orchestrator.transport.signing import Signer
from tests.support import TEST_DAGS, TEST_SIGNING_KEY
from workers import app as worker_app
from workers import integrity, registry, remote_control

RUN = "0123456789abcdef" * 2
SIGNER = Signer(TEST_SIGNING_KEY)


def _kwargs(**changes: Any) -> dict[str, Any]:
    kwargs = {"dag": "d", "task": "t", "run": RUN, "attempt": 1,
              "sig": SIGNER.task("d.t", "d", "t", RUN, 1)}
    kwargs.update(changes)
    return kwargs


def test_a_signature_covers_every_field_it_runs_by() -> None:
    sig = SIGNER.task("d.t", "d", "t", RUN, 2, 11.0, 1.0)
    assert SIGNER.task_ok(sig, "d.t", "d", "t", RUN, 2, 11.0, 1.0)
    for changed in [("d.u", "d", "t", RUN, 2, 11.0, 1.0), ("d.t", "e", "t", RUN, 2, 11.0, 1.0),
                    ("d.t", "d", "u", RUN, 2, 11.0, 1.0), ("d.t", "d", "t", "f" * 32, 2, 11.0,
                                                             1.0),
                    ("d.t", "d", "t", RUN, 3, 11.0, 1.0), ("d.t", "d", "t", RUN, 2, None, None),
                    ("d.t", "d", "t", RUN, 2, 11.0, 0.001)]:
        assert not SIGNER.task_ok(sig, *changed)
    assert not Signer("another key entirely, 32 chars +").task_ok(sig, "d.t", "d", "t", RUN, 2,
                                                                  11.0, 1.0)
    for forged in (None, 1, "", sig.upper(), sig[:-1], "é" * 64, [sig]):
        assert not SIGNER.task_ok(forged, "d.t", "d", "t", RUN, 2, 11.0, 1.0)


def test_a_task_signature_is_no_revoke_signature() -> None:
    assert SIGNER.revoke(["a"], True, "SIGTERM") != SIGNER.task("a", "", "", "", 1)
    sig = SIGNER.revoke(["id1", "id2"], True, "SIGTERM")
    assert SIGNER.revoke_ok(sig, ["id1", "id2"], True, "SIGTERM")
    assert not SIGNER.revoke_ok(sig, ["id1"], True, "SIGTERM")
    assert not SIGNER.revoke_ok(sig, ["id1", "id2"], False, "SIGTERM")


@pytest.mark.parametrize("kwargs", [
    *[_kwargs(attempt=a) for a in ("1", True, 1.0, 0, -1, 2**31, None)],
    *[_kwargs(run=r) for r in (RUN.upper(), RUN + "\n", RUN[:-1], 5)],
    _kwargs(task="t\n"), _kwargs(task="t[01]"), _kwargs(dag="d.e"), _kwargs(extra=1),
    {k: v for k, v in _kwargs().items() if k != "sig"}, _kwargs(sig="0" * 64), [], "x",
])
def test_a_call_of_the_wrong_shape_or_signature_is_refused(kwargs: Any) -> None:
    assert integrity.call_problem("d.t", kwargs, None, SIGNER) is not None


def test_a_signed_call_passes_and_its_name_must_be_of_its_dag() -> None:
    assert integrity.call_problem("d.t", _kwargs(), None, SIGNER) is None
    assert integrity.call_problem("d.t", _kwargs(), [None, None], SIGNER) is None
    for name in ("e.t", "d.", "d.t.u", "dd.t", None, 3):
        assert integrity.call_problem(name, _kwargs(), None, SIGNER) is not None
    for limits in ("x", [1], [0, 0], [float("inf"), None], [True, None]):
        assert integrity.call_problem("d.t", _kwargs(), limits, SIGNER) is not None


def _message(body: Any, **headers: Any) -> Message:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = {"task": "d.t", "id": "x-1", "timelimit": [None, None], **headers}
    m = Message(body=raw, content_type="application/json", content_encoding="utf-8",
                headers=h, delivery_info={}, properties={})
    m.accept = {"application/json"}
    return m


def test_the_consumer_check_takes_a_good_message_and_names_what_is_wrong() -> None:
    app = Celery(set_as_current=False)
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    assert integrity.message_problem(_message([[], _kwargs(), embed]), app, SIGNER) is None
    cases = {
        "not [args, kwargs, embed]": _message({"a": 1}),
        "positional": _message([[1], _kwargs(), embed]),
        "callbacks": _message([[], _kwargs(), {**embed, "callbacks": [{}]}]),
        "chain is not": _message([[], _kwargs(), {**embed, "chain": [1]}]),
        "does not decode": _message(b"[["),
        "eta header": _message([[], _kwargs(), embed], eta="yesterday"),
        "retries header": _message([[], _kwargs(), embed], retries="3"),
        "id": _message([[], _kwargs(), embed], id=None),
        "compressed": _message([[], _kwargs(), embed], compression="application/x-gzip"),
        "larger than": _message(b" " * (integrity.MAX_BODY_BYTES + 1)),
    }
    for words, message in cases.items():
        problem = integrity.message_problem(message, app, SIGNER)
        assert problem is not None and words in problem, (words, problem)


def test_celerys_own_tasks_are_not_ours_to_run() -> None:
    app = Celery(set_as_current=False)
    app.finalize()
    kwargs = {**_kwargs(dag="celery", task="map"),
              "sig": SIGNER.task("celery.map", "celery", "map", RUN, 1)}
    m = _message([[], kwargs, {}], task="celery.map")
    assert "Celery's own" in (integrity.message_problem(m, app, SIGNER) or "")


def test_remote_control_allows_inspection_and_refuses_the_rest() -> None:
    handlers = remote_control.handlers(SIGNER)
    assert handlers["ping"] is remote_control.Panel.data["ping"]
    for name in ("shutdown", "pool_restart", "pool_grow", "pool_shrink", "autoscale",
                 "add_consumer", "cancel_consumer", "rate_limit", "time_limit", "hello"):
        assert "disabled" in handlers[name](None)["error"]
    assert "refused" in handlers["revoke"](None, task_id=["a"], terminate=True,
                                           signal="SIGTERM")["error"]


def _keyless(folder: Path) -> Settings:
    return Settings.from_env({"ORCH_BROKER_URL": "redis://127.0.0.1:1/0",
                              "ORCH_DATABASE_URL": f"sqlite:///{folder / 'empty.db'}"})


def test_nothing_sends_or_serves_without_a_key(tmp_path: Path) -> None:
    settings = _keyless(tmp_path)
    with pytest.raises(errors.ConfigError, match="ORCH_SIGNING_KEY"):
        dispatch.Dispatcher(dispatch.make_producer_app(settings, "redis://127.0.0.1:1/0"),
                            settings)
    with pytest.raises(errors.ConfigError, match="ORCH_SIGNING_KEY"):
        worker_app.register(Celery(set_as_current=False), settings, discovery.load(TEST_DAGS))
    with pytest.raises(errors.ConfigError, match="ORCH_SIGNING_KEY"):
        worker_app.create_app(settings)
    assert list(tmp_path.iterdir()) == []  # it refused before it looked at the database


@pytest.mark.parametrize("name", ["chain20.inc", "nodag.gone"])
def test_a_task_and_the_fallback_check_their_call_before_the_database(
        name: str, tmp_path: Path) -> None:
    # The database has no tables: a call that got past the check would fail on it.
    settings = _keyless(tmp_path).with_env(ORCH_SIGNING_KEY=TEST_SIGNING_KEY)
    app = Celery(set_as_current=False)
    worker_app.register(app, settings, discovery.load(TEST_DAGS))
    task = app.tasks[name] if name in app.tasks else app.tasks[registry.UNRESOLVED]
    dag, task_id = name.split(".")
    task.push_request(task=name, id="x-1", timelimit=[None, None])
    try:
        good = {**_kwargs(dag=dag, task=task_id),
                "sig": SIGNER.task(name, dag, task_id, RUN, 1)}
        for bad in ({**good, "sig": "0" * 64}, {**good, "attempt": "1"}, {}):
            assert task.run(**bad) == "refused"
        assert task.run(1, **good) == "refused"
        with pytest.raises(Exception, match="no such table: runs"):
            task.run(**good)
    finally:
        task.pop_request()


def test_every_link_of_a_chain_carries_its_own_signature(tmp_path: Path) -> None:
    settings = _keyless(tmp_path).with_env(ORCH_SIGNING_KEY=TEST_SIGNING_KEY)
    tasks = [{"id": f"t{i}", "kind": "shell", "command": "true", "timeout": 5,
              "upstream": [f"t{i - 1}"] if i else []} for i in range(4)]
    dag = CompiledDag.of(spec.build({"id": "line", "tasks": tasks}))
    app = dispatch.make_producer_app(settings, "redis://127.0.0.1:1/0")
    head = dispatch.Dispatcher(app, settings).segment(dag, RUN, "t0", {"t2": 3})
    for link in head.tasks:  # as the worker that sends each next link sees it
        link = json.loads(json.dumps(dict(link)))
        opts = link["options"]
        timelimit = [opts["time_limit"], opts["soft_time_limit"]]  # Celery's header order
        assert integrity.call_problem(link["task"], link["kwargs"], timelimit, SIGNER) is None
        assert integrity.call_problem(link["task"], link["kwargs"], None, SIGNER) is not None
    assert [link.kwargs["attempt"] for link in head.tasks] == [1, 1, 3, 1]
