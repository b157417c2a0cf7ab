"""orchestrator: DAGs as code, run exactly on Celery workers, tracked in SQL."""

from orchestrator.authoring.kind_tasks import http_task, sql_task
from orchestrator.authoring.python import Dag, Output, dag, task
from orchestrator.authoring.sensors import sensor
from orchestrator.errors import OrchestratorError
from orchestrator.execution.callbacks import Alert
from orchestrator.execution.task_context import TaskContext
from orchestrator.execution.task_context import current as context
from orchestrator.model.secret_spec import Secret, secret

__all__ = [
    # authoring
    "Alert",
    "Client",
    "Dag",
    "OrchestratorError",
    "Output",
    "Secret",
    "TaskContext",
    "context",
    "dag",
    "http_task",
    "secret",
    "sensor",
    "sql_task",
    "task",
]


def __getattr__(name: str) -> object:
    # The client pulls in Celery and SQLAlchemy; authoring a DAG should not.
    if name == "Client":
        from orchestrator.client import Client

        return Client
    raise AttributeError(name)
