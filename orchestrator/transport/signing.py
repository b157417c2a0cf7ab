"""HMAC-SHA256 signatures on task messages and on the revokes that cancel tasks.

Anyone who can reach the broker can put a message on a queue or broadcast to every
worker; only a holder of ``ORCH_SIGNING_KEY`` can sign one. A task message is signed over
what the task runs by: its Celery name, DAG, task, run, attempt and time limits (a copy
with shorter limits would kill a healthy attempt). The Celery task id is left out: a
chain's later links get theirs when the chain is sent, after signing, and a replayed
message keeps its id anyway. Replays are fenced by the database: an attempt number never
repeats, and the claim is a compare-and-set on it.

The signature travels as one more keyword argument (``sig``), so it survives in a
chain's embedded links, which workers send on as they are.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from orchestrator import errors
from orchestrator.settings import Settings

KWARG = "sig"
"""The keyword argument (of a task message) and argument (of a revoke) it travels in."""

_SEP = "\x1f"
"""Between fields. The fields are checked before a signature is (ids, hex, integers),
and none of them may contain it, so two different messages never sign the same text."""

NO_KEY = ("ORCH_SIGNING_KEY is not set: every task message is signed with it and workers "
          "refuse unsigned ones. Give every worker, coordinator and client the same key "
          "(`orchestrator up` and `quickstart` make one and keep it in .orchestrator/)")


def _limit(value: object) -> str:
    return "" if value is None else repr(value)


class Signer:
    """Signs and checks messages with one key (a worker, a client, a coordinator)."""

    def __init__(self, key: str) -> None:
        if not key:
            raise errors.ConfigError(NO_KEY)
        # Keyed once: copying a keyed HMAC is cheaper than keying one per message.
        self._keyed = hmac.new(key.encode(), digestmod=hashlib.sha256)

    @classmethod
    def of(cls, settings: Settings) -> Signer:
        """The signer of these settings; ConfigError naming ORCH_SIGNING_KEY without one."""
        return cls(settings.security.signing_key or "")

    def _mac(self, text: str) -> str:
        mac = self._keyed.copy()
        mac.update(text.encode())
        return mac.hexdigest()

    def _matches(self, sig: object, text: str) -> bool:
        # compare_digest on str takes ASCII only; anything else is no signature of ours.
        return (isinstance(sig, str) and sig.isascii()
                and hmac.compare_digest(sig, self._mac(text)))

    def task(self, name: str, dag: str, task: str, run: str, attempt: int,
             time_limit: float | None = None, soft_time_limit: float | None = None) -> str:
        """The signature of one task message."""
        return self._mac(_task_text(name, dag, task, run, attempt, time_limit,
                                    soft_time_limit))

    def task_ok(self, sig: object, name: str, dag: str, task: str, run: str, attempt: int,
                time_limit: object = None, soft_time_limit: object = None) -> bool:
        """Whether ``sig`` signs exactly these fields; check their types first."""
        return self._matches(sig, _task_text(name, dag, task, run, attempt, time_limit,
                                             soft_time_limit))

    def revoke(self, task_ids: Sequence[str], terminate: bool, signal: str | None) -> str:
        """The signature of a revoke broadcast (cancel terminates running attempts)."""
        return self._mac(_revoke_text(task_ids, terminate, signal))

    def revoke_ok(self, sig: object, task_ids: Sequence[str], terminate: object,
                  signal: object) -> bool:
        return self._matches(sig, _revoke_text(task_ids, terminate, signal))


def _task_text(name: str, dag: str, task: str, run: str, attempt: int, time_limit: object,
               soft_time_limit: object) -> str:
    return _SEP.join(("task", name, dag, task, run, str(attempt), _limit(time_limit),
                      _limit(soft_time_limit)))


def _revoke_text(task_ids: Sequence[str], terminate: object, signal: object) -> str:
    # Celery task ids are uuids; a comma cannot shift one id into the next.
    return _SEP.join(("revoke", ",".join(task_ids), repr(terminate), repr(signal)))
