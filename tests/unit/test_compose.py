"""The compose file is valid against the Compose spec and keeps its structural promises.

No Docker engine runs here, so `check-jsonschema` with its bundled Compose schema stands in
for `docker compose config`.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    if not CHECK_JSONSCHEMA.exists():
        pytest.fail(f"check-jsonschema not installed next to {sys.executable}")
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    svc = compose["services"]
    assert isinstance(svc, dict)
    return svc


def _command(service: dict[str, Any]) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def test_compose_file_matches_the_compose_spec() -> None:
    proc = _validate(COMPOSE)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


@pytest.mark.parametrize("broken", [
    # Unknown top-level key.
    "services:\n  worker:\n    image: x\nnot_a_compose_key: 1\n",
    # Unknown service key.
    "services:\n  worker:\n    image: x\n    replicas_please: 4\n",
    # depends_on condition outside the enum.
    "services:\n  a:\n    image: x\n    depends_on:\n      b:\n        condition: whenever\n"
    "  b:\n    image: y\n",
])
def test_validator_rejects_a_broken_compose_file(tmp_path: Path, broken: str) -> None:
    # Without this, a validator that accepts anything would make the test above meaningless.
    path = tmp_path / "docker-compose.yml"
    path.write_text(broken)
    proc = _validate(path)
    assert proc.returncode != 0, f"accepted an invalid file:\n{proc.stdout}\n{proc.stderr}"


def test_expected_services_present(services: dict[str, Any]) -> None:
    assert {"broker", "postgres", "migrate", "worker", "coordinator", "flower",
            "server"} <= set(services)


ORCHESTRATOR_SERVICES = ("worker", "coordinator")


def test_a_one_shot_migrate_service_runs_db_upgrade(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert _command(migrate) == "orchestrator db upgrade"
    assert migrate.get("restart") == "no"  # one shot: it ends, and must not loop
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["environment"]["ORCH_DATABASE_URL"].startswith("postgresql://")


@pytest.mark.parametrize("name", ORCHESTRATOR_SERVICES)
def test_every_orchestrator_service_waits_for_the_migration(services: dict[str, Any],
                                                             name: str) -> None:
    deps = services[name]["depends_on"]
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert services[name]["environment"] == services["migrate"]["environment"]


def test_two_coordinators_share_the_reconciling(services: dict[str, Any]) -> None:
    coordinator = services["coordinator"]
    assert _command(coordinator) == "orchestrator coordinator"
    assert coordinator["deploy"]["replicas"] >= 2
    assert "container_name" not in coordinator and "ports" not in coordinator
    assert coordinator["environment"]["ORCH_DATABASE_URL"].startswith("postgresql://")


def test_broker_persists_with_append_only_file(services: dict[str, Any]) -> None:
    broker = services["broker"]
    assert "--appendonly yes" in _command(broker)
    assert any(str(v).endswith(":/data") for v in broker.get("volumes", []))
    assert "ping" in _command({"command": broker["healthcheck"]["test"]})


def test_postgres_has_volume_and_healthcheck(services: dict[str, Any]) -> None:
    pg = services["postgres"]
    assert str(pg["image"]).startswith("postgres:16")
    assert pg.get("volumes")
    assert "pg_isready" in _command({"command": pg["healthcheck"]["test"]})


def test_worker_can_scale(services: dict[str, Any]) -> None:
    worker = services["worker"]
    # Either one is unique per host and breaks `--scale worker=N`.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert _command(worker).startswith("orchestrator worker")
    env = worker["environment"]
    assert env["ORCH_BROKER_URL"].startswith("redis://:${BROKER_PASSWORD:?")
    assert env["ORCH_BROKER_URL"].endswith("@broker:6379/0")
    assert env["ORCH_DATABASE_URL"].startswith("postgresql://")
    for dep in ("broker", "postgres"):
        assert worker["depends_on"][dep]["condition"] == "service_healthy"


def test_flower_is_loopback_only_and_authenticated(services: dict[str, Any]) -> None:
    flower = services["flower"]
    ports = flower.get("ports", [])
    assert ports, "flower publishes no port"
    for port in ports:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), port
    cmd = _command(flower)
    assert "--basic-auth" not in cmd and "redis://" not in cmd  # secrets stay off argv
    assert "kwargs" in cmd.split("--tasks_columns=")[1]  # run and task ids are shown
    auth = flower["environment"]["FLOWER_BASIC_AUTH"]
    # No default password: it must be supplied, or compose refuses to start.
    assert "${FLOWER_PASSWORD:?" in auth


def test_the_broker_requires_a_password_kept_off_its_command_line(
        services: dict[str, Any]) -> None:
    broker = services["broker"]
    assert broker["environment"]["BROKER_PASSWORD"].startswith("${BROKER_PASSWORD:?")
    cmd = _command(broker)
    # `$$` is compose's escape: the shell in the container expands it into the server's
    # configuration on stdin (`-`), so neither compose nor `ps` shows it as an argument
    assert 'requirepass "$$BROKER_PASSWORD"' in cmd and "valkey-server -" in cmd
    assert "--requirepass" not in cmd and "env -u BROKER_PASSWORD" in cmd
    check = _command({"command": broker["healthcheck"]["test"]})
    assert "REDISCLI_AUTH=" in check and " -a " not in check
    for name, svc in services.items():
        url = svc.get("environment", {}).get("ORCH_BROKER_URL")
        if url is not None:
            assert url.startswith("redis://:${BROKER_PASSWORD:?"), name


def test_no_credential_has_a_default() -> None:
    text = COMPOSE.read_text()
    assert not re.search(r"\$\{[A-Z_]*(PASSWORD|KEY)[A-Z_]*:-", text)
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert {"BROKER_PASSWORD", "POSTGRES_PASSWORD", "FLOWER_PASSWORD",
            "ORCH_SIGNING_KEY"} <= required
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", example, flags=re.MULTILINE))
    assert required <= listed  # a new user copies the file and fills in every line


def test_flower_gets_the_broker_only(services: dict[str, Any]) -> None:
    flower = services["flower"]
    cmd = _command(flower)
    app = cmd.split("-A ")[1].split()[0]
    assert importlib.util.find_spec(app) is not None
    assert set(flower["environment"]) == {"ORCH_BROKER_URL", "FLOWER_BASIC_AUTH"}


def test_the_server_is_published_on_loopback_only_and_needs_every_credential(
        services: dict[str, Any]) -> None:
    server = services["server"]
    assert server["image"] == services["worker"]["image"]  # the same image, the same DAGs
    # all interfaces inside the container, so that the published port reaches it
    assert _command(server).startswith("orchestrator server --host 0.0.0.0")
    ports = server.get("ports", [])
    assert ports == ["127.0.0.1:8300:8300"], ports
    deps = server["depends_on"]
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    for dep in ("broker", "postgres"):
        assert deps[dep]["condition"] == "service_healthy"
    env = server["environment"]
    # the workers' settings, credentials required as theirs are, plus Flower's address
    assert {k: v for k, v in env.items() if k != "ORCH_FLOWER_URL"} == (
        services["worker"]["environment"])
    assert env["ORCH_FLOWER_URL"].endswith("http://127.0.0.1:5555}")
    assert "FLOWER_BASIC_AUTH" not in env and "ORCH_FLOWER_PASSWORD" not in env
    assert "healthz" in _command({"command": server["healthcheck"]["test"]})


def test_no_service_publishes_on_all_interfaces(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)


@pytest.mark.parametrize("ignore_file", [".gitignore", ".dockerignore"])
def test_credential_files_stay_out_of_git_and_the_image(ignore_file: str) -> None:
    patterns = (ROOT / ignore_file).read_text(encoding="utf-8").split()
    assert ".env" in patterns  # compose's passwords (.env.example says to fill it in)
    assert any(p.strip("/") == ".orchestrator" for p in patterns)  # the local stack's
