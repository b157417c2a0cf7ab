"""Backfills from callers (CLI, API, client): checked, accepted in one transaction that
starts the first runs, then those runs sent; cancel stops it and cancels its runs."""

from __future__ import annotations

import dataclasses
import datetime as dt

from orchestrator import errors
from orchestrator.control.outcomes import Outcomes
from orchestrator.control.triggers import Events
from orchestrator.model import backfill
from orchestrator.model.compiled import CompiledDag
from orchestrator.settings import Settings
from orchestrator.store import Change

MAX_ACTIVE_CAP = 1000


@dataclasses.dataclass(frozen=True)
class Accepted:
    """A backfill's window, and its id once accepted (None for a dry run)."""

    window: backfill.Window
    backfill_id: str | None = None


class Backfills:
    def __init__(self, settings: Settings, outcomes: Outcomes) -> None:
        self.settings = settings
        self.outcomes = outcomes
        self.store = outcomes.store

    def start(self, dag: CompiledDag, start: dt.datetime, end: dt.datetime, *,
              reprocess: str = "none", max_active: int = 1,
              dry_run: bool = False) -> Accepted:
        """Backfill ``dag``'s logical times in [start, end): ``max_active`` runs at a
        time, created as earlier ones end, in logical-time order. Bad input is
        InvalidArgument, and nothing is written."""
        if reprocess not in backfill.REPROCESS:
            raise errors.InvalidArgument(f"reprocess is one of {', '.join(backfill.REPROCESS)}"
                                         f", not {reprocess!r}")
        if isinstance(max_active, bool) or not 1 <= max_active <= MAX_ACTIVE_CAP:
            raise errors.InvalidArgument(f"max_active is 1 to {MAX_ACTIVE_CAP}, not "
                                         f"{max_active!r}")
        s = backfill.timed(dag.spec.schedule, dag.spec.timezone, dag.id)
        start, end = backfill.utc(start), backfill.utc(end)
        win = backfill.window(s, start, end, max_runs=self.settings.coordinator.max_backfill_runs)
        if dry_run:
            return Accepted(win)
        if self.store.is_paused(dag.id):
            raise errors.DagPaused(f"DAG {dag.id!r} is paused: unpause it to backfill it "
                                   f"(orchestrator dags unpause {dag.id})")
        self.outcomes.dispatcher  # noqa: B018 -- no signing key: refuse before writing
        bf_id, change = self.store.create_backfill(dag, win, start=start, end=end,
                                                   reprocess=reprocess, max_active=max_active)
        self.send(change)
        return Accepted(win, bf_id)

    def send(self, change: Change) -> None:
        """Send the runs a backfill transaction started (one that cannot be sent is marked
        unsent, and the coordinator sends it)."""
        Events(self.settings, self.outcomes).send_started(change.started_runs)
        if change.elsewhere:
            self.outcomes.send_elsewhere(change)

    def cancel(self, bf_id: str) -> list[str]:
        """Create no more runs and cancel the ones going; returns those cancelled."""
        self.outcomes.dispatcher  # noqa: B018 -- no signing key: refuse before writing
        going = self.store.cancel_backfill(bf_id)
        done = []
        for run_id in going:
            dag = self.outcomes.dag_of(self.store.header(run_id))
            try:
                self.outcomes.apply(dag, self.store.cancel(run_id))
            except errors.Conflict:
                continue  # it ended meanwhile
            done.append(run_id)
        return done
