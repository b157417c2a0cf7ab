"""What the alerts' API, CLI and page tests share: a failed run of tdag_alerts_view
written through the store (a run_failed webhook alert and a task_failed Slack one), and
tries at delivering its alerts recorded through the store's own claim and finish, as a
coordinator records them. Used on a database of the test's own, so the claim takes
nothing of another test's."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.client import Client
from orchestrator.store import Store
from orchestrator.store.results import Claim, Outgoing
from tests.support import fresh_database, make_settings

DAG = "alerts_view"
ERROR = "the orders warehouse refused the connection"
Outcome = tuple[bool, int | None, str | None, bool]
"""(delivered, status, detail, try again)."""


@contextmanager
def own_client(broker_url: str, database_url: str, folder: Path,
               **settings: object) -> Iterator[Client]:
    """A Client on an empty database of the tier's kind, at the schema's head."""
    with fresh_database(database_url, folder) as url:
        store = Store(url)
        store.upgrade()
        store.dispose()
        with Client(make_settings(broker_url, url, **settings)) as client:
            yield client


def failed_run(client: Client, *, message: str = ERROR, worker: str = "w1@test") -> str:
    """A run of alerts_view whose load_orders failed (publish: upstream_failed), so the
    run failed: the store wrote its two alerts in those transactions."""
    dag = client.dag(DAG)
    run_id = uuid.uuid4().hex
    client.store.create_run(dag, run_id=run_id, params={})
    claim = client.store.claim(run_id, "load_orders", 1, worker=worker, pid=4242,
                               lease_seconds=60, data_from=[], max_lost=3)
    assert isinstance(claim, Claim)
    client.store.fail(run_id, "load_orders", 1, error_type="RuntimeError", message=message,
                      traceback=None, retry_in=None, p=dag.plan, token=claim.token)
    return run_id


def try_due(store: Store, run_id: str, holder: str,
            outcome: Callable[[Outgoing], Outcome]) -> list[Outgoing]:
    """One coordinator pass: claim what is due, record each try's outcome."""
    taken = store.claim_notifications(holder, limit=100, lease=60)
    assert {o.run_id for o in taken} <= {run_id}, "the database is not the test's own"
    for out in taken:
        delivered, status, detail, again = outcome(out)
        assert store.finish_notification(
            out, delivered=delivered, status=status, detail=detail,
            retry_at=dt.datetime.now(dt.UTC) if again and not delivered else None)
    return taken


def one_delivered_one_failed(client: Client, run_id: str, *,
                             detail: str = "the receiver answered 500") -> None:
    """The webhook alert delivered on its first try; the Slack one failed twice (500),
    then given up."""
    def first(out: Outgoing) -> Outcome:
        return (True, 200, None, False) if out.channel == "webhook" else \
            (False, 500, "the receiver answered 500", True)

    assert len(try_due(client.store, run_id, "coordinator-a@test", first)) == 2
    assert len(try_due(client.store, run_id, "coordinator-b@test",
                       lambda out: (False, 500, detail, False))) == 1
