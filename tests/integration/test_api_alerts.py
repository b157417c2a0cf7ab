"""The alerts in the REST API, on SQLite and PostgreSQL: a run's notifications and the
latest of all, each with every try at it, filtered by state; never the target (no URL,
no secret), errors masked; unknown runs and bad filters are problems."""

from __future__ import annotations

import json
import os
import typing
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.api import schemas_alerts
from orchestrator.client import Client
from orchestrator.model import records
from tests.alerts_support import ERROR, failed_run, one_delivered_one_failed, own_client
from tests.api_support import API, api, problem, token

pytestmark = pytest.mark.integration

HOOK_URL = "http://127.0.0.1:9/hook-path-that-must-not-show"
HOOK_SECRET = "view-hook-secret-that-must-not-show"


@pytest.fixture
def alerts_client(broker_url: str, database_url: str, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("TEST_VIEW_HOOK_URL", HOOK_URL)
    monkeypatch.setenv("TEST_VIEW_HOOK_SECRET", HOOK_SECRET)
    with own_client(broker_url, database_url, tmp_path) as client:
        yield client


def test_a_runs_alerts_and_every_try_are_listed_without_their_target(
        alerts_client: Client) -> None:
    client = alerts_client
    secret = client.settings.security.signing_key
    assert secret  # masked below: the check checks something
    run_id = failed_run(client, message=f"{ERROR} (key {secret})")
    one_delivered_one_failed(client, run_id, detail=f"the receiver answered 500 ({secret})")
    other = failed_run(client)  # pending: never tried
    with api(client, token(client, "viewer")) as http:
        r = http.get(f"{API}/runs/{run_id}/notifications")
        assert r.status_code == 200, r.text
        body = r.json()
        everything = http.get(f"{API}/notifications").json()
        failed = http.get(f"{API}/notifications", params={"state": "failed"}).json()
        pending = http.get(f"{API}/notifications", params={"state": "pending",
                                                           "limit": 1}).json()
        one = http.get(f"{API}/notifications", params={"limit": 1}).json()
    by = {n["channel"]: n for n in body["notifications"]}
    assert set(by) == {"webhook", "slack"}
    hook, slack = by["webhook"], by["slack"]
    assert (hook["event"], hook["state"], hook["tries"], hook["task_id"]) == (
        "run_failed", "delivered", 1, None)
    assert hook["payload"]["task_id"] == "load_orders"  # a run's alert names what failed
    assert hook["delivered_at"] and hook["last_error"] is None
    assert [(d["attempt"], d["outcome"], d["status"], d["holder"]) for d in hook["deliveries"]
            ] == [(1, "delivered", 200, "coordinator-a@test")]
    assert (slack["event"], slack["state"], slack["tries"], slack["task_id"],
            slack["attempt"]) == ("task_failed", "failed", 2, "load_orders", 1)
    assert slack["last_error"] == "the receiver answered 500 (***)"
    assert [(d["attempt"], d["outcome"], d["status"], d["detail"], d["holder"])
            for d in slack["deliveries"]] == [
        (1, "failed", 500, "the receiver answered 500", "coordinator-a@test"),
        (2, "failed", 500, "the receiver answered 500 (***)", "coordinator-b@test")]
    assert all(d["finished_at"] for d in slack["deliveries"])
    assert slack["payload"]["error"] == f"RuntimeError: {ERROR} (key ***)"
    assert slack["payload"]["run_id"] == run_id and slack["payload"]["dag_id"] == "alerts_view"
    # neither the target nor the settings' secrets are anywhere in what was answered
    text = json.dumps([body, everything, failed, pending, one])
    for hidden in (HOOK_URL, HOOK_SECRET, "TEST_VIEW_HOOK", "target", secret):
        assert hidden not in text, hidden
    # newest first; a state filters; limit bounds
    assert [n["run_id"] for n in everything["notifications"]][:2] == [other, other]
    assert {n["id"] for n in everything["notifications"]} >= {hook["id"], slack["id"]}
    assert [n["id"] for n in failed["notifications"]] == [slack["id"]]
    assert [(n["run_id"], n["state"], n["deliveries"]) for n in pending["notifications"]
            ] == [(other, "pending", [])]
    assert len(one["notifications"]) == 1


def test_unknown_runs_and_bad_filters_are_problems(alerts_client: Client) -> None:
    client = alerts_client
    with api(client, token(client, "viewer")) as http:
        missing = uuid.uuid4().hex
        assert missing in problem(http.get(f"{API}/runs/{missing}/notifications"),
                                  404)["detail"]
        problem(http.get(f"{API}/runs/not-a-run/notifications"), 422)
        bad = problem(http.get(f"{API}/notifications", params={"state": "lost"}), 422)
        assert any("state" in p for p in bad["problems"])
        problem(http.get(f"{API}/notifications", params={"limit": 0}), 422)
        problem(http.get(f"{API}/notifications", params={"limit": 1001}), 422)
        unknown = problem(http.get(f"{API}/notifications", params={"run": "x"}), 422)
        assert "unknown parameter" in unknown["problems"][0]
        assert http.get(f"{API}/runs/{missing}/notifications",
                        headers={"Authorization": ""}).status_code == 401


def test_the_documents_states_are_the_stores() -> None:
    assert set(typing.get_args(schemas_alerts.NotificationState)) == set(
        records.NOTIFICATION_STATES)
    assert os.environ.get("TEST_VIEW_HOOK_SECRET") is None  # nothing leaked out of a test
