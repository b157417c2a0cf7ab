"""One try of each channel against real receivers on 127.0.0.1: what is sent, which
answers are tried again, and that no secret or secret URL ends up in what is recorded."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from orchestrator.coordinator.channels import Channels, Undelivered
from orchestrator.observability.masking import Masker
from orchestrator.settings import AlertSettings
from orchestrator.store.results import Outgoing
from tests.receivers import Receiver, _Mailbox
from tests.support import free_port

pytestmark = pytest.mark.integration

SECRET_IN_ERROR = "hunter2-the-db-password"


def _out(channel: str, target: dict[str, Any], **payload: Any) -> Outgoing:
    body = {"event": "run_failed", "dag_id": "d", "run_id": "r" * 32, "task_id": "load",
            "attempt": 2, "error": "ValueError: no", "at": "2026-12-03T00:00:00+00:00",
            **payload}
    return Outgoing("n" + "0" * 31, "run_failed", "d", "r" * 32, "load", 2, channel, target,
                    body, 1, "token")


def _channels(**settings: Any) -> Channels:
    return Channels(AlertSettings(**{"ORCH_ALERT_TIMEOUT": 2.0, **settings}),
                    Masker([SECRET_IN_ERROR]), "http://view.test/")


def test_a_webhook_is_signed_with_the_secret_it_reads_at_delivery(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANNEL_TEST_SECRET", "s3cr3t")
    with Receiver() as hook:
        out = _out("webhook", {"url": hook.url, "secret": {"env": "CHANNEL_TEST_SECRET"}},
                   error=f"ValueError: password={SECRET_IN_ERROR}")
        assert _channels().deliver(out) == 200
        (got,) = hook.got
    assert got.headers["X-Orchestrator-Event-Id"] == out.id
    mac = hmac.new(b"s3cr3t", got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Orchestrator-Signature"] == f"sha256={mac}"
    assert got.json["url"] == f"http://view.test/runs/{'r' * 32}"
    assert SECRET_IN_ERROR not in got.body.decode() and b"s3cr3t" not in got.body


@pytest.mark.parametrize(("status", "again"), [(500, True), (503, True), (429, True),
                                               (408, True), (404, False), (400, False)])
def test_which_answers_are_tried_again(status: int, again: bool) -> None:
    with Receiver([status]) as hook, pytest.raises(Undelivered) as caught:
        _channels().deliver(_out("webhook", {"url": hook.url}))
    assert (caught.value.status, caught.value.again) == (status, again)


def test_no_answer_is_tried_again_and_names_no_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/T000/B000/secret-path"
    with pytest.raises(Undelivered) as caught:
        _channels().deliver(_out("slack", {"url": url}))
    assert caught.value.again and "secret-path" not in caught.value.detail
    with Receiver(hang=True) as hook, pytest.raises(Undelivered) as caught:
        _channels(ORCH_ALERT_TIMEOUT=0.5).deliver(_out("webhook", {"url": hook.url}))
    assert caught.value.again and "Timeout" in caught.value.detail


def test_a_reference_that_cannot_be_read_is_given_up(tmp_path: Any) -> None:
    with pytest.raises(Undelivered) as caught:
        _channels().deliver(_out("webhook", {"url": {"env": "CHANNEL_TEST_UNSET"}}))
    assert not caught.value.again and "CHANNEL_TEST_UNSET is not set" in caught.value.detail
    with pytest.raises(Undelivered) as caught:
        _channels().deliver(_out("slack", {"url": {"file": str(tmp_path / "absent")}}))
    assert not caught.value.again and "cannot read" in caught.value.detail


def test_slack_gets_a_readable_message_with_the_link() -> None:
    with Receiver() as hook:
        _channels().deliver(_out("slack", {"url": hook.url}))
        (got,) = hook.got
    text = got.json["text"]
    assert text.splitlines()[0] == f"DAG d failed (run {'r' * 32})."
    assert "Failed task: load" in text and "Error: ValueError: no" in text
    assert f"Run: http://view.test/runs/{'r' * 32}" in text


class _Auth:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.seen.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"p@ss word")


@pytest.fixture
def mail_server() -> Iterator[tuple[int, _Mailbox, _Auth]]:
    box, auth, port = _Mailbox(), _Auth(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=auth,
                            auth_require_tls=False)
    controller.start()
    try:
        yield port, box, auth
    finally:
        controller.stop()


def test_email_logs_in_with_the_urls_user_and_password(
        mail_server: tuple[int, _Mailbox, _Auth]) -> None:
    port, box, auth = mail_server
    channels = _channels(ORCH_SMTP_URL=f"smtp://alerts:p%40ss%20word@127.0.0.1:{port}",
                         ORCH_MAIL_FROM="orchestrator@example.com")
    out = _out("email", {"to": ["ops@example.com", "data@example.com"]},
               error=f"boom, token: {SECRET_IN_ERROR}")
    assert channels.deliver(out) == 250
    assert auth.seen == [("alerts", "p@ss word")]
    (mail,) = box.messages
    assert mail["To"] == "ops@example.com, data@example.com"
    assert mail["From"] == "orchestrator@example.com"
    assert mail["X-Orchestrator-Event-Id"] == out.id
    assert mail["Subject"] == f"[orchestrator] DAG d failed (run {'r' * 32})."
    text = mail.get_content()
    assert "Failed task: load" in text and f"http://view.test/runs/{'r' * 32}" in text
    raw = mail.as_string()
    assert SECRET_IN_ERROR not in raw
    assert base64.b64encode(SECRET_IN_ERROR.encode()).decode() not in raw


class _Refusing(_Mailbox):
    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:
        return self.reply


@pytest.mark.parametrize(("reply", "again"), [("550 no such mailbox", False),
                                              ("451 try again later", True)])
def test_a_refused_recipient_is_an_smtp_answer(reply: str, again: bool) -> None:
    box, port = _Refusing(reply), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(Undelivered) as caught:
            _channels(ORCH_SMTP_URL=f"smtp://127.0.0.1:{port}").deliver(
                _out("email", {"to": ["ops@example.com"]}))
    finally:
        controller.stop()
    assert (caught.value.status, caught.value.again) == (int(reply[:3]), again)
    assert box.messages == []


def test_email_without_a_server_is_given_up_naming_the_setting() -> None:
    with pytest.raises(Undelivered) as caught:
        _channels().deliver(_out("email", {"to": ["ops@example.com"]}))
    assert not caught.value.again and "ORCH_SMTP_URL" in caught.value.detail
