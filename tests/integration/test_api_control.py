"""The REST API's pools, named events and schedules, through the app on the conftest stack:
bad input is a 422 with nothing written, viewers read, operators act."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.client import Client
from orchestrator.model.states import RunState
from tests.api_support import API, api, problem, token

pytestmark = pytest.mark.integration


def test_pools_are_set_read_and_deleted(client: Client) -> None:
    name = f"api_pool_{uuid.uuid4().hex[:8]}"
    with api(client, token(client, "operator")) as http:
        made = http.put(f"{API}/pools/{name}", json={"slots": 3, "description": "db"})
        assert made.status_code == 200, made.text
        assert made.json() == {"name": name, "slots": 3, "used": 0, "queued": 0,
                               "running": 0, "waiting": 0, "description": "db"}
        assert http.get(f"{API}/pools/{name}").json() == made.json()
        listed = {p["name"]: p for p in http.get(f"{API}/pools").json()["pools"]}
        assert listed[name] == made.json() and "default" in listed
        grown = http.put(f"{API}/pools/{name}", json={"slots": None})
        assert grown.json()["slots"] is None and grown.json()["description"] == "db"
        assert http.delete(f"{API}/pools/{name}").status_code == 204
        problem(http.get(f"{API}/pools/{name}"), 404)
        assert "default pool" in problem(http.delete(f"{API}/pools/default"), 409)["detail"]


@pytest.mark.parametrize("body", [{"slots": -1}, {"slots": "3"}, {"slots": 10**9},
                                  {"slots": 1, "extra": True}, {}])
def test_a_bad_pool_is_refused_and_writes_nothing(client: Client, body: dict[str, object],
                                                  ) -> None:
    name = f"api_pool_{uuid.uuid4().hex[:8]}"
    before = client.store.count_rows()
    with api(client, token(client, "operator")) as http:
        problem(http.put(f"{API}/pools/{name}", json=body), 422)
        problem(http.put(f"{API}/pools/%20padded", json={"slots": 1}), 422)
    assert client.store.count_rows() == before


def test_viewers_read_pools_and_cannot_change_them(client: Client) -> None:
    with api(client, token(client, "viewer")) as http:
        assert http.get(f"{API}/pools").status_code == 200
        assert "only operators" in problem(http.put(f"{API}/pools/x", json={"slots": 1}),
                                           403)["detail"]
    assert all(p.name != "x" or p.slots is None for p in client.pools())


def test_an_event_starts_its_subscriber_or_stays_pending(client: Client) -> None:
    client.store.register_dags([client.dag("tev_consumer")])
    lonely = f"api-nobody-{uuid.uuid4().hex[:8]}"
    with api(client, token(client, "operator")) as http:
        r = http.post(f"{API}/events", json={"name": "tev-ping", "payload": {"n": 1}})
        assert r.status_code == 201, r.text
        (run_id,) = r.json()["runs"]
        assert client.wait(run_id, timeout=60).state == RunState.SUCCESS
        nobody = http.post(f"{API}/events", json={"name": lonely})
        assert nobody.json()["runs"] == [] and nobody.json()["pending"] == 1
        pending = http.get(f"{API}/events", params={"pending": "true", "name": lonely})
        (event,) = pending.json()["events"]
        assert event["id"] == nobody.json()["event_id"] and event["kind"] == "event"
        shown = http.get(f"{API}/events", params={"name": "tev-ping"}).json()["events"]
        mine = next(e for e in shown if e["id"] == r.json()["event_id"])
        assert mine["payload"] == {"n": 1} and mine["consumers"] == [["tev_consumer", run_id]]
        problem(http.post(f"{API}/events", json={"payload": {}}), 422)
        problem(http.get(f"{API}/events", params={"kind": "other"}), 422)


def test_schedules_list_the_timed_dags_of_the_folder(client: Client) -> None:
    client.store.register_dags([client.dag("tev_consumer")])
    with api(client, token(client, "viewer")) as http:
        r = http.get(f"{API}/schedules")
    assert r.status_code == 200, r.text
    by_dag = {s["dag_id"]: s for s in r.json()["schedules"]}
    assert by_dag["tev_consumer"]["paused"] is False
    assert "api_quick" not in by_dag  # no schedule: not listed
