"""Our tasks on Celery's in-process test worker (pytest-celery's session fixtures).

The subprocess tests are the real thing; this tier shows the runtime needs nothing from
our own launcher: any Celery app with the tasks registered runs a DAG to the end.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from orchestrator.authoring import discovery
from orchestrator.client import Client
from orchestrator.model.states import RunState
from orchestrator.settings import Settings
from orchestrator.store import Store
from orchestrator.transport.celery_config import celery_config as orchestrator_celery_config
from tests.support import make_settings
from workers.app import register

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def inprocess_settings(broker_url: str, ledger_dir: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> Settings:
    db = tmp_path_factory.mktemp("inprocess") / "state.db"
    settings = make_settings(broker_url, f"sqlite:///{db}")
    store = Store(settings.database.url)
    store.upgrade()
    store.dispose()
    return settings


@pytest.fixture(scope="session")
def celery_config(inprocess_settings: Settings) -> Mapping[str, Any]:
    assert inprocess_settings.broker.url is not None
    return orchestrator_celery_config(inprocess_settings, inprocess_settings.broker.url)


@pytest.fixture(scope="session")
def celery_worker_parameters(celery_session_app: Celery,
                             inprocess_settings: Settings) -> Mapping[str, Any]:
    # Runs before celery_session_worker starts: register our tasks on its app first.
    register(celery_session_app, inprocess_settings,
             discovery.load(inprocess_settings.dags.path))
    # No result backend here (the state DB is ours), so the ping check cannot answer.
    return {"queues": (inprocess_settings.worker.default_queue,), "perform_ping_check": False}


@pytest.fixture
def inprocess_client(celery_session_worker: Any,
                     inprocess_settings: Settings) -> Iterator[Client]:
    with Client(inprocess_settings) as client:
        yield client


def test_a_dag_runs_on_the_in_process_test_worker(inprocess_client: Client) -> None:
    run_id = inprocess_client.submit("chain20", {"start": 100})
    run = inprocess_client.wait(run_id, timeout=60)
    assert run.state == RunState.SUCCESS
    assert inprocess_client.result(run_id, "inc__19") == 120


def test_failures_propagate_on_the_in_process_test_worker(inprocess_client: Client) -> None:
    run = inprocess_client.wait(inprocess_client.submit("failing"), timeout=60)
    assert run.state == RunState.FAILED
    assert run.tasks["down2"].state == "upstream_failed"
    assert run.tasks["side2"].state == "success"
