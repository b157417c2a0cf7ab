"""Stored DAG versions compiled once per process, read in the caller's transaction: a
version never changes once stored, so the cache needs no invalidation."""

from __future__ import annotations

from sqlalchemy import Connection

from orchestrator.model.compiled import CompiledDag
from orchestrator.store import statements

_compiled: dict[str, CompiledDag] = {}


def compiled(conn: Connection, version: str) -> CompiledDag | None:
    found = _compiled.get(version)
    if found is None:
        row = conn.execute(statements.VERSION_OF, {"b_version": version}).first()
        if row is None:
            return None
        found = _compiled.setdefault(version, CompiledDag.from_stored(version, row.spec,
                                                                      row.source))
    return found
