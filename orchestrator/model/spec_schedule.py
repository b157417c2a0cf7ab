"""Pure: the checks a DAG's schedule, triggers, slots and outlets need beyond pydantic."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from orchestrator import errors
from orchestrator.model import schedule

if TYPE_CHECKING:
    from orchestrator.model.spec import DagSpec

POOL_PATTERN = r"[A-Za-z_][A-Za-z0-9_.-]{0,99}"
_POOL = re.compile(POOL_PATTERN)
_ASSET = re.compile(schedule.ASSET_PATTERN)


def check(spec: DagSpec, where: dict[str, Any]) -> None:
    try:
        parsed = schedule.parse(spec.schedule, spec.timezone)
    except errors.DagError as exc:
        raise errors.DagError(str(exc), **where) from None
    if parsed is not None:
        # Nobody is there to give a scheduled or triggered run its params.
        required = [n for n, p in spec.params.items() if p.required]
        if required:
            raise errors.DagError(f"a scheduled DAG needs a default for every param; "
                                  f"{required} have none", **where)
    if spec.overlap == "queue" and spec.max_active_runs is None:
        raise errors.DagError("overlap 'queue' needs max_active_runs (how many run at once)",
                              **where)
    for t in spec.tasks:
        at = {**where, "line": t.line}
        if t.pool is not None and not _POOL.fullmatch(t.pool):
            raise errors.DagError(f"task {t.id!r}: invalid pool name {t.pool!r}: must match "
                                  f"{POOL_PATTERN}", **at)
        for name in t.outlets:
            if not _ASSET.fullmatch(name):
                raise errors.DagError(f"task {t.id!r}: invalid asset name {name!r}: must "
                                      f"match {schedule.ASSET_PATTERN}", **at)
