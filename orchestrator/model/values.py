"""The one rule for a task's result, the same on SQLite and PostgreSQL: JSON (no NaN or
infinity), no NUL character (PostgreSQL's JSON cannot hold one, and SQLite would keep
it: a NUL fails the task on both instead), valid Unicode, and at most
ORCH_MAX_RESULT_BYTES as compact UTF-8 JSON.

Checked with a single serialization on every task, so it costs what ``json.dumps``
costs plus one scan of its output for an escaped NUL (and an encode, if it is not ASCII).
"""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator import errors

_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
"""An escaped NUL, ``\\u0000`` after an even number of backslashes (a string holding a
backslash then ``u0000`` is escaped as ``\\\\u0000`` and is not one)."""


def check_result(result: Any, max_bytes: int) -> None:
    """Raise :class:`InvalidResult` naming why ``result`` cannot be stored."""
    try:
        text = json.dumps(result, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise errors.InvalidResult(f"the task's result is not JSON: {exc}") from None
    # json escapes every control character, NUL included, even with ensure_ascii off
    if "\\u0000" in text and _NUL.search(text):
        raise errors.InvalidResult("the task's result contains a NUL character (\\u0000), "
                                   "which the state database cannot store")
    if text.isascii():  # O(1): CPython records it in the string
        size = len(text)
    else:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise errors.InvalidResult("the task's result contains a lone surrogate, which "
                                       "is not valid Unicode") from None
    if size > max_bytes:
        raise errors.InvalidResult(f"the task's result is {size} bytes as JSON, more than "
                                   f"ORCH_MAX_RESULT_BYTES ({max_bytes})")
