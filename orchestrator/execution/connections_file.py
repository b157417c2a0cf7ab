"""The connections file (``ORCH_CONNECTIONS_FILE``), checked whole when it is read.

Each connection is a URL, ``{env: NAME}`` / ``{file: PATH}`` (the URL is there), or a
mapping with ``url`` and ``headers`` (each value a literal or such a reference).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from orchestrator import errors
from orchestrator.model import task_kinds
from orchestrator.model.secret_spec import SecretArg

Entry = tuple["str | SecretArg", dict[str, "str | SecretArg"]]


def _value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) not in ({"env"}, {"file"}):
            raise ValueError("a reference is {env: NAME} or {file: PATH}, got keys "
                             f"{sorted(value, key=str)}")
        return SecretArg.model_validate(value)
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string, {env: NAME} or {file: PATH}")
    return value


Value = Annotated[Any, BeforeValidator(_value)]


class _Full(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    url: Value
    headers: dict[Annotated[str, Field(max_length=256)], Value] = Field(default_factory=dict)


def read(path: Path, max_bytes: int) -> dict[str, Entry]:
    """``{name: (url, headers)}``; ConnectionUnavailable naming the file and the entry."""
    def fail(msg: str) -> errors.ConnectionUnavailable:
        return errors.ConnectionUnavailable(f"the connections file {path}: {msg}")

    try:
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror}") from None
    if len(raw) > max_bytes:
        raise fail(f"is bigger than {max_bytes} bytes")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise fail(f"is not YAML text{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) != {"connections"} or not isinstance(
            data["connections"], dict | None):
        raise fail("is a mapping with one key, 'connections', of name: URL")
    out: dict[str, Entry] = {}
    for name, entry in (data["connections"] or {}).items():
        problem = task_kinds.conn_problem(name) if isinstance(name, str) else "not a name"
        if problem:
            raise fail(f"{name!r}: {problem}")
        try:
            if isinstance(entry, dict) and "url" in entry:
                full = _Full.model_validate(entry)
                out[name] = (full.url, dict(full.headers))
            else:
                out[name] = (_value(entry), {})
        except (ValidationError, ValueError) as exc:
            msg = (exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc))
            raise fail(f"{name}: {msg.removeprefix('Value error, ')}") from None
    return out
