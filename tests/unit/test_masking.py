"""The masker: each secret, URL-quoted (either hex case) and base64 (on its own and inside
longer base64 at every alignment) becomes ***; other text is untouched."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest

from orchestrator.observability.masking import MASK, Masker, masker_for
from orchestrator.settings import Settings

SECRET = "p@ss/w:rd+ü 42-xyz"


@pytest.fixture
def masker() -> Masker:
    return Masker([SECRET])


@pytest.mark.parametrize("form", [
    SECRET,
    quote(SECRET, safe=""),
    quote(SECRET),
    quote_plus(SECRET),
    quote(SECRET, safe="").lower(),
    base64.b64encode(SECRET.encode()).decode(),
    base64.b64encode(SECRET.encode()).decode().rstrip("="),
    base64.urlsafe_b64encode(SECRET.encode()).decode(),
])
def test_every_form_of_a_secret_is_masked(masker: Masker, form: str) -> None:
    assert form != "" and form in f"before {form} after"
    masked = masker.mask(f"before {form} after")
    assert masked == f"before {MASK} after"


@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc", "admin:", "user:x"])
def test_base64_of_a_longer_value_holding_the_secret_is_masked(masker: Masker,
                                                               prefix: str) -> None:
    """An HTTP Basic header encodes "user:password": the secret sits at any alignment."""
    encoded = base64.b64encode(f"{prefix}{SECRET}!".encode()).decode()
    masked = masker.mask(f"Authorization: Basic {encoded}")
    assert MASK in masked
    # what is left around the mask carries at most the bits of a byte or two of the secret
    left = masked.replace(MASK, "")
    assert len(left) <= len("Authorization: Basic ") + len(encoded) - len(SECRET) * 4 // 3 + 4


def test_text_without_secrets_is_unchanged(masker: Masker) -> None:
    text = "nothing to see: passwords, p@ss, keys\n" * 3
    assert masker.mask(text) == text


def test_no_secrets_no_work() -> None:
    m = Masker(["", ""])
    assert not m and m.longest == 0
    assert m.mask("anything") == "anything"


def test_a_secret_inside_another_is_masked_whole() -> None:
    m = Masker(["abcdef123", "zz-abcdef123-zz"])
    assert m.mask("x zz-abcdef123-zz y abcdef123") == f"x {MASK} y {MASK}"


def test_short_base64_fragments_are_not_looked_for() -> None:
    """A 3-byte secret's fragments inside longer base64 would match ordinary words."""
    m = Masker(["k3y"])
    assert m.mask("ordinary words in a log line") == "ordinary words in a log line"
    assert m.mask("the k3y") == f"the {MASK}"


def test_masker_for_takes_every_secret_setting() -> None:
    db_password, broker_password = "db pä/ss:1", "br0ker-pw-123"
    settings = Settings.from_env({
        "ORCH_DATABASE_URL": f"postgresql://u:{quote(db_password, safe='')}@h:5432/d",
        "ORCH_BROKER_URL": f"redis://:{broker_password}@127.0.0.1:6379/0",
        "ORCH_SIGNING_KEY": "signing-key-0123456789abcdef0123456789",
        "ORCH_FLOWER_PASSWORD": "flower-pw-0123456789"})
    m = masker_for(settings)
    for secret in (db_password, quote(db_password, safe=""), broker_password,
                   "signing-key-0123456789abcdef0123456789", "flower-pw-0123456789"):
        assert secret not in m.mask(f"[{secret}]"), secret
