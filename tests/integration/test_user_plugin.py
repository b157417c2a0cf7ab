"""The pytest plugin as users get it: the example project's tests run the way a user's
own project runs them (``python -m pytest`` in its folder, the plugin loaded through the
package's entry point, no conftest), and the plugin's own promises (it loads light, its
names start with ``orch``, the DAG folder is found in the documented order)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.testing import plugin
from tests.support import ROOT

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "user_project"
EXAMPLE_TESTS = 6
RUN_S = 600


def _user_env(**extra: str) -> dict[str, str]:
    """This environment less what points at this suite's own services or session (its
    ORCH_* settings, its ORCH_TEST_* services, pytest's and xdist's variables)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ORCH_", "PYTEST_")) and k != "PYTHONPATH"}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def _pytest(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``python -m pytest`` in ``cwd``; its exit code and output. Stopped by its process
    group if it outlasts RUN_S (its stack's processes die with it)."""
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                            cwd=cwd, env=env or _user_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=RUN_S)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out


def test_the_example_project_passes_as_a_users_would() -> None:
    assert not list(EXAMPLE.rglob("conftest.py"))  # the entry point loads the plugin
    code, out = _pytest(EXAMPLE)
    assert code == 0, out
    assert f"rootdir: {EXAMPLE}" in out and "configfile: pyproject.toml" in out, out
    plugins = next(line for line in out.splitlines() if line.startswith("plugins:"))
    assert "orchestrator-0.1.0" in plugins
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\b(failed|error|errors|skipped)\b", summary) is None, out
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None and int(passed.group(1)) == EXAMPLE_TESTS, out


def test_importing_the_plugin_starts_and_loads_nothing_heavy() -> None:
    probe = ("import sys, threading, orchestrator.testing.plugin; "
             "heavy = [m for m in ('celery', 'kombu', 'redis', 'sqlalchemy', "
             "'orchestrator.client', 'orchestrator.devstack.stack') if m in sys.modules]; "
             "print(heavy, threading.active_count())")
    out = subprocess.run([sys.executable, "-c", probe], env=_user_env(), text=True,
                         capture_output=True, timeout=60, check=True).stdout
    assert out.split() == ["[]", "1"]


def test_every_fixture_and_option_the_plugin_adds_starts_with_orch() -> None:
    fixtures = [name for name, value in vars(plugin).items()
                if type(value).__name__ == "FixtureFunctionDefinition"]
    assert sorted(fixtures) == ["orch_client", "orch_stack", "orch_stacks"]
    assert plugin.OPTION.startswith("orch_")


_PROBE = '''
import pytest
from orchestrator.testing.plugin import dags_folder

def test_plain(request):
    print("FOLDER", dags_folder(request.node, request.config))

@pytest.mark.orch_dags("from_marker")
def test_marked(request):
    print("FOLDER", dags_folder(request.node, request.config))
'''


@pytest.mark.parametrize(("ini", "env", "option", "plain"), [
    (None, None, None, "dags"),
    ("from_ini", None, None, "conf/from_ini"),
    ("from_ini", "from_env", None, "from_env"),
    ("from_ini", "from_env", "from_cli", "from_cli"),
])
def test_the_dag_folder_is_found_in_the_documented_order(
        tmp_path: Path, ini: str | None, env: str | None, option: str | None,
        plain: str) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "pytest.ini").write_text("[pytest]\n" + (f"orch_dags = {ini}\n" if ini else ""))
    (tmp_path / "test_probe.py").write_text(_PROBE)
    args = ["-c", "conf/pytest.ini", "--rootdir", str(tmp_path), "-s", "-q", "test_probe.py"]
    if option:
        args += ["--orch-dags", option]
    code, out = _pytest(tmp_path, *args,
                        env=_user_env(**({"ORCH_DAGS_PATH": env} if env else {})))
    assert code == 0, out
    found = [Path(p) for p in re.findall(r"FOLDER (\S+)", out)]
    # the marker wins over everything, relative to the rootdir
    assert found == [(tmp_path / plain).resolve(), (tmp_path / "from_marker").resolve()]
