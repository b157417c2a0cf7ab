"""Secret param values at rest: sealed before the run is written, opened by the worker.

A sealed value is the text ``orch-secret:v1:<digest>:<Fernet token>``. The token is the
value's JSON, encrypted and authenticated (AES-CBC with HMAC-SHA256, ``cryptography``'s
Fernet); the digest is an HMAC of the same JSON, so two submissions of one value compare
equal (an idempotency key reused with the same params) though their tokens differ. Both
keys are derived by HKDF from ORCH_SIGNING_KEY, which workers and submitters share
already; without it a secret param value is refused before anything is written.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from orchestrator import errors
from orchestrator.model.params import canonical

if TYPE_CHECKING:
    from orchestrator.model import spec as spec_

PREFIX = "orch-secret:v1:"
SHOWN = "***"
"""What the API and the CLI show for a secret param (the masker's mask)."""
_DIGEST_CHARS = 32


@functools.lru_cache(maxsize=8)
def _keys(signing_key: str) -> tuple[Fernet, bytes]:
    derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=b"orchestrator",
                   info=b"secret params v1").derive(signing_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived[:32])), derived[32:]


def _digest(mac_key: bytes, raw: bytes) -> str:
    return hmac.new(mac_key, raw, hashlib.sha256).hexdigest()[:_DIGEST_CHARS]


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(value: Any, signing_key: str) -> str:
    fernet, mac_key = _keys(signing_key)
    raw = canonical(value)
    return f"{PREFIX}{_digest(mac_key, raw)}:{fernet.encrypt(raw).decode()}"


def unseal(sealed: str, signing_key: str) -> Any:
    """The value; ConfigError (naming no value) when it was sealed under another key."""
    fernet, _ = _keys(signing_key)
    token = sealed[len(PREFIX):].partition(":")[2]
    try:
        return json.loads(fernet.decrypt(token.encode()))
    except (InvalidToken, ValueError):
        raise errors.ConfigError("a secret param of this run cannot be decrypted: it was "
                                 "sealed under another ORCH_SIGNING_KEY") from None


def seal_params(dag: spec_.DagSpec, values: Mapping[str, Any],
                signing_key: str | None) -> dict[str, Any]:
    """``values`` with each secret param's value sealed (None, "no value", stays None)."""
    secret = [n for n, p in dag.params.items() if p.secret and values.get(n) is not None]
    if not secret:
        return dict(values)
    if not signing_key:
        raise errors.ConfigError(
            f"DAG {dag.id!r} has secret param(s) {secret}: their values are stored "
            "encrypted with a key derived from ORCH_SIGNING_KEY, which is not set. Set it "
            "(as workers have it); nothing was submitted")
    return {k: seal(v, signing_key) if k in secret else v for k, v in values.items()}


def unseal_params(dag: spec_.DagSpec, params: Mapping[str, Any],
                  signing_key: str | None) -> tuple[dict[str, Any], list[str]]:
    """The run's params opened, and the secret strings they held (to mask)."""
    out = dict(params)
    found: list[str] = []
    for name, p in dag.params.items():
        value = out.get(name)
        if not (p.secret and isinstance(value, str) and is_sealed(value)):
            continue
        if not signing_key:
            raise errors.ConfigError("this run has secret params and ORCH_SIGNING_KEY is "
                                     "not set in this worker")
        out[name] = plain = unseal(value, signing_key)
        found += _strings(plain)
    return out, found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [] if value is None or isinstance(value, bool) else [json.dumps(value)]


def shown(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params as the API and the CLI show them: each sealed value as ``***``."""
    return {k: SHOWN if is_sealed(v) else v for k, v in params.items()}


def comparable(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params with each sealed value cut to its digest: equal for equal values."""
    return {k: v[:len(PREFIX) + _DIGEST_CHARS] if is_sealed(v) else v
            for k, v in params.items()}
