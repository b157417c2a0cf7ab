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


class NotFound(OrchestratorError, LookupError):
    """The requested object does not exist."""


class UnknownDag(NotFound):
    """No DAG with that id was found."""


class UnknownRun(NotFound):
    """No run with that id exists."""


class UnknownTask(NotFound):
    """No task with that id exists in the run."""


class Conflict(OrchestratorError):
    """The request conflicts with the current state."""


class TaskNotFinished(Conflict):
    """The task has no result yet."""


class TransportError(OrchestratorError):
    """The broker could not be reached or refused a message."""


class StoreError(OrchestratorError):
    """The state database could not be reached or is not migrated."""


class WaitTimeout(OrchestratorError, TimeoutError):
    """The run did not finish within the timeout."""
