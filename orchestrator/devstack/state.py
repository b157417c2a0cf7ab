"""The local stack's state folder, ``.orchestrator/`` in the project folder.

``orchestrator up`` keeps there the broker's port and password, Flower's password and the key that
signs task messages,
so a restart comes back on the same endpoint with the same credentials, and the
variables any other command started in this folder needs to find the stack
(:func:`orchestrator.settings.read_stack_file` reads them). The folder is readable
only by its owner and ignores itself in git.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from pathlib import Path
from typing import Any

from orchestrator import settings as settings_


@dataclasses.dataclass
class StackState:
    broker_port: int | None = None
    broker_password: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(18))
    flower_password: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(12))
    signing_key: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(32))
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    """What other commands in this folder read: ORCH_BROKER_URL, ORCH_DATABASE_URL, ..."""


def folder(project: Path | None = None) -> Path:
    return (project or Path.cwd()) / settings_.STATE_DIR


def load(project: Path | None = None) -> StackState:
    """The state ``up`` left here before, or a new one (new credentials, no port yet)."""
    try:
        data: Any = json.loads(settings_.stack_file(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return StackState()
    if not isinstance(data, dict):
        return StackState()
    fresh = StackState()
    port, env = data.get("broker_port"), data.get("env")
    return StackState(
        broker_port=port if isinstance(port, int) and 0 < port < 65536 else None,
        broker_password=_text(data.get("broker_password")) or fresh.broker_password,
        flower_password=_text(data.get("flower_password")) or fresh.flower_password,
        signing_key=_text(data.get("signing_key")) or fresh.signing_key,
        env={k: v for k, v in env.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(env, dict) else {})


def save(state: StackState, project: Path | None = None) -> Path:
    """Write the state file (owner-only: it holds passwords) and return its path."""
    where = folder(project)
    where.mkdir(mode=0o700, exist_ok=True)
    where.chmod(0o700)
    ignore = where / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# the local stack's state: credentials, never committed\n*\n")
    path = settings_.stack_file(project)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(dataclasses.asdict(state), f, indent=2)
    os.replace(tmp, path)
    return path


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
