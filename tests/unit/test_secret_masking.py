"""The masker's second kind of secret: values under sensitive key names (in text and in
JSON-able values), how an attempt's secrets join the process's, and the process masker
other components (the alert notifier) call."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from orchestrator.observability import masking
from orchestrator.observability.masking import MASK, Masker
from tests.support import make_settings

PLAIN = Masker([])


@pytest.mark.parametrize(("text", "shown"), [
    ("password=hunter2 and more", "password=*** and more"),
    ("DB_PASSWORD: s3cr3t", "DB_PASSWORD: ***"),
    ('{"api_key": "abc-123", "n": 1}', '{"api_key": "***", "n": 1}'),
    ("{'Client-Secret': 'x y z'}", "{'Client-Secret': '***'}"),
    ("Authorization: Bearer eyJhbGciOi.xyz", "Authorization: ***"),
    ("https://h/cb?access_token=tok123&page=2", "https://h/cb?access_token=***&page=2"),
    ("privateKey=-----BEGIN", "privateKey=***"),
    ("aws_credentials = AKIA0000", "aws_credentials = ***"),
    ("spring.datasource.password=pw1", "spring.datasource.password=***"),
    ('passwd="with \\" quote" end', 'passwd="***" end'),
])
def test_values_under_sensitive_keys_are_masked_in_text(text: str, shown: str) -> None:
    assert PLAIN.mask(text) == shown


@pytest.mark.parametrize("text", [
    "nothing to see: passwords, p@ss, keys",
    "secret: true", "token: null", "password = None",
    "secret: {env: API_TOKEN}",  # a reference, not a value
    "tokens were counted", "the author=ada",
    "2026-01-01 12:00:00 WARNING app.secrets: rotated",  # a logger's name, not a key
])
def test_text_that_holds_no_value_under_a_sensitive_key_is_unchanged(text: str) -> None:
    assert PLAIN.mask(text) == text


def test_a_long_run_of_letters_is_masked_in_linear_time() -> None:
    text = "x" * 200_000 + " token=abc " + "a.b-c_" * 50_000
    masked = PLAIN.mask(text)
    assert "token=***" in masked and len(masked) == len(text)


@pytest.mark.parametrize("key", ["password", "API-KEY", "apiKey", "x_access_key",
                                 "Authorization", "refresh_token", "client_secret",
                                 "private.key", "db credentials"])
def test_sensitive_key_names_in_any_spelling(key: str) -> None:
    assert masking.sensitive_key(key)


@pytest.mark.parametrize("key", ["user", "name", "keys", "author", "pass", "id"])
def test_ordinary_key_names(key: str) -> None:
    assert not masking.sensitive_key(key)


def test_mask_value_masks_strings_under_sensitive_keys_at_any_depth() -> None:
    m = Masker(["reg1stered-value"])
    value = {"rows": [{"user": "ada", "password": "pw1", "tries": 3}],
             "auth": {"token": {"nested": ["a", "b"]}, "kind": "basic"},
             "note": "uses reg1stered-value and secret=xyz", "count": 2, "ok": True,
             "none": None, "tuple": ("token=abc",)}
    assert m.mask_value(value) == {
        "rows": [{"user": "ada", "password": MASK, "tries": 3}],
        "auth": {"token": {"nested": [MASK, MASK]}, "kind": "basic"},
        "note": f"uses {MASK} and secret={MASK}", "count": 2, "ok": True, "none": None,
        "tuple": (f"token={MASK}",)}


def test_mask_value_of_a_value_too_deep_to_walk_masks_its_json() -> None:
    deep: object = "reg1stered-value"
    for _ in range(700):  # JSON still, deeper than the walk goes
        deep = [deep]
    masked = Masker(["reg1stered-value"]).mask_value(deep)
    assert isinstance(masked, str) and "reg1stered" not in masked and MASK in masked


def test_with_secrets_adds_an_attempts_values_to_the_processes() -> None:
    process = Masker(["process-secret-1"])
    attempt = process.with_secrets(["attempt-secret-2", ""])
    text = "process-secret-1 attempt-secret-2 " + quote("attempt-secret-2/x", safe="")
    assert process.mask(text).count(MASK) == 1  # the process's masker is unchanged
    assert attempt.mask("process-secret-1 attempt-secret-2") == f"{MASK} {MASK}"
    encoded = base64.b64encode(b"user:attempt-secret-2").decode()
    assert "attempt" not in attempt.mask(encoded)
    assert process.with_secrets([]) is process and process.with_secrets([""]) is process


def test_process_masker_has_the_settings_secrets_and_what_was_registered() -> None:
    settings = make_settings("redis://:broker-pw-123456@127.0.0.1:1/0", "sqlite:///x.db",
                             signing_key="signing-key-for-this-test-0123456789")
    before = masking.process_masker(settings)
    assert before.mask("signing-key-for-this-test-0123456789 broker-pw-123456") == \
        f"{MASK} {MASK}"
    assert masking.process_masker(settings) is before  # built once while nothing changed
    masking.register("webhook-signing-secret-42")
    after = masking.process_masker(settings)
    body = {"text": "signed with webhook-signing-secret-42", "url": "https://h/x"}
    assert json.dumps(after.mask_value(body)) == json.dumps(
        {"text": f"signed with {MASK}", "url": "https://h/x"})
