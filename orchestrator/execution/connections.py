"""Named connections, read where a task runs: never stored, never sent.

A connection is a URL (and, for HTTP, headers) by name. It comes from the environment,
``ORCH_CONN_<NAME>=<url>`` (``warehouse`` is ``ORCH_CONN_WAREHOUSE``), or from the
connections file (``ORCH_CONNECTIONS_FILE``)::

    connections:
      warehouse: sqlite:///warehouse.db
      reporting: {env: REPORTING_DB_URL}          # the URL is in this variable
      api:
        url: https://api.example.com/v1
        headers:
          Authorization: {file: /run/secrets/api_auth}

The environment wins over the file, as it does for settings. Only the name is in a DAG,
its version, the state database and a message; the worker reads the URL when the task
runs, and its password and header values are masked in everything the task writes.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from orchestrator import errors
from orchestrator.execution import secret_refs
from orchestrator.model import task_kinds
from orchestrator.model.secret_spec import SecretArg

ENV_PREFIX = "ORCH_CONN_"
FILE_VARIABLE = "ORCH_CONNECTIONS_FILE"
MAX_FILE_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Connection:
    """A connection as the task sees it. Its ``repr`` and ``masked_url`` hide the
    password; ``url`` is the real thing, for the task's own client."""

    name: str
    url: str
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    source: str = ""
    """Where it was found: ``env ORCH_CONN_NAME`` or ``<file>``."""

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def secrets(self) -> list[str]:
        """What must never be shown: the URL's password and every header value."""
        found = [*self.headers.values()]
        password = _password(self.url)
        if password:
            found += [password, unquote(password)]
        return [s for s in found if s]

    def __repr__(self) -> str:
        return f"Connection({self.name!r}, {self.masked_url!r}, from {self.source})"


def mask_url(url: str) -> str:
    """``scheme://user:***@host/path``: the URL with its password hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None:
        return url
    user = quote(unquote(parts.username or ""), safe="")
    netloc = f"{user}:***@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


_file_override: Path | None = None
_cache_lock = threading.Lock()
_cache: dict[tuple[str, int, int], dict[str, Connection]] = {}


def use_file(path: Path | None) -> None:
    """The connections file of this process's settings (a worker sets it at start; the
    environment's ``ORCH_CONNECTIONS_FILE`` is used otherwise)."""
    global _file_override
    _file_override = path


def _file(environ: Mapping[str, str]) -> Path | None:
    if _file_override is not None:
        return _file_override
    value = environ.get(FILE_VARIABLE)
    return Path(value) if value else None


def get(name: str, *, environ: Mapping[str, str] | None = None,
        file: Path | None = None) -> Connection:
    """The connection ``name``; ConnectionUnavailable, naming where it looked, when there
    is none or its value cannot be read."""
    problem = task_kinds.conn_problem(name)
    if problem:
        raise errors.ConnectionUnavailable(problem)
    env = os.environ if environ is None else environ
    variable = ENV_PREFIX + name.upper()
    if variable in env:
        return Connection(name, _checked_url(name, env[variable], variable), {},
                          f"env {variable}")
    path = file if file is not None else _file(env)
    found = load_file(path).get(name) if path is not None else None
    if found is None:
        where = f" nor in {path}" if path is not None else f" (and {FILE_VARIABLE} is unset)"
        raise errors.ConnectionUnavailable(f"no connection {name!r}: {variable} is not set "
                                           f"in this process's environment{where}")
    return found


def all_connections(*, environ: Mapping[str, str] | None = None,
                    file: Path | None = None) -> list[Connection]:
    """Every connection this process can see, by name (the environment's first)."""
    env = os.environ if environ is None else environ
    path = file if file is not None else _file(env)
    found = dict(load_file(path)) if path is not None else {}
    for variable in env:
        if variable.startswith(ENV_PREFIX) and len(variable) > len(ENV_PREFIX):
            name = variable[len(ENV_PREFIX):].lower()
            if task_kinds.conn_problem(name) is None:
                found[name] = Connection(name, env[variable], {}, f"env {variable}")
    return [found[k] for k in sorted(found)]


def secret_values(*, environ: Mapping[str, str] | None = None) -> list[str]:
    """The secrets of every connection this process can read (for its masker). A file
    that cannot be read gives none: the task that needs it fails, naming why."""
    try:
        return [s for c in all_connections(environ=environ) for s in c.secrets()]
    except errors.ConnectionUnavailable:
        return []


def load_file(path: Path) -> dict[str, Connection]:
    """The connections of ``path``, read again only when the file changed."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise errors.ConnectionUnavailable(
            f"the connections file {path} cannot be read: {exc.strerror}") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    parsed = _parse(path)
    with _cache_lock:
        _cache.clear()
        _cache[key] = parsed
    return parsed


def _parse(path: Path) -> dict[str, Connection]:
    from orchestrator.execution import connections_file  # PyYAML, only when a file is used

    out: dict[str, Connection] = {}
    for name, (url, headers) in connections_file.read(path, MAX_FILE_BYTES).items():
        where = f"{path} ({name})"
        out[name] = Connection(name, _checked_url(name, _value(url, where), where),
                               {k: _value(v, where) for k, v in headers.items()}, str(path))
    return out


def _value(value: str | SecretArg, where: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return secret_refs.resolve(value)
    except errors.SecretUnavailable as exc:
        raise errors.ConnectionUnavailable(f"connection {where}: {exc}") from None


def _checked_url(name: str, url: str, where: str) -> str:
    url = url.strip()
    if "://" not in url:
        # Never the value itself: it may be a password given where a URL belongs.
        raise errors.ConnectionUnavailable(f"connection {name!r} ({where}) is not a URL "
                                           "(scheme://...)")
    return url


def describe(conn: Connection) -> dict[str, Any]:
    """What ``connections list`` shows: nothing secret."""
    return {"name": conn.name, "url": conn.masked_url, "scheme": conn.scheme,
            "headers": sorted(conn.headers), "source": conn.source}
