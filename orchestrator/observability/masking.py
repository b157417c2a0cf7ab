"""Masks the settings' secrets in text that leaves a process (task logs first of all).

A secret is looked for as itself and in the forms it takes when code passes it on: URL
quoted (a password put back into a URL; ``%2f`` and ``%2F`` alike) and base64 (an HTTP
Basic header, a token in a config file). Base64 is matched at each of the three byte
alignments a secret can have inside a longer encoded value, not only on its own.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from orchestrator.settings import Settings, secret_values

MASK = "***"
MIN_FRAGMENT = 8
"""Shortest base64 fragment looked for inside longer base64: a shorter one would match
ordinary words (a 6-byte secret gives 8 characters)."""


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


class Masker:
    """Replaces each secret, and its URL-quoted and base64 forms, by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= {secret} | _quoted(secret) | _base64(secret)
        # Longest first: a form that contains another is replaced whole.
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        self.longest = len(ordered[0]) if ordered else 0
        """The longest form: text cut into pieces keeps this much minus one together."""
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def masker_for(settings: Settings) -> Masker:
    """The masker for these settings' secrets (database and broker passwords, the
    signing key, Flower's password: ``settings.secret_values``)."""
    return Masker(secret_values(settings))
