"""A DAG that tells someone when it fails: a signed webhook, with a callback too.

Point the webhook at a local receiver and run the failing variant::

    export ALERT_WEBHOOK_URL=http://127.0.0.1:8765/ ALERT_WEBHOOK_SECRET=change-me
    orchestrator alerts listen --secret-env ALERT_WEBHOOK_SECRET   # one shell
    orchestrator up                                                # another, same exports
    orchestrator run orders_alerting --param fail=true --wait      # a third

The receiver prints one alert for the failed run, its signature verified. The URL and
secret are read by the coordinator when it delivers, never stored.
"""

import logging

from orchestrator import Alert, dag, task

log = logging.getLogger(__name__)


def page_on_call(alert: Alert) -> None:
    """Runs in a worker once per failed run; its id is the same on a repeat delivery."""
    log.warning("paging on-call for %s (%s): %s", alert.run_id, alert.id, alert.error)


@task(retries=1, retry_backoff=0.5)
def load_orders(fail: bool) -> int:
    if fail:
        raise RuntimeError("the orders warehouse refused the connection")
    return 42


@task
def publish(count: int) -> str:
    return f"published {count} orders"


@dag(id="orders_alerting", on_failure=page_on_call, notify=[
    {"on": ["run_failed"],
     "webhook": {"url": {"env": "ALERT_WEBHOOK_URL"},
                 "secret": {"env": "ALERT_WEBHOOK_SECRET"}}},
])
def orders_alerting(fail: bool = False) -> None:
    """Load the day's orders and publish them; ``fail=true`` makes the load fail."""
    publish(load_orders(fail))
