"""Named events from callers (the client now, the CLI and API next): stored and consumed by
the store in one transaction, then the runs they started are sent from here."""

from __future__ import annotations

from typing import Any

from orchestrator import errors
from orchestrator.control.outcomes import Outcomes
from orchestrator.settings import Settings
from orchestrator.store.triggers import EmitResult


class Events:
    def __init__(self, settings: Settings, outcomes: Outcomes) -> None:
        self.settings = settings
        self.outcomes = outcomes
        self.store = outcomes.store

    def emit(self, name: str, payload: Any = None) -> EmitResult:
        """Store event ``name``; every subscriber DAG not paused gets a run (queued when
        its max_active_runs is reached). Bad input: InvalidArgument, nothing written."""
        self.outcomes.dispatcher  # noqa: B018 -- no signing key: refuse before writing
        result = self.store.emit_event(name, payload,
                                       max_bytes=self.settings.limits.max_params_bytes)
        self.send_started(result.started)
        return result

    def send_started(self, run_ids: list[str]) -> None:
        """Send the first tasks of runs a store transaction started. One that cannot be
        sent is marked unsent, and the coordinator's next pass sends it."""
        for run_id in run_ids:
            dag = self.outcomes.dag_of(self.store.header(run_id))
            queued = self.store.queued_tasks(run_id)
            self.outcomes.run_started(dag, run_id, queued)
            try:
                self.outcomes.send(dag, run_id, queued)
            except errors.TransportError:
                continue
