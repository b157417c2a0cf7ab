"""Typed settings: every default in one place, each overridable by an ``ORCH_`` variable."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Orchestrator settings, read from ``ORCH_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="ORCH_", extra="ignore")

    broker_url: str | None = Field(
        default=None,
        description="Redis/Valkey URL (redis://, rediss://). Unset: start an embedded Valkey.",
    )
    database_url: str = Field(
        default="sqlite:///orchestrator.db",
        description="SQLAlchemy URL of the state database (SQLite or PostgreSQL).",
    )
    dags_path: Path = Field(default=Path("dags"), description="Folder the DAG files are read from.")
    default_queue: str = Field(default="default", description="Queue for tasks that name none.")
    task_timeout_max: float = Field(
        default=3600.0,
        description="Longest task timeout allowed; the broker's visibility timeout sits above it.",
    )
    visibility_timeout: float | None = Field(
        default=None,
        description="Seconds before an unacknowledged message is redelivered "
        "(default: task_timeout_max + 60).",
    )
    lease_seconds: float = Field(
        default=30.0,
        description="A running attempt whose worker stopped renewing it for this long is lost.",
    )
    unacked_restore_interval: float = Field(
        default=5.0, description="How often a worker looks for unacknowledged messages to restore."
    )
    worker_concurrency: int | None = Field(
        default=None, description="Worker processes per worker (default: CPU count)."
    )
    flower_port: int = Field(default=5555, description="Port Flower listens on (127.0.0.1).")
    flower_user: str = Field(default="admin", description="Flower basic-auth user.")
    flower_password: str | None = Field(
        default=None, description="Flower basic-auth password (unset: a random one is printed)."
    )
    requeue_after: float = Field(
        default=300.0,
        description="A queued task with no worker on it this long is sent again (its message "
        "may have been lost with the broker); duplicates are harmless, attempts are fenced.",
    )
    reconcile_interval: float = Field(
        default=5.0, description="Seconds between two passes of the coordinator's reconciler.")
    task_events: bool = Field(
        default=False,
        description="Workers send task events from the start. Off by default: they cost "
        "~1 ms per task, and Flower switches them on in the workers it watches.",
    )
    time_limit_grace: float = Field(
        default=10.0, gt=0,
        description="Seconds between a task's timeout (it sees TaskTimeout) and the kill of "
        "its process; the coordinator fails an attempt still running after that.")
    max_tasks: int = Field(default=100_000, description="Largest DAG accepted, in tasks.")
    max_map_items: int = Field(
        default=100_000, ge=0,
        description="Most items one mapped task expands to; a longer list fails that task.")

    @model_validator(mode="after")
    def _visibility_above_timeouts(self) -> Settings:
        if self.visibility_timeout is not None and self.visibility_timeout <= self.task_timeout_max:
            raise ValueError(
                f"ORCH_VISIBILITY_TIMEOUT ({self.visibility_timeout}) must be above "
                f"ORCH_TASK_TIMEOUT_MAX ({self.task_timeout_max}), or healthy long tasks are "
                "redelivered while they run")
        return self

    @property
    def effective_visibility_timeout(self) -> float:
        if self.visibility_timeout is not None:
            return self.visibility_timeout
        return self.task_timeout_max + 60.0


def load() -> Settings:
    return Settings()
