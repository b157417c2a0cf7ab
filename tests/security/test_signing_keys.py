"""A process without ORCH_SIGNING_KEY sends nothing and serves nothing: the client
refuses before it writes, and a worker refuses to start, each naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.settings import Settings
from tests.support import TEST_DAGS, make_settings

pytestmark = [pytest.mark.security, pytest.mark.integration]


def _keyless(broker_url: str, database_url: str) -> Settings:
    env = make_settings(broker_url, database_url).as_env()
    env.pop("ORCH_SIGNING_KEY")
    return Settings.from_env(env)


def test_a_client_without_a_key_writes_nothing(broker_url: str, database_url: str) -> None:
    settings = _keyless(broker_url, database_url)
    assert settings.security.signing_key is None
    with Client(settings) as client:
        rows = client.store.count_rows()
        with pytest.raises(errors.ConfigError, match="ORCH_SIGNING_KEY"):
            client.submit("chain20")
        with pytest.raises(errors.ConfigError, match="ORCH_SIGNING_KEY"):
            client.cancel("0" * 32)
        assert client.store.count_rows() == rows


def test_a_worker_without_a_key_does_not_start(broker_url: str, database_url: str,
                                               tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(_keyless(broker_url, database_url).as_env())
    env["ORCH_DAGS_PATH"] = str(TEST_DAGS)
    # cwd: a folder with no .orchestrator/ state, which could hand it a key
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "worker"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ORCH_SIGNING_KEY is not set" in proc.stderr
    assert "Traceback" not in proc.stderr
