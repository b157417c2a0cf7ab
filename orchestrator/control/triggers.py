"""Named events and unpausing from callers (the client, the CLI, the API): the store
stores and consumes in one transaction, then the runs that started are sent from here."""

from __future__ import annotations

import dataclasses
from typing import Any

from orchestrator import errors
from orchestrator.control.outcomes import Outcomes
from orchestrator.settings import Settings
from orchestrator.store import triggers
from orchestrator.store.triggers import EmitResult


class Events:
    def __init__(self, settings: Settings, outcomes: Outcomes) -> None:
        self.settings = settings
        self.outcomes = outcomes
        self.store = outcomes.store

    def emit(self, name: str, payload: Any = None) -> EmitResult:
        """Store event ``name``; every subscriber DAG not paused gets a run (queued when
        its max_active_runs is reached). Bad input: InvalidArgument, nothing written."""
        limit = self.settings.limits.max_params_bytes
        triggers.check(name, payload, limit)  # bad input is named before a missing broker
        self.outcomes.dispatcher  # noqa: B018 -- no signing key: refuse before writing
        result = self.store.emit_event(name, payload, max_bytes=limit)
        return dataclasses.replace(result, unsent=self.send_started(result.started))

    def set_paused(self, dag_id: str, paused: bool) -> EmitResult:
        """Pause or unpause ``dag_id``. Unpausing consumes its pending events (in the
        store's transaction) and sends the runs they started. Pausing needs no broker,
        and neither does unpausing: what cannot be sent is left to the coordinator."""
        result = self.store.set_paused(dag_id, paused)
        return dataclasses.replace(result, unsent=self.send_started(result.started))

    def send_started(self, run_ids: list[str]) -> list[str]:
        """Send the first tasks of runs a store transaction started; returns those not
        sent, which are marked unsent for the coordinator's next pass to send."""
        if not run_ids:
            return []
        try:
            self.outcomes.dispatcher  # noqa: B018
        except errors.OrchestratorError:
            # No broker URL or signing key in this process: the runs are committed, so
            # this is a note to the caller, and the coordinator (which has both) sends.
            for run_id in run_ids:
                self.store.mark_unsent(run_id, [t for t, _ in self.store.queued_tasks(run_id)])
            return list(run_ids)
        unsent = []
        for run_id in run_ids:
            dag = self.outcomes.dag_of(self.store.header(run_id))
            queued = self.store.queued_tasks(run_id)
            self.outcomes.run_started(dag, run_id, queued)
            try:
                self.outcomes.send(dag, run_id, queued)
            except errors.TransportError:
                unsent.append(run_id)
        return unsent
