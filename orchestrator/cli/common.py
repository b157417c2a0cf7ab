"""What several commands share: the client, params, run ids, options."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator import errors
from orchestrator.model import limits, params, spec

if TYPE_CHECKING:
    from orchestrator.client import Client
    from orchestrator.store import Store

MAX_PROCESSES = 512
"""Most worker processes one command starts (per worker, and workers per stack)."""
MAX_WAIT_S = 366 * 24 * 3600.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_ID = re.compile(spec.ID_PATTERN)
_RUN_ID = re.compile(f"[0-9a-f]{{1,{limits.RUN_ID_LENGTH}}}")
_QUEUE = re.compile(limits.QUEUE_PATTERN)
_HOSTNAME = re.compile(r"[A-Za-z0-9_.%@-]{1,150}")


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 60 else repr(value[:57]) + "..."


def an_id(value: str | None) -> str | None:
    """A DAG or task id as DAG files may declare it (checked whole: no newline after)."""
    if value is not None and not _ID.fullmatch(value):
        raise typer.BadParameter(f"{_shown(value)} is not an id: ids match {spec.ID_PATTERN}")
    return value


def a_run_id(value: str) -> str:
    if not _RUN_ID.fullmatch(value):
        raise typer.BadParameter(f"{_shown(value)} is not a run id: run ids are "
                                 f"{limits.RUN_ID_LENGTH} hex digits (a unique prefix of one "
                                 "will do)")
    return value


def seconds(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and 0 < value <= MAX_WAIT_S):
        raise typer.BadParameter(f"{value} is not a number of seconds above 0 and at most "
                                 f"{MAX_WAIT_S:.0f}")
    return value


def a_key(value: str | None) -> str | None:
    if value is not None:
        try:
            params.check_key(value)
        except errors.InvalidArgument as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


def queue_names(value: str | None) -> str | None:
    for name in (value.split(",") if value is not None else []):
        if not _QUEUE.fullmatch(name):
            raise typer.BadParameter(f"{_shown(name)} is not a queue name: queue names match "
                                     f"{limits.QUEUE_PATTERN}")
    return value


def a_hostname(value: str | None) -> str | None:
    if value is not None and not _HOSTNAME.fullmatch(value):
        raise typer.BadParameter(f"{_shown(value)} is not a node name: letters, digits and "
                                 "_.%@- only, at most 150")
    return value


def a_log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise typer.BadParameter(f"{_shown(value)} is not one of {', '.join(LOG_LEVELS)}")
    return value.upper()


def a_path(value: Path | None) -> Path | None:
    """A path the system can look at: a NUL in it, or a name too long, is refused here
    rather than as a traceback later."""
    if value is not None:
        try:
            value.exists()
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"{_shown(str(value))}: {exc}") from None
    return value


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", help="k=v; v is read as JSON when it parses, else as a string.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait, with a progress bar.")]
TimeoutOpt = Annotated[float | None, typer.Option(help="Seconds to wait.", callback=seconds)]
RunIdArg = Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.",
                                         callback=a_run_id)]
DagIdArg = Annotated[str, typer.Argument(help="A DAG id.", callback=an_id)]


def client() -> Client:
    # Imported here: `orchestrator dags validate` should not need SQLAlchemy or Celery.
    from orchestrator.client import Client

    return Client()


@contextmanager
def store() -> Iterator[Store]:
    """The configured database's store, its schema checked (one behind names `orchestrator
    db upgrade` in one line), disposed after: for commands that need no broker."""
    from orchestrator import settings
    from orchestrator.store import Store

    s = Store(settings.load().database.url)
    try:
        s.check_schema()
        yield s
    finally:
        s.dispose()


def parse_params(items: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise errors.ParamsError(f"--param takes k=v, got {item!r}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
        except RecursionError:
            raise errors.ParamsError(f"--param {key}: the value is nested too deep") from None
        except ValueError as exc:  # an integer of more digits than Python turns into an int
            raise errors.ParamsError(f"--param {key}: {exc}") from None
    return params
