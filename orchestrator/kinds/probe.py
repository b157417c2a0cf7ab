"""``orchestrator connections test``: can this machine reach a connection, as a task of
its workers would (a SQL database answers ``SELECT 1``; an HTTP service answers a GET)."""

from __future__ import annotations

import dataclasses
import time

from orchestrator.execution.connections import Connection

HTTP_SCHEMES = ("http", "https")


@dataclasses.dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str
    seconds: float


def probe(conn: Connection, timeout: float) -> Probe:
    started = time.monotonic()
    try:
        detail = _http(conn, timeout) if conn.scheme in HTTP_SCHEMES else _sql(conn, timeout)
        ok = True
    except Exception as exc:  # whatever went wrong is the answer; it is masked by the caller
        ok, detail = False, f"{type(exc).__name__}: {_first_line(exc)}"
    return Probe(ok, detail, time.monotonic() - started)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else "(no message)"


def _http(conn: Connection, timeout: float) -> str:
    import httpx

    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        answer = client.get(conn.url, headers=dict(conn.headers))
    # Any answer proves the service is there; a 5xx says it is not well.
    if answer.status_code >= 500:
        raise ConnectionError(f"HTTP {answer.status_code} {answer.reason_phrase}")
    return f"HTTP {answer.status_code} {answer.reason_phrase}"


def _sql(conn: Connection, timeout: float) -> str:
    from sqlalchemy import text

    from orchestrator.kinds import sql_engines

    engine = sql_engines.engine_for(conn.url, connect_timeout=timeout, name=conn.name)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1")).scalar_one()
            return f"{engine.dialect.name} answered SELECT 1"
    finally:
        sql_engines.dispose_all()  # a command ends here: its pooled connection with it
