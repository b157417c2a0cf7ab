"""The state store: the only package that talks SQL.

``Store`` (facade.py) opens one transaction per call; the modules beside it do the work
by concern: runs (submit, rerun, cancel), attempts (the worker's hot path), advance
(how an outcome is handed on), mapping, reconcile, reads. Every statement lives in
statements.py; tables.py is the schema, migrations/ its history, schema.py its version.
"""

from orchestrator.store.facade import Store
from orchestrator.store.results import (
    AttemptEnd,
    Busy,
    Change,
    Claim,
    GiveUp,
    NewRun,
    NotDue,
    Overdue,
    Rerun,
    RunHeader,
    RunStart,
    Stalled,
)

__all__ = ["AttemptEnd", "Busy", "Change", "Claim", "GiveUp", "NewRun", "NotDue", "Overdue",
           "Rerun", "RunHeader", "RunStart", "Stalled",
           "Store"]
