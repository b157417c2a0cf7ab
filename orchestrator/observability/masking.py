"""Masks secrets in what leaves a process: task logs, results, errors, tracebacks, what
the API and the CLI show, and alert bodies.

Two kinds of secret are masked, each replaced by ``***``:

- registered values: the settings' secrets (database and broker passwords, the signing
  key, Flower's password) and whatever a task attempt resolved (its secret params and
  ``{secret: ...}`` arguments). A value is looked for as itself and in the forms it takes
  when code passes it on: URL quoted (a password put back into a URL; ``%2f`` and ``%2F``
  alike) and base64 (an HTTP Basic header, a token in a config file). Base64 is matched at
  each of the three byte alignments a secret can have inside a longer encoded value, not
  only on its own.
- values under sensitive key names (password, passwd, passphrase, secret, token, api_key,
  apikey, access_key, private_key, authorization, credential; any case, any ``_``/``-``):
  in text as ``key=value``, ``key: value`` and ``"key": "value"``, and in JSON-able values
  (:meth:`Masker.mask_value`) as the strings under such a key, however deep.

Who masks with what: a worker masks each attempt's log chunks, result, error and
traceback with ``process_masker(settings).with_secrets(<the attempt's secrets>)`` before
any of it is written; the API and the CLI mask what they show with their own
:func:`masker_for`. Other code that sends text out (the alert notifier, say) calls
:func:`process_masker` — the settings' secrets plus every value :func:`register` was
given in this process — and ``mask`` (text) or ``mask_value`` (a JSON-able body) on it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from orchestrator.execution import connections
from orchestrator.settings import Settings, secret_values

MASK = "***"
MIN_FRAGMENT = 8
"""Shortest base64 fragment looked for inside longer base64: a shorter one would match
ordinary words (a 6-byte secret gives 8 characters)."""

SENSITIVE_WORDS = ("password", "passwd", "passphrase", "secret", "token", "apikey",
                   "accesskey", "privatekey", "authorization", "credential")
"""A key holds a secret when its name, lower-cased without ``_``, ``-``, ``.`` and spaces,
contains one of these."""

_WORD = r"(?:pass(?:word|wd|phrase)|secret|token|api[_-]?key|access[_-]?key|" \
        r"private[_-]?key|authorization|credential)"
_KEY_VALUE = re.compile(
    r"(?<![\w.-])(?P<key>[\"']?[\w.-]{0,64}?" + _WORD + r"[\w.-]{0,64}[\"']?)"
    r"(?P<sep>\s*[:=]\s*)"
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'"
    r"|(?:(?:bearer|basic|token|digest)\s+)?[^\s,;&\"'<>{}\[\]()]+)",
    re.IGNORECASE)
"""``key=value`` and ``"key": "value"`` in text, the key naming a secret. A value that
opens a mapping or a list (``secret: {env: X}``) is a reference, not a secret. A key
starts where a name can and is at most 64+64 characters around its word, so a long run
of letters costs one pass, not one per position."""
_NOT_SECRETS = frozenset({"true", "false", "null", "none", MASK, f'"{MASK}"', f"'{MASK}'"})
_SEPARATORS = str.maketrans("", "", "_-. ")


def sensitive_key(name: str) -> bool:
    """Whether a value stored under ``name`` is taken for a secret."""
    folded = name.lower().translate(_SEPARATORS)
    return any(word in folded for word in SENSITIVE_WORDS)


def _quoted(secret: str) -> set[str]:
    forms = {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    # Percent-escapes are case-insensitive: Python writes %2F, other code writes %2f.
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in forms}
    return forms


def _base64(secret: str) -> set[str]:
    raw = secret.encode()
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms |= {whole, whole.rstrip("=")}
        for k in range(3):
            # The characters that depend on the secret's bytes only, when k bytes of
            # something else come before it: ceil(8k/6) to floor(8(k+n)/6).
            enc = encode(b"\0" * k + raw).decode()
            fragment = enc[-(-8 * k // 6):8 * (k + len(raw)) // 6]
            if len(fragment) >= MIN_FRAGMENT:
                forms.add(fragment)
    return forms


def _masked_pair(m: re.Match[str]) -> str:
    value = m.group("value")
    # "app.secrets: message" is a log line's logger name, not a key ("a.password=x" is).
    if value.lower() in _NOT_SECRETS or ("." in m.group("key") and ":" in m.group("sep")):
        return m.group()
    quote_char = value[0] if value[0] in "\"'" else ""
    return f"{m.group('key')}{m.group('sep')}{quote_char}{MASK}{quote_char}"


class Masker:
    """Replaces each secret, its URL-quoted and base64 forms, and values under sensitive
    key names by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = frozenset(s for s in secrets if s)
        forms: set[str] = set()
        for secret in self.secrets:
            forms |= {secret} | _quoted(secret) | _base64(secret)
        # Longest first: a form that contains another is replaced whole.
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        self.longest = len(ordered[0]) if ordered else 0
        """The longest form: text cut into pieces keeps this much minus one together."""
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        """Whether any value is registered (key names are masked either way)."""
        return self._pattern is not None

    def with_secrets(self, secrets: Iterable[str]) -> Masker:
        """This masker's secrets and ``secrets`` (an attempt's, on top of the process's)."""
        extra = {s for s in secrets if s} - self.secrets
        return Masker(self.secrets | extra) if extra else self

    def mask(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return _KEY_VALUE.sub(_masked_pair, text)

    def mask_value(self, value: Any) -> Any:
        """A JSON-able value with every string masked, and every string under a sensitive
        key replaced whole; numbers, booleans and None are left as they are. Too deep to
        walk: the value's JSON text, masked (too deep for that too: ``***``)."""
        try:
            return self._walk(value, False)
        except RecursionError:
            pass
        try:
            return self.mask(json.dumps(value, default=str))
        except (RecursionError, ValueError):
            return MASK

    def _walk(self, value: Any, sensitive: bool) -> Any:
        if isinstance(value, str):
            return MASK if sensitive and value else self.mask(value)
        if isinstance(value, dict):
            return {(self.mask(k) if isinstance(k, str) else k):
                    self._walk(v, sensitive or (isinstance(k, str) and sensitive_key(k)))
                    for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._walk(v, sensitive) for v in value)
        return value


def own_secrets(settings: Settings) -> list[str]:
    """The secrets of these settings (database and broker passwords, the signing key,
    Flower's password: ``settings.secret_values``) and of every connection this process
    can read (``ORCH_CONN_*`` and the connections file)."""
    return [*secret_values(settings), *connections.secret_values()]


def masker_for(settings: Settings) -> Masker:
    """The masker for :func:`own_secrets`."""
    return Masker(own_secrets(settings))


_registered: set[str] = set()
_lock = threading.Lock()
_cached: tuple[tuple[str, ...], frozenset[str], Masker] | None = None


def register(*values: str) -> None:
    """Mask these values in everything :func:`process_masker` masks from now on, in this
    process (a secret the process read for itself, e.g. a webhook's signing secret)."""
    with _lock:
        _registered.update(v for v in values if v)


def process_masker(settings: Settings | None = None) -> Masker:
    """This process's masker: the secrets of ``settings`` (the process's own when None)
    and every value given to :func:`register`. Built again only when either changed."""
    global _cached
    own = tuple(own_secrets(settings if settings is not None else Settings()))
    with _lock:
        registered = frozenset(_registered)
        if _cached is not None and _cached[0] == own and _cached[1] == registered:
            return _cached[2]
        found = Masker((*own, *registered))
        _cached = (own, registered, found)
        return found
