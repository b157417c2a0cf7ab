"""How one alert reaches its receiver: a signed webhook, a Slack-style webhook, an email.

A try either returns (delivered) or raises :class:`Undelivered`, saying whether another
try could go better (a 500, a timeout) or not (a variable that is not set). Values the
rule gives by reference (``{env: NAME}``, ``{file: PATH}``) are read here, at delivery,
so they are never in the database; everything sent is masked first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from orchestrator.observability.masking import Masker
from orchestrator.settings import AlertSettings
from orchestrator.store.results import Outgoing

SIGNATURE = "X-Orchestrator-Signature"
EVENT_ID = "X-Orchestrator-Event-Id"
USER_AGENT = "orchestrator-alerts/1"


class Undelivered(Exception):
    def __init__(self, detail: str, *, status: int | None = None, again: bool = True) -> None:
        super().__init__(detail)
        self.detail, self.status, self.again = detail, status, again


def resolve(value: Any, what: str) -> str:
    """A rule's value: itself, or read from the variable or file it names."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("env"), str):
        found = os.environ.get(value["env"])
        if not found:
            raise Undelivered(f"{what}: environment variable {value['env']} is not set in "
                              "the coordinator", again=False)
        return found
    if isinstance(value, dict) and isinstance(value.get("file"), str):
        try:
            return Path(value["file"]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise Undelivered(f"{what}: cannot read {value['file']}: {exc.strerror}",
                              again=False) from None
    raise Undelivered(f"{what}: not a value or a reference", again=False)


class Channels:
    def __init__(self, settings: AlertSettings, masker: Masker, run_view: str) -> None:
        self.settings = settings
        self.masker = masker
        self.run_view = run_view.rstrip("/")

    def link(self, run_id: str) -> str:
        return f"{self.run_view}/runs/{run_id}"

    def deliver(self, out: Outgoing) -> int | None:
        """Make one try; returns the receiver's status (HTTP) or reply code (SMTP)."""
        if out.channel == "webhook":
            return self._webhook(out)
        if out.channel == "slack":
            return self._slack(out)
        if out.channel == "email":
            return self._email(out)
        raise Undelivered(f"unknown channel {out.channel!r}", again=False)

    def body(self, out: Outgoing) -> dict[str, Any]:
        """The alert as receivers get it (a webhook's JSON): masked, with its run's link."""
        data = {"id": out.id, **out.payload, "url": self.link(out.run_id)}
        masked: dict[str, Any] = self.masker.mask_value(data)
        return masked

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            r = httpx.post(url, content=body, timeout=self.settings.timeout,
                           headers={"Content-Type": "application/json",
                                    "User-Agent": USER_AGENT, **headers})
        except httpx.HTTPError as exc:
            # the URL may hold a secret (Slack's does): say what failed, not where
            raise Undelivered(f"no answer: {type(exc).__name__}") from None
        if not 200 <= r.status_code < 300:
            raise Undelivered(f"the receiver answered {r.status_code}", status=r.status_code,
                              again=r.status_code >= 500 or r.status_code in (408, 429))
        return r.status_code

    def _webhook(self, out: Outgoing) -> int:
        url = resolve(out.target.get("url"), "webhook url")
        body = json.dumps(self.body(out), sort_keys=True, separators=(",", ":")).encode()
        headers = {EVENT_ID: out.id, "X-Orchestrator-Event": out.event}
        if out.target.get("secret") is not None:
            key = resolve(out.target["secret"], "webhook secret").encode()
            headers[SIGNATURE] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        return self._post(url, body, headers)

    def _slack(self, out: Outgoing) -> int:
        url = resolve(out.target.get("url"), "slack url")
        return self._post(url, json.dumps({"text": self.text(out)}).encode(), {EVENT_ID: out.id})

    def text(self, out: Outgoing) -> str:
        """A message people read: what happened, where, why, and the run's link."""
        p = self.body(out)
        what = {"run_failed": "failed", "run_succeeded": "succeeded",
                "task_failed": "failed", "task_retried": "failed and will be retried",
                "deadline_missed": "missed its deadline"}.get(out.event, out.event)
        subject = f"DAG {p['dag_id']}" + (
            f", task {p['task_id']}" if p.get("task_id") and out.event.startswith("task")
            else "")
        lines = [f"{subject} {what} (run {out.run_id})."]
        if p.get("task_id") and not out.event.startswith("task"):
            lines.append(f"Failed task: {p['task_id']}")
        if p.get("error"):
            lines.append(f"Error: {p['error']}")
        lines.append(f"Run: {p['url']}")
        return "\n".join(lines)

    def _email(self, out: Outgoing) -> int:
        url = self.settings.smtp_url
        if not url:
            raise Undelivered("ORCH_SMTP_URL is not set in the coordinator", again=False)
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise Undelivered("ORCH_SMTP_URL is not smtp://host or smtps://host",
                              again=False)
        p = self.body(out)
        msg = EmailMessage()
        first = self.text(out).split("\n", 1)[0]
        msg["Subject"] = f"[orchestrator] {first}"
        msg["From"] = self.settings.mail_from
        msg["To"] = ", ".join(out.target.get("to", []))
        msg[EVENT_ID] = out.id
        msg.set_content(self.text(out) + "\n\n" + json.dumps(p, indent=2) + "\n")
        try:
            return self._smtp(parts.scheme, parts.hostname, parts.port, parts.username,
                              parts.password, msg)
        except smtplib.SMTPResponseException as exc:
            raise Undelivered(f"the mail server answered {exc.smtp_code}",
                              status=exc.smtp_code, again=exc.smtp_code < 500) from None
        except smtplib.SMTPRecipientsRefused as exc:
            code = max(int(c) for c, _ in exc.recipients.values())
            raise Undelivered(f"the mail server refused every recipient ({code})",
                              status=code, again=code < 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise Undelivered(f"mail server: {type(exc).__name__}") from None

    def _smtp(self, scheme: str, host: str, port: int | None, user: str | None,
              password: str | None, msg: EmailMessage) -> int:
        timeout = self.settings.timeout
        context = ssl.create_default_context()
        server: smtplib.SMTP
        if scheme == "smtps":
            server = smtplib.SMTP_SSL(host, port or 465, timeout=timeout, context=context)
        else:
            server = smtplib.SMTP(host, port or 25, timeout=timeout)
        with server:
            server.ehlo()
            if scheme == "smtp" and server.has_extn("starttls"):
                server.starttls(context=context)
                server.ehlo()
            if user:
                server.login(unquote(user), unquote(password or ""))
            server.send_message(msg)
            return 250
