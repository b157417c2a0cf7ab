"""The secrets battery's DAG (tests/security/test_secrets_battery.py): one secret param and
two secrets the worker reads (an env variable, a file), each planted in every form a task
can give it away in: printed plain, URL-quoted and base64, logged, raised, returned."""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from urllib.parse import quote, unquote, urlsplit

from orchestrator import Secret, context, dag, secret, task

ENV_NAME = "BATTERY_ENV_TOKEN"
CONNECTION = "battery_db"
"""ORCH_CONN_BATTERY_DB in the workers' environment: its password is the fourth secret."""
# Not under ORCH_TEST_LEDGER_DIR: a process that imports this file before that is set (a
# test module that loads the DAG folder at collection) would store another path.
FILE = os.path.join(tempfile.gettempdir(), f"orchestrator-battery-{os.getuid()}.secret")

log = logging.getLogger("tdag.secrets")


def _forms(value: str) -> dict[str, str]:
    return {"plain": value, "quoted": quote(value, safe=""),
            "base64": base64.b64encode(value.encode()).decode(),
            "basic": base64.b64encode(f"admin:{value}".encode()).decode()}


@task
def plant(api_key: str, env_token: str, file_token: str) -> dict[str, object]:
    planted = [api_key, env_token, file_token]
    for value in planted:
        for form, text in _forms(value).items():
            print(f"{form} {text}")
        log.warning("logged %s", value)
    return {"forms": [_forms(v) for v in planted],
            "json": json.dumps({"values": planted}),
            "password": "a-value-under-a-sensitive-key"}


@task(retries=1, retry_backoff=0.1, retry_jitter=False)
def explode(api_key: str, env_token: str, file_token: str) -> None:
    planted = [api_key, env_token, file_token]
    raise RuntimeError("cannot connect with " + " ".join(
        text for value in planted for text in _forms(value).values()))


@task
def plant_connection() -> dict[str, object]:
    """A task that reads a connection and gives its password away in every form."""
    url = context().connection(CONNECTION).url
    password = unquote(urlsplit(url).password or "")
    for form, text in _forms(password).items():
        print(f"{form} {text}")
    log.warning("connecting to %s", url)
    return {"url": url, "forms": _forms(password)}


@dag(id="secrets_battery")
def secrets_battery(api_key: Secret) -> None:
    for body in (plant, explode):
        body(api_key, secret(env=ENV_NAME), secret(file=FILE))
    plant_connection()
