"""GET /api/v1/runs pages by keyset: newest first, every run once, none missing, filters by
DAG and state, stable while runs are added, and an opaque cursor that refuses tampering.

The runs are written through the store (never sent: no worker runs them, and each test
cancels its own at the end) under DAG ids of their own, so the shared database's other
runs stay out of the counts."""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.model.compiled import CompiledDag
from tests.api_support import API, api, problem, token
from tests.support import compiled_of

pytestmark = pytest.mark.integration


_MADE: list[tuple[Client, str]] = []


@pytest.fixture(autouse=True)
def _cancel_what_was_made() -> Iterator[None]:
    """The runs a test wrote end cancelled: no queued task of theirs is left for a
    reconciler to resend or a metric to count."""
    yield
    while _MADE:
        client, run_id = _MADE.pop()
        with contextlib.suppress(errors.Conflict):
            client.store.cancel(run_id)


def _make_runs(client: Client, dag: CompiledDag, n: int) -> list[str]:
    made = []
    for _ in range(n):
        run_id = uuid.uuid4().hex
        client.store.create_run(dag, run_id=run_id, params={})
        _MADE.append((client, run_id))
        made.append(run_id)
    return made


def _newest_first(client: Client, ids: list[str]) -> list[str]:
    runs = [client.get_run(i) for i in ids]
    return [r.id for r in sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)]


def _walk(http: httpx.Client, **query: Any) -> tuple[list[str], int]:
    """Every run id of every page, in order, and the number of pages."""
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        r = http.get(f"{API}/runs", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert len(body["runs"]) <= query["limit"]
        ids += [run["id"] for run in body["runs"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert len(body["runs"]) == query["limit"]  # only the last page is short
        assert pages < 1000, "the walk does not end"


def test_pages_walk_every_run_once_newest_first(client: Client) -> None:
    dag = compiled_of({"a": []}, dag_id=f"page_{uuid.uuid4().hex[:8]}")
    other = compiled_of({"a": []}, dag_id=f"page_other_{uuid.uuid4().hex[:8]}")
    mine = _make_runs(client, dag, 23)
    _make_runs(client, other, 4)  # interleaved in time with nothing of ours
    mine += _make_runs(client, dag, 4)
    with api(client, token(client, "viewer")) as http:
        walked, pages = _walk(http, dag_id=dag.id, limit=5)
        assert pages == 6 and len(walked) == len(set(walked)) == 27
        assert walked == _newest_first(client, mine)
        one, _ = _walk(http, dag_id=dag.id, limit=27)
        assert one == walked
        first = http.get(f"{API}/runs", params={"dag_id": dag.id, "limit": 27}).json()
        assert first["next_cursor"] is None  # exactly full: no empty page after it
        shown = first["runs"][0]
        assert set(shown) == {"id", "dag_id", "state", "created_at", "finished_at",
                              "total_tasks", "unfinished", "dag_version", "trigger",
                              "logical_time", "interval_start", "interval_end", "backfill_id"}
        assert (shown["trigger"], shown["logical_time"]) == ("manual", None)
        assert shown["dag_id"] == dag.id and shown["dag_version"] == dag.version


def test_runs_added_while_paging_move_nothing_between_pages(client: Client) -> None:
    dag = compiled_of({"a": []}, dag_id=f"page_{uuid.uuid4().hex[:8]}")
    before = _make_runs(client, dag, 12)
    with api(client, token(client, "viewer")) as http:
        page = http.get(f"{API}/runs", params={"dag_id": dag.id, "limit": 5}).json()
        seen = [r["id"] for r in page["runs"]]
        later = _make_runs(client, dag, 3)  # newer than every run already paged past
        cursor = page["next_cursor"]
        while cursor:
            page = http.get(f"{API}/runs", params={"dag_id": dag.id, "limit": 5,
                                                   "cursor": cursor}).json()
            seen += [r["id"] for r in page["runs"]]
            cursor = page["next_cursor"]
        assert seen == _newest_first(client, before)
        assert not set(later) & set(seen)
        walked, _ = _walk(http, dag_id=dag.id, limit=5)
        assert walked == _newest_first(client, before + later)


def test_state_and_dag_filters(client: Client) -> None:
    dag = compiled_of({"a": []}, dag_id=f"page_{uuid.uuid4().hex[:8]}")
    made = _make_runs(client, dag, 10)
    cancelled = made[1::3]
    for run_id in cancelled:
        client.store.cancel(run_id)
    with api(client, token(client, "viewer")) as http:
        walked, _ = _walk(http, dag_id=dag.id, state="cancelled", limit=2)
        assert walked == _newest_first(client, cancelled)
        walked, _ = _walk(http, dag_id=dag.id, state="running", limit=3)
        assert walked == _newest_first(client, [r for r in made if r not in cancelled])
        # the state alone, across every DAG of the shared database
        everything, _ = _walk(http, state="cancelled", limit=50)
        assert [r for r in everything if r in cancelled] == _newest_first(client, cancelled)
        states = {http.get(f"{API}/runs/{r}").json()["state"] for r in everything[:20]}
        assert states == {"cancelled"}
        empty = http.get(f"{API}/runs", params={"dag_id": "no_such_dag", "limit": 5}).json()
        assert empty == {"runs": [], "next_cursor": None}


def test_bad_cursors_and_limits_are_refused(client: Client) -> None:
    dag = compiled_of({"a": []}, dag_id=f"page_{uuid.uuid4().hex[:8]}")
    _make_runs(client, dag, 3)

    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    with api(client, token(client, "viewer")) as http:
        good = http.get(f"{API}/runs", params={"dag_id": dag.id, "limit": 1}).json()
        assert good["next_cursor"]
        bad = ["garbage!", b64("no separator"), b64("2024-01-01T00:00:00|" + "g" * 32),
               b64("2024-01-01T00:00:00|" + "a" * 32),  # no time zone
               b64("not a time|" + "a" * 32), good["next_cursor"][:-2], "\u00e9",
               "A" * 201]
        for cursor in bad:
            body = problem(http.get(f"{API}/runs", params={"cursor": cursor}), 422)
            assert body["problems"], body
        for limit in ("0", "501", "-1", "x"):
            problem(http.get(f"{API}/runs", params={"limit": limit}), 422)
        problem(http.get(f"{API}/runs", params={"state": "sleeping"}), 422)
        twice = problem(http.get(f"{API}/runs?dag_id={dag.id}&dag_id=other&limit=2"), 422)
        assert twice["problems"] == ["query.dag_id: given more than once"]  # not the last
        typo = problem(http.get(f"{API}/runs", params={"stat": "failed"}), 422)
        assert typo["problems"] == ["query.stat: unknown parameter; this route takes: "
                                    "cursor, dag_id, limit, state"]  # not every run
