"""Reads a task's ``{secret: ...}`` arguments where it runs: the worker's environment, or
a file on its machine. Values never leave this process but as the task's arguments (and
the caller registers them with its masker); errors name where they looked, never what."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator import errors
from orchestrator.model import spec
from orchestrator.model.secret_spec import SecretArg

MAX_FILE_BYTES = 1024 * 1024
"""A secret file bigger than this is refused (it is not a secret but a mistake)."""


def resolve(ref: SecretArg) -> str:
    """The value. A file's one final line end is dropped, as ``$(cat file)`` would."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise errors.SecretUnavailable(
                f"secret env variable {ref.env!r} is not set in the worker's environment")
        return value
    assert ref.file is not None
    try:
        with open(Path(ref.file), "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise errors.SecretUnavailable(
            f"secret file {ref.file!r} cannot be read: {exc.strerror or type(exc).__name__}"
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise errors.SecretUnavailable(
            f"secret file {ref.file!r} is bigger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.SecretUnavailable(f"secret file {ref.file!r} is not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")


def refs_of(task: spec.TaskSpec) -> list[SecretArg]:
    headers = task.http.headers.values() if task.http is not None else ()
    values = (*task.args, *task.kwargs.values(), *task.env.values(), *headers)
    return list(dict.fromkeys(v for v in values if isinstance(v, SecretArg)))


def resolve_task(task: spec.TaskSpec) -> dict[SecretArg, str]:
    """Every secret the task references, read now (SecretUnavailable on the first that
    cannot be)."""
    return {ref: resolve(ref) for ref in refs_of(task)}
