"""GET /metrics on real workers, SQLite and PostgreSQL: parsed with prometheus-client's
parser, each figure checked against the runs this test made (deltas of its own DAGs:
the database is shared with the other tests)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.api.app import create_app
from orchestrator.client import Client
from orchestrator.model import records
from orchestrator.model.states import RunState
from orchestrator.observability import metrics as obs
from orchestrator.store import metrics as store_metrics

pytestmark = pytest.mark.integration
WAIT_S = 120
OURS = ("metrics_ok", "metrics_fail", "metrics_map")
LABELS = {"dag", "task", "queue", "state", "outcome", "le", "pool"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def viewer(client: Client) -> Iterator[str]:
    token_id, token = client.store.create_token(f"metrics-{uuid.uuid4().hex[:10]}", "viewer")
    yield token
    client.store.revoke_token(token_id)


def _app(client: Client) -> FastAPI:
    """A new app per scrape: its own snapshot, never one cached by an earlier scrape."""
    return create_app(client.settings, client=client)


def get(app: FastAPI, path: str, token: str | None = None) -> httpx.Response:
    """GET through the app in this process (httpx's ASGI transport)."""
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as http:
            return await http.get(path, headers={"Authorization": f"Bearer {token}"}
                                  if token is not None else {})
    return asyncio.run(go())


def scrape(client: Client, token: str) -> tuple[str, Samples]:
    answer = get(_app(client), "/metrics", token)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return answer.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _hand_offs(run: records.Run, parents: dict[str, list[str]]) -> list[tuple[float, float]]:
    """What each released attempt's hand-off should be, from the run's own record: its
    start minus the end of the parent whose transaction released it, or, for an instance
    a mapped task laid out, minus that task's start. Of parents ending at once, the one
    whose transaction counted last released the child, and on PostgreSQL that need not
    be the last to end: (shortest, longest) it may be."""
    out = []
    for task_id, t in run.tasks.items():
        if t.map_parent is not None:
            starts = [run.tasks[t.map_parent].started_at]
        elif parents.get(task_id):
            starts = [run.tasks[p].finished_at for p in parents[task_id]]
        else:
            continue
        if t.map_count is not None or not t.attempts:
            continue  # a mapped task's own row has no attempt; never-attempted tasks
        first = t.attempts[0].started_at  # a retry or a takeover is not a hand-off
        ready = [s for s in starts if s is not None]
        out.append(((first - max(ready)).total_seconds(), (first - min(ready)).total_seconds()))
    return out


def test_metrics_count_what_the_runs_did(client: Client, viewer: str) -> None:
    _, before = scrape(client, viewer)
    runs = {d: client.submit(d) for d in OURS}
    done = {d: client.wait(r, timeout=WAIT_S) for d, r in runs.items()}
    assert [done[d].state for d in OURS] == [RunState.SUCCESS, RunState.FAILED,
                                             RunState.SUCCESS]
    text, after = scrape(client, viewer)

    for dag_id, state in (("metrics_ok", "success"), ("metrics_fail", "failed"),
                          ("metrics_map", "success")):
        assert delta(before, after, "orchestrator_runs_total", dag=dag_id, state=state) == 1
        dur = done[dag_id].finished_at - done[dag_id].created_at  # type: ignore[operator]
        assert delta(before, after, "orchestrator_run_duration_seconds_count",
                     dag=dag_id) == 1
        assert delta(before, after, "orchestrator_run_duration_seconds_sum",
                     dag=dag_id) == pytest.approx(dur.total_seconds(), abs=1e-5)

    expected_attempts = {
        ("metrics_ok", t, "success"): 1 for t in ("root", "left", "right", "join")} | {
        ("metrics_fail", "root", "success"): 1, ("metrics_fail", "always_fails", "failed"): 2,
        ("metrics_map", "items", "success"): 1, ("metrics_map", "sq", "success"): 3,
        ("metrics_map", "total", "success"): 1}
    for (dag_id, task, outcome), n in expected_attempts.items():
        assert delta(before, after, "orchestrator_task_attempts_total", dag=dag_id,
                     task=task, outcome=outcome) == n, (dag_id, task, outcome)
    assert delta(before, after, "orchestrator_task_attempts_total", dag="metrics_fail",
                 task="after", outcome="failed") == 0  # upstream_failed: never attempted

    # a hand-off per task its parent released: left, right, join; always_fails' first
    # attempt (its retry is not one); the three instances sq laid out, and total
    plans = {d: dict(client.dag(d).plan.upstream) for d in OURS}
    queue = client.settings.worker.default_queue
    for dag_id, n_handoffs, n_attempts in (("metrics_ok", 3, 4), ("metrics_fail", 1, 3),
                                           ("metrics_map", 4, 5)):
        expected = _hand_offs(done[dag_id], {k: list(v) for k, v in plans[dag_id].items()})
        assert len(expected) == n_handoffs
        name = "orchestrator_handoff_latency_seconds"
        assert delta(before, after, f"{name}_count", dag=dag_id) == n_handoffs
        assert delta(before, after, f"{name}_bucket", dag=dag_id, le="+Inf") == n_handoffs
        total = delta(before, after, f"{name}_sum", dag=dag_id)
        assert sum(lo for lo, _ in expected) - 1e-6 <= total
        assert total <= sum(hi for _, hi in expected) + 1e-6
        buckets = [v for (n, labels), v in sorted(
            after.items(), key=lambda kv: _le(kv[0][1]))
            if n == f"{name}_bucket" and ("dag", dag_id) in labels]
        assert buckets == sorted(buckets)  # cumulative
        # queue wait: every attempt that started, on the queue its task was sent to
        assert delta(before, after, "orchestrator_queue_wait_seconds_count", dag=dag_id,
                     queue=queue) == n_attempts
        if dag_id != "metrics_fail":  # one attempt each: queued_at is the attempt's
            waits = [(t.attempts[0].started_at - t.queued_at).total_seconds()
                     for t in done[dag_id].tasks.values() if t.attempts and t.queued_at]
            assert len(waits) == n_attempts
            assert delta(before, after, "orchestrator_queue_wait_seconds_sum", dag=dag_id,
                         queue=queue) == pytest.approx(sum(waits), abs=1e-5)

    for (_name, labels), _v in after.items():
        assert {k for k, _ in labels} <= LABELS
        assert not {v for _, v in labels} & set(runs.values())  # never a run id
        assert "[" not in dict(labels).get("task", "")  # instances count under sq
    assert not any(r in text for r in runs.values())


def _le(labels: frozenset[tuple[str, str]]) -> float:
    return float(dict(labels).get("le", "0").replace("+Inf", "inf"))


def test_oldest_queued_task_age(client: Client, viewer: str) -> None:
    run_id = client.submit("metrics_stuck")  # no worker listens on its queue
    try:
        queued_at = client.get_run(run_id).tasks["stuck"].queued_at
        assert queued_at is not None
        t0 = dt.datetime.now(dt.UTC)
        _, samples = scrape(client, viewer)
        t1 = dt.datetime.now(dt.UTC)
        age = value(samples, "orchestrator_oldest_queued_task_age_seconds",
                    dag="metrics_stuck")
        assert client.get_run(run_id).tasks["stuck"].queued_at == queued_at
        assert (t0 - queued_at).total_seconds() - 1e-3 <= age
        assert age <= (t1 - queued_at).total_seconds() + 1e-3
        assert value(samples, "orchestrator_running_runs", dag="metrics_stuck") >= 1
    finally:
        client.cancel(run_id)
    _, samples = scrape(client, viewer)
    assert ("orchestrator_oldest_queued_task_age_seconds",
            frozenset({("dag", "metrics_stuck")})) not in samples


def test_metrics_need_a_token_and_live_outside_the_api(client: Client, viewer: str) -> None:
    app = _app(client)
    for token in (None, "not-a-token"):
        answer = get(app, "/metrics", token)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "orchestrator_" not in answer.text
    assert get(app, "/metrics", viewer).status_code == 200
    assert get(app, "/api/v1/metrics", viewer).status_code == 404


def test_a_scrape_burst_costs_one_snapshot(client: Client, viewer: str) -> None:
    reads: list[store_metrics.Snapshot] = []

    def read() -> store_metrics.Snapshot:
        reads.append(client.store.metrics())
        return reads[-1]

    app = _app(client)
    app.state.metrics_registry = obs.registry(read, default_queue="q", ttl=3600)
    for _ in range(3):
        assert get(app, "/metrics", viewer).status_code == 200
    assert len(reads) == 1
