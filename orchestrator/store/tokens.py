"""API tokens: made once, kept as a sha256 hash, looked up by that hash, revoked on purpose.

The token itself is shown once, when it is made; the database never holds it, so a copy
of the database gives no way in. A lookup by hash is a lookup of a value that reveals
nothing about the token (the comparison that matters, the hash against the stored one,
is made by the index, and again with ``hmac.compare_digest``). ``last_used_at`` moves
at most once a minute per token, so a busy client costs no write per request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid

from sqlalchemy import Connection, bindparam, or_, select, update

from orchestrator import errors
from orchestrator.model import records
from orchestrator.store.tables import api_tokens

PREFIX = "orch_"
"""Every token starts so: secret scanners and people recognise one."""
TOUCH_EVERY = dt.timedelta(minutes=1)
"""The least time between two writes of a token's ``last_used_at``."""
MAX_NAME_LENGTH = 100

_LISTED = [c for c in api_tokens.c if c.name != "hash"]
_BY_HASH = select(api_tokens).where(api_tokens.c.hash == bindparam("b_hash"),
                                    api_tokens.c.revoked_at.is_(None))
_LIST = select(*_LISTED).order_by(api_tokens.c.created_at, api_tokens.c.id)
_LIVE_NAMED = select(api_tokens.c.id).where(api_tokens.c.name == bindparam("b_name"),
                                            api_tokens.c.revoked_at.is_(None))
_now_param = bindparam("b_now", type_=api_tokens.c.created_at.type)
_TOUCH = update(api_tokens).where(
    api_tokens.c.id == bindparam("b_id"),
    or_(api_tokens.c.last_used_at.is_(None),
        api_tokens.c.last_used_at < bindparam("b_before", type_=api_tokens.c.created_at.type)),
).values(last_used_at=_now_param)


def hash_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _check_name(name: str) -> None:
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise errors.InvalidArgument(f"a token name is 1 to {MAX_NAME_LENGTH} printable "
                                     "characters")


def create(conn: Connection, name: str | None, role: str, now: dt.datetime) -> tuple[str, str]:
    """A new token: (its id, the token itself, to be shown once)."""
    try:
        role_ = records.Role(role)
    except ValueError:
        raise errors.InvalidArgument(f"unknown role {role!r}; one of: "
                                     f"{', '.join(r.value for r in records.Role)}") from None
    token_id = uuid.uuid4().hex
    name = name if name is not None else f"{role_.value}-{token_id[:8]}"
    _check_name(name)
    if conn.execute(_LIVE_NAMED, {"b_name": name}).first() is not None:
        raise errors.Conflict(f"a token named {name!r} exists already (revoke it first, or "
                              "choose another name)")
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(api_tokens.insert().values(id=token_id, name=name, role=role_.value,
                                            hash=hash_of(token), created_at=now))
    return token_id, token


def list_all(conn: Connection) -> list[records.ApiToken]:
    return [records.ApiToken.model_validate(dict(r)) for r in conn.execute(_LIST).mappings()]


def revoke(conn: Connection, id_or_name: str, now: dt.datetime) -> str:
    """Revoke the live token with this id, or else with this name; returns its id."""
    live = api_tokens.c.revoked_at.is_(None)
    found = conn.execute(select(api_tokens.c.id).where(api_tokens.c.id == id_or_name,
                                                       live)).scalars().all()
    if not found:
        found = conn.execute(_LIVE_NAMED, {"b_name": id_or_name}).scalars().all()
    if not found:
        raise errors.UnknownToken(f"no live token with id or name {id_or_name!r}")
    # names of live tokens are unique (create refuses a second), so this is one row
    conn.execute(update(api_tokens).where(api_tokens.c.id == found[0], live)
                 .values(revoked_at=now))
    return str(found[0])


def find(conn: Connection, token: str) -> records.ApiToken | None:
    """The live token this is, by its hash; None for an unknown or revoked one."""
    if not token.startswith(PREFIX):
        return None  # not one of ours: no query
    digest = hash_of(token)
    row = conn.execute(_BY_HASH, {"b_hash": digest}).mappings().first()
    if row is None or not hmac.compare_digest(row["hash"], digest):
        return None
    return records.ApiToken.model_validate({k: v for k, v in row.items() if k != "hash"})


def needs_touch(token: records.ApiToken, now: dt.datetime) -> bool:
    return token.last_used_at is None or token.last_used_at < now - TOUCH_EVERY


def touch(conn: Connection, token_id: str, now: dt.datetime) -> None:
    """Record a use, unless one was recorded within the last minute (compare-and-set: two
    servers seeing the same stale time write once between them)."""
    conn.execute(_TOUCH, {"b_id": token_id, "b_now": now, "b_before": now - TOUCH_EVERY})
