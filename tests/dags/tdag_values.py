"""DAGs the value and limit tests run (tests/security)."""

from __future__ import annotations

import gc
from typing import Any

from _support import record

from orchestrator import dag, task


@task
def echo(value: Any) -> Any:
    record()
    return value


@dag(id="echo_any")
def echo_any(value: Any = None) -> None:
    echo(value)


@task
def sized(n: int) -> str:
    """A string whose JSON (with its two quotes) is n bytes."""
    record()
    return "x" * (n - 2)


@dag(id="sized_result")
def sized_result(n: int = 10) -> None:
    sized(n)


@task
def with_nul() -> dict[str, str]:
    record()
    return {"text": "before\x00after"}


@dag(id="nul_result")
def nul_result() -> None:
    with_nul()


@task
def cache_bytes(value: Any) -> dict[str, int]:
    """What the params cache of the store in this worker process holds now."""
    from orchestrator.store import Store

    record()
    stores = [o for o in gc.get_objects() if isinstance(o, Store)]
    return {"total": max(s.headers.total for s in stores),
            "cap": min(s.headers.max_bytes for s in stores),
            "runs": max(len(s.headers) for s in stores)}


@dag(id="params_cache")
def params_cache(value: Any = None) -> None:
    cache_bytes(value)


@task
def listing(n: int) -> list[int]:
    return list(range(n))


@task
def item_of(x: int) -> int:
    record()
    return x


@dag(id="d" * 100)
def longest_ids(n: int = 3) -> None:
    """The longest ids there are: a mapped task's instances add "[index]" to its id."""
    item_of.override(task_id="m" * 100).map(listing.override(task_id="s" * 100)(n))
