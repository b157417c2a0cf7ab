"""The schema's version: ``orchestrator db upgrade`` and ``db current``, and the check
every process makes before it touches the database.

Nothing migrates on connect: clients, workers and coordinators only check, and a schema
that is behind stops them with one line naming ``orchestrator db upgrade``. The
commands that own a whole local stack (``up``, ``quickstart``, the test stacks) run the
upgrade themselves.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from orchestrator import errors

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def head() -> str:
    revision = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: it has no schema yet).

    Read straight from Alembic's table: every process checks this at start, and going
    through Alembic's migration context would log two lines each time."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            revision = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except DBAPIError as exc:
        raise errors.StoreError(f"cannot reach database {engine.url!r}: {exc.orig}") from None
    return None if revision is None else str(revision)


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    before = current(engine)
    target = head()
    if before != target:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
    return before, target


def check(engine: Engine) -> None:
    """Raise :class:`SchemaBehind` unless the schema is at the newest revision."""
    at, want = current(engine), head()
    if at == want:
        return
    safe = engine.url.render_as_string(hide_password=True)
    if at is None:
        raise errors.SchemaBehind(f"database {safe} has no orchestrator schema yet: run "
                                  "`orchestrator db upgrade`")
    raise errors.SchemaBehind(f"database {safe} is at schema {at}, this orchestrator needs "
                              f"{want}: run `orchestrator db upgrade`")
