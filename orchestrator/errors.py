"""Every error the orchestrator raises on purpose derives from :class:`OrchestratorError`.

The hierarchy is grouped by who must react: the DAG author (``DagError``), the caller
of the client (``ParamsError``, ``NotFound``, ``Conflict``), the operator
(``TransportError``, ``StoreError``). Validation errors also derive from ``ValueError``
and lookup errors from ``LookupError``, so callers can catch a builtin.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """An orchestrator error."""

    def __init__(self, message: str | None = None) -> None:
        # Fall back to the docstring so every subclass has a readable default message.
        super().__init__(message or (self.__doc__ or "").strip())


class DagError(OrchestratorError, ValueError):
    """A DAG definition is invalid."""

    def __init__(self, message: str, *, dag_id: str | None = None, source: str | None = None,
                 line: int | None = None) -> None:
        self.dag_id = dag_id
        self.source = source
        self.line = line
        where = ""
        if source:
            where = f"{source}:{line}: " if line else f"{source}: "
        prefix = f"DAG {dag_id!r}: " if dag_id else ""
        super().__init__(f"{where}{prefix}{message}")


class CycleError(DagError):
    """The DAG has a cycle."""

    def __init__(self, cycle: list[str], *, dag_id: str | None = None, source: str | None = None,
                 line: int | None = None) -> None:
        self.cycle = cycle
        super().__init__("cycle: " + " -> ".join(cycle), dag_id=dag_id, source=source, line=line)


class ParamsError(OrchestratorError, ValueError):
    """The parameters given for a run are invalid."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


class InvalidArgument(OrchestratorError, ValueError):
    """An argument to a command or a query is invalid (an unknown state, a bad limit)."""


class NotFound(OrchestratorError, LookupError):
    """The requested object does not exist."""


class UnknownDag(NotFound):
    """No DAG with that id was found."""


class UnknownRun(NotFound):
    """No run with that id exists."""


class AmbiguousRun(NotFound):
    """A run id prefix matches more than one run."""


class UnknownAttempt(NotFound):
    """The task has no attempt of that number (or none yet)."""


class UnknownTask(NotFound):
    """No task with that id exists in the run."""


class UnknownToken(NotFound):
    """No live API token with that id or name exists."""


class UnknownPool(NotFound):
    """No pool of that name exists."""


class UnknownBackfill(NotFound):
    """No backfill with that id exists."""


class UnknownNotification(NotFound):
    """No notification (alert) with that id, or a prefix that names several."""


class Conflict(OrchestratorError):
    """The request conflicts with the current state."""


class TaskNotFinished(Conflict):
    """The task has no result yet."""


class DagPaused(Conflict):
    """The DAG is paused: it gets no scheduled or triggered runs until unpaused."""


class ConfigError(OrchestratorError, ValueError):
    """A setting is invalid (a hook that cannot be loaded, say)."""


class TransportError(OrchestratorError):
    """The broker could not be reached or refused a message."""


class StoreError(OrchestratorError):
    """The state database could not be reached or is not migrated."""


class SchemaBehind(StoreError):
    """The database schema is not at the revision this orchestrator needs."""


class WaitTimeout(OrchestratorError, TimeoutError):
    """The run did not finish within the timeout."""


# -- why an attempt failed ---------------------------------------------------------------
# The class name of each is the ``error_type`` stored with the attempt and shown by
# ``runs show`` and the API; a user's own exception is stored under its own class name.


class TaskFailure(OrchestratorError):
    """An attempt failed for a reason the orchestrator names."""


class TaskTimeout(TaskFailure):
    """The attempt ran past its task's timeout."""


class WorkerLost(TaskFailure):
    """The worker running the attempt stopped renewing its lease (killed, cut off)."""


class MapError(TaskFailure):
    """A mapped task could not be expanded over its upstream's result."""


class BranchError(TaskFailure):
    """A branching task returned something other than ids of its direct downstream tasks."""


class ShellCommandFailed(TaskFailure):
    """A shell task exited with a non-zero status."""

    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-5:]
        super().__init__(f"command exited with status {returncode}"
                         + (": " + " | ".join(tail) if tail else ""))


class InvalidResult(TaskFailure):
    """The task returned a value that is not JSON (NaN, an object, ...)."""


class Cancelled(TaskFailure):
    """The run was cancelled, or timed out, while the attempt ran."""


class UnresolvableTask(TaskFailure):
    """No task of that name is in the worker's DAG folder, even after a re-scan."""


class SensorTimeout(TaskFailure):
    """A sensor's condition was still not met when its timeout passed."""


class SecretUnavailable(TaskFailure):
    """A ``{secret: ...}`` argument could not be read in the worker (a variable not set,
    a file missing or unreadable); the message names where it looked, never a value."""


class ConnectionUnavailable(TaskFailure):
    """A named connection is not in the environment nor in the connections file, or its
    value cannot be read; the message names where it looked, never a value."""


class SqlTaskFailed(TaskFailure):
    """A sql task's statement failed on its connection (the database's own message)."""


class HttpStatusUnexpected(TaskFailure):
    """An http task's answer had a status outside its ``expect`` list."""

    def __init__(self, status: int, expected: str, body: str = "") -> None:
        self.status = status
        super().__init__(f"HTTP {status}, expected {expected}" + (f": {body}" if body else ""))


class HttpRequestFailed(TaskFailure):
    """An http task's request got no answer (refused, reset, timed out)."""
