"""Typed settings, grouped by area; each is an ``ORCH_*`` environment variable.

Where a value comes from, first match wins: arguments given in code, the environment,
then the local stack's state file (``.orchestrator/stack.json``, written by
``orchestrator up`` in the folder it runs in), then the default. So any command started
in a project folder where ``up`` runs finds that stack with nothing exported.

Every field names its variable (``validation_alias``): the README's configuration table
is checked against them, and :meth:`Settings.as_env` hands the same settings to a child
process.
"""

from __future__ import annotations

import contextvars
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

STATE_DIR = ".orchestrator"
"""The local stack's state folder, inside the project folder (git-ignored, owner-only)."""
STACK_FILE = "stack.json"

MAP_ITEMS_CEILING = 10_000_000
"""The most ORCH_MAX_MAP_ITEMS may be: task id columns are wide enough for a mapped
instance of the longest id at the largest index below it (``model/limits.py``)."""
QUEUE_PATTERN = r"^[A-Za-z0-9_.:@/+-]{1,200}$"
"""Queue names: no spaces, commas (``worker --queues`` splits on them) or control
characters."""


def stack_file(folder: Path | None = None) -> Path:
    return (folder or Path.cwd()) / STATE_DIR / STACK_FILE


def read_stack_file(folder: Path | None = None) -> dict[str, str]:
    """The variables ``orchestrator up`` recorded for this folder, if it ran here."""
    try:
        data = json.loads(stack_file(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    env = data.get("env") if isinstance(data, dict) else None
    if not isinstance(env, dict):
        return {}
    return {k: v for k, v in env.items() if isinstance(k, str) and isinstance(v, str)}


def env_name(info: FieldInfo) -> str:
    alias = info.validation_alias
    assert isinstance(alias, str), "every setting names its variable"
    return alias


_stack_file_on: contextvars.ContextVar[bool] = contextvars.ContextVar("stack_file", default=True)


class _StackFile(PydanticBaseSettingsSource):
    """Values ``orchestrator up`` recorded in this folder; below the environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return read_stack_file().get(env_name(field)), field_name, False

    def __call__(self) -> dict[str, Any]:
        recorded = read_stack_file() if _stack_file_on.get() else {}
        # keyed by variable name: the fields are validated by their aliases only
        return {env_name(info): recorded[env_name(info)]
                for info in self.settings_cls.model_fields.values() if env_name(info) in recorded}


def _var(name: str, default: Any, description: str, **constraints: Any) -> Any:
    return Field(default, validation_alias=name, description=description, **constraints)


class _Area(BaseSettings):
    # Fields are set by variable name only: matching on field names too would read
    # PATH into `dags.path` and USER into `flower.user`.
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _StackFile(settings_cls)


class DatabaseSettings(_Area):
    url: str = _var("ORCH_DATABASE_URL", "sqlite:///orchestrator.db",
                    "SQLAlchemy URL of the state database: SQLite or `postgresql://…`.")


class BrokerSettings(_Area):
    url: str | None = _var(
        "ORCH_BROKER_URL", None,
        "Redis/Valkey URL (`redis://`, `rediss://`, with password/ACL). Unset: `up` and "
        "`quickstart` start an embedded Valkey.")
    visibility_timeout: float | None = _var(
        "ORCH_VISIBILITY_TIMEOUT", None,
        "Seconds before an unacknowledged message is redelivered (default: "
        "`ORCH_TASK_TIMEOUT_MAX` + 60); must be above `ORCH_TASK_TIMEOUT_MAX`.", gt=0)
    unacked_restore_interval: float = _var(
        "ORCH_UNACKED_RESTORE_INTERVAL", 5.0,
        "How often workers look for unacknowledged messages to restore.", gt=0)


class DagSettings(_Area):
    path: Path = _var("ORCH_DAGS_PATH", Path("dags"),
                      "Folder the DAG files are read from; it goes on the import path.")
    max_tasks: int = _var("ORCH_MAX_TASKS", 100_000, "Largest DAG accepted, in tasks.", ge=1)
    max_map_items: int = _var("ORCH_MAX_MAP_ITEMS", 100_000,
                              "Most instances one mapped task expands to (at most "
                              f"{MAP_ITEMS_CEILING:,}).", ge=0, le=MAP_ITEMS_CEILING)
    import_timeout: float = _var(
        "ORCH_DAG_IMPORT_TIMEOUT", 30.0,
        "Seconds one Python DAG file may take to import before it is reported as hanging.",
        gt=0)
    max_file_bytes: int = _var("ORCH_MAX_DAG_FILE_BYTES", 4 * 1024 * 1024,
                               "Largest DAG file read (bytes); a bigger one is an error.", ge=1)


class WorkerSettings(_Area):
    concurrency: int | None = _var("ORCH_WORKER_CONCURRENCY", None,
                                   "Pool processes per worker (default: CPU count).", ge=1)
    default_queue: str = _var("ORCH_DEFAULT_QUEUE", "default", "Queue for tasks that name none.",
                              pattern=QUEUE_PATTERN)
    task_timeout_max: float = _var("ORCH_TASK_TIMEOUT_MAX", 3600.0,
                                   "Longest task timeout accepted (seconds).", gt=0)
    lease_seconds: float = _var(
        "ORCH_LEASE_SECONDS", 30.0,
        "A running attempt whose worker stopped renewing its lease for this long counts as "
        "lost.", gt=0)
    time_limit_grace: float = _var(
        "ORCH_TIME_LIMIT_GRACE", 10.0,
        "Seconds between a task's timeout and the kill of its process; the coordinator fails "
        "an attempt still running after that.", gt=0)
    task_events: bool = _var(
        "ORCH_TASK_EVENTS", False,
        "Workers send task events from the start (Flower turns them on anyway). Off by "
        "default: they cost about 1 ms per task.")


class CoordinatorSettings(_Area):
    requeue_after: float = _var(
        "ORCH_REQUEUE_AFTER", 300.0,
        "A queued task no worker took for this long (after it was due) is sent again.", gt=0)
    reconcile_interval: float = _var(
        "ORCH_RECONCILE_INTERVAL", 5.0,
        "Seconds between two passes of the coordinator's reconciler.", gt=0)
    schedule_interval: float = _var(
        "ORCH_SCHEDULE_INTERVAL", 1.0,
        "Seconds between two passes of the coordinator's scheduler (cron ticks, backfills, "
        "sensors due).", gt=0, le=60)
    misfire_grace: float = _var(
        "ORCH_SCHEDULE_MISFIRE_GRACE", 60.0,
        "With catchup none, a tick handled more than this many seconds late is skipped "
        "(counted on the schedule) instead of run.", ge=0)
    max_backfill_runs: int = _var(
        "ORCH_MAX_BACKFILL_RUNS", 100_000,
        "Most logical times one backfill may cover.", ge=1)


class FlowerSettings(_Area):
    port: int = _var("ORCH_FLOWER_PORT", 5555, "Flower's port on 127.0.0.1.", ge=1, le=65535)
    user: str = _var("ORCH_FLOWER_USER", "admin", "Flower basic-auth user.")
    password: str | None = _var(
        "ORCH_FLOWER_PASSWORD", None,
        "Flower basic-auth password (unset: `up` makes one and keeps it in `.orchestrator/`).")


class LimitSettings(_Area):
    max_params_bytes: int = _var("ORCH_MAX_PARAMS_BYTES", 1024 * 1024,
                                 "Largest run params accepted, as JSON bytes.", ge=2)
    max_result_bytes: int = _var(
        "ORCH_MAX_RESULT_BYTES", 4 * 1024 * 1024,
        "Largest task result stored, as JSON bytes; a bigger one fails the task.", ge=4)
    params_cache_bytes: int = _var(
        "ORCH_PARAMS_CACHE_BYTES", 64 * 1024 * 1024,
        "Bytes of run params each worker process keeps cached.", ge=0)


class LogSettings(_Area):
    max_bytes: int = _var(
        "ORCH_MAX_LOG_BYTES", 8 * 1024 * 1024,
        "Most bytes of output kept per attempt; the log then ends with a truncation marker.",
        ge=1024)
    flush_interval: float = _var(
        "ORCH_LOG_FLUSH_INTERVAL", 0.2,
        "Seconds between two writes of a running attempt's output to the database (at "
        "most 0.2; 64 KiB of output flushes at once).", gt=0, le=0.2)


class ServerSettings(_Area):
    host: str = _var("ORCH_SERVER_HOST", "127.0.0.1",
                     "Address `orchestrator server` (REST API, run view, metrics) binds.")
    port: int = _var("ORCH_SERVER_PORT", 8300, "Port of `orchestrator server`.", ge=1,
                     le=65535)
    flower_url: str = _var(
        "ORCH_FLOWER_URL", "",
        "Flower's address as a browser reaches it; the run view links each attempt to it "
        "(unset: `up` sets it to the Flower it starts).")


class SecuritySettings(_Area):
    signing_key: str | None = _var(
        "ORCH_SIGNING_KEY", None,
        "Secret that signs every task message; workers refuse unsigned ones. Unset: `up` "
        "and `quickstart` make one and keep it in `.orchestrator/`.", min_length=32)


class HookSettings(_Area):
    paths: str = _var(
        "ORCH_HOOKS", "",
        "Comma-separated `module:attr` hooks every process loads (see Hooks in the README).")

    @property
    def entries(self) -> list[str]:
        return [p.strip() for p in self.paths.split(",") if p.strip()]


class AlertSettings(_Area):
    notify_file: Path | None = _var(
        "ORCH_NOTIFY_FILE", None, "YAML file of alert rules (`notify:`) for every DAG; every "
        "process reads it at start (a bad rule stops the start, naming its line).")
    smtp_url: str | None = _var(
        "ORCH_SMTP_URL", None, "Mail server for email alerts: `smtp://user:pass@host:587` "
        "(STARTTLS when offered) or `smtps://…` (TLS from the start).")
    mail_from: str = _var("ORCH_MAIL_FROM", "orchestrator@localhost",
                          "Sender address of email alerts.")
    public_url: str = _var("ORCH_PUBLIC_URL", "",
                           "The run view's address in alerts' links (unset: the server's "
                           "own, `http://ORCH_SERVER_HOST:ORCH_SERVER_PORT`).")
    max_tries: int = _var("ORCH_ALERT_MAX_TRIES", 6,
                          "Tries to deliver an alert before it is given up (shown failed).",
                          ge=1, le=100)
    backoff: float = _var("ORCH_ALERT_BACKOFF", 2.0,
                          "Seconds before an alert's second try, doubling after each failed "
                          "one (at most 10 minutes).", gt=0, le=600)
    timeout: float = _var("ORCH_ALERT_TIMEOUT", 10.0,
                          "Seconds a receiver may take to answer one try.", gt=0, le=300)
    interval: float = _var("ORCH_ALERT_INTERVAL", 1.0,
                           "Seconds between the notifier's looks at the outbox (a commit "
                           "that writes an alert wakes it at once).", gt=0, le=60)


class ConnectionSettings(_Area):
    file: Path | None = _var(
        "ORCH_CONNECTIONS_FILE", None, "YAML file of named connections (`connections:` name: "
        "URL, `{env: NAME}` or `{file: PATH}`) for sql and http tasks; `ORCH_CONN_<NAME>` "
        "variables come first. Read by workers when a task runs; never stored or sent.")


AREAS: dict[str, type[_Area]] = {
    "database": DatabaseSettings, "broker": BrokerSettings, "dags": DagSettings,
    "worker": WorkerSettings, "coordinator": CoordinatorSettings, "flower": FlowerSettings,
    "limits": LimitSettings, "logs": LogSettings, "server": ServerSettings,
    "security": SecuritySettings, "hooks": HookSettings, "alerts": AlertSettings,
    "connections": ConnectionSettings,
}


class Settings(BaseModel):
    """Every setting, by area: ``settings.broker.url``, ``settings.worker.lease_seconds``."""

    model_config = ConfigDict(frozen=True)

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    dags: DagSettings = Field(default_factory=DagSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    coordinator: CoordinatorSettings = Field(default_factory=CoordinatorSettings)
    flower: FlowerSettings = Field(default_factory=FlowerSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    logs: LogSettings = Field(default_factory=LogSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    hooks: HookSettings = Field(default_factory=HookSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    connections: ConnectionSettings = Field(default_factory=ConnectionSettings)

    @model_validator(mode="after")
    def _visibility_above_timeouts(self) -> Settings:
        vt, cap = self.broker.visibility_timeout, self.worker.task_timeout_max
        if vt is not None and vt <= cap:
            raise ValueError(
                f"ORCH_VISIBILITY_TIMEOUT ({vt}) must be above ORCH_TASK_TIMEOUT_MAX ({cap}), "
                "or healthy long tasks are redelivered while they run")
        return self

    @property
    def visibility_timeout(self) -> float:
        vt = self.broker.visibility_timeout
        return vt if vt is not None else self.worker.task_timeout_max + 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, Any]) -> Settings:
        """Settings from variables by name (``{"ORCH_BROKER_URL": ...}``); the ones not
        given come from the environment, the stack file and the defaults as usual."""
        areas: dict[str, Any] = {}
        for area, kind in AREAS.items():
            given = {env_name(info): env[env_name(info)] for info in kind.model_fields.values()
                     if env_name(info) in env}
            areas[area] = kind(**given)
        return cls(**areas)

    def with_env(self, **changes: Any) -> Settings:
        """A copy with some variables changed: ``settings.with_env(ORCH_BROKER_URL=url)``."""
        unknown = set(changes) - set(variables())
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}")
        # What the stack file had to say is in `self` already; read again, it would fill
        # in what `self` leaves unset: `up`'s second start took the recorded broker URL
        # for one given, and started no broker of its own.
        token = _stack_file_on.set(False)
        try:
            return Settings.from_env({**self.as_env(), **changes})
        finally:
            _stack_file_on.reset(token)

    def as_env(self) -> dict[str, str]:
        """The variables that give a child process these settings (unset ones left out)."""
        out: dict[str, str] = {}
        for area in AREAS:
            values = getattr(self, area)
            for name, info in type(values).model_fields.items():
                value = getattr(values, name)
                if value is not None:
                    out[env_name(info)] = str(value)
        return out


SECRET_VARIABLES = frozenset({"ORCH_DATABASE_URL", "ORCH_BROKER_URL", "ORCH_FLOWER_PASSWORD",
                              "ORCH_SIGNING_KEY", "ORCH_SMTP_URL"})
"""Variables that hold a secret (a URL's password counts): never printed, never on a
command line, never in a shell task's environment."""


def secret_values(settings: Settings) -> list[str]:
    """The secrets these settings hold: passwords inside URLs, and the secret values."""
    from urllib.parse import unquote, urlsplit

    env = settings.as_env()
    found: list[str] = []
    for name in sorted(SECRET_VARIABLES & set(env)):
        value = env[name]
        if "://" in value:
            password = urlsplit(value).password
            if password:
                found.extend({password, unquote(password)})
        elif value:
            found.append(value)
    return found


def variables() -> dict[str, FieldInfo]:
    """Every variable, by name, with its field (default and description)."""
    return dict(_fields())


def _fields() -> Iterator[tuple[str, FieldInfo]]:
    for kind in AREAS.values():
        for info in kind.model_fields.values():
            yield env_name(info), info


def load(*, stack_file: bool = True) -> Settings:
    """The settings of this process. ``stack_file=False``: ignore what ``up`` recorded
    here (``up`` itself, which decides those values afresh)."""
    token = _stack_file_on.set(stack_file)
    try:
        return Settings()
    finally:
        _stack_file_on.reset(token)


def child_env(settings: Settings) -> dict[str, str]:
    """This process's environment with ``settings`` in place of the settings it had."""
    known = variables()
    env = {k: v for k, v in os.environ.items() if k not in known}
    env.update(settings.as_env())
    return env


def markdown_table() -> str:
    """The README's configuration table, from the fields themselves (a test compares)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in _fields():
        default = info.get_default()
        shown = "unset" if default is None or default == "" else f"`{default}`"
        rows.append(f"| `{name}` | {shown} | {info.description} |")
    return "\n".join(rows)
