"""State store: the schema, its migrations and the repository that owns all SQL."""

from orchestrator.store.repository import (
    Advance,
    Busy,
    Claim,
    GiveUp,
    NewRun,
    Overdue,
    Rerun,
    Stalled,
    Store,
)

__all__ = ["Advance", "Busy", "Claim", "GiveUp", "NewRun", "Overdue", "Rerun", "Stalled", "Store"]
