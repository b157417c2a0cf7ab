"""The README's alerting walk-through: the example DAG in dags/, its webhook pointed at a
local receiver, the failing variant run once: exactly one signed alert arrives (and the
succeeding variant sends none)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import pytest

from orchestrator import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from orchestrator.store import Store
from tests.receivers import Receiver
from tests.support import ROOT, environ, fresh_database, make_settings, wait_until

pytestmark = pytest.mark.integration

SECRET = "example-webhook-secret"


@pytest.fixture(scope="module")
def example(broker_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[tuple[LocalStack, Receiver]]:
    folder = tmp_path_factory.mktemp("alerting-example")
    with Receiver() as hook, fresh_database(database_url, folder) as url, \
            environ(ALERT_WEBHOOK_URL=hook.url, ALERT_WEBHOOK_SECRET=SECRET):
        settings = make_settings(broker_url, url, dags_path=ROOT / "dags")
        with LocalStack(settings, coordinator=True, log_dir=str(folder)) as stack:
            yield stack, hook


def _settled(stack: LocalStack, run_id: str) -> list[object]:
    store = Store(stack.settings.database.url)
    try:
        return wait_until(  # type: ignore[no-any-return]
            lambda: (rows := store.notifications(run_id))
            and all(r.state in ("delivered", "failed") for r in rows) and rows,
            60, "the run's alerts delivered")
    finally:
        store.dispose()


def test_the_failing_variant_sends_exactly_one_signed_alert(
        example: tuple[LocalStack, Receiver]) -> None:
    stack, hook = example
    with Client(stack.settings) as client:
        failing = client.submit("orders_alerting", {"fail": True})
        ok = client.submit("orders_alerting")
        assert client.wait(failing, timeout=60).state == RunState.FAILED
        assert client.wait(ok, timeout=60).state == RunState.SUCCESS
    rows = _settled(stack, failing)
    assert sorted((r.channel, r.state) for r in rows) == [  # type: ignore[attr-defined]
        ("callback", "delivered"), ("webhook", "delivered")]
    (got,) = hook.of_run(failing)
    assert got.json["event"] == "run_failed" and got.json["task_id"] == "load_orders"
    assert "refused the connection" in got.json["error"]
    signature = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Orchestrator-Signature"] == f"sha256={signature}"
    assert got.headers["X-Orchestrator-Event-Id"] == got.json["id"]
    store = Store(stack.settings.database.url)
    try:
        assert store.notifications(ok) == []
    finally:
        store.dispose()
    assert len(hook.got) == 1
