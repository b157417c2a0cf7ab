"""The pytest plugin that tests your own DAGs on a real stack (entry point ``pytest11:
orchestrator``, so installing the package is enough; ``-p no:orchestrator`` turns it off).

Loaded in every pytest session of an environment that has the package, so it starts
nothing and imports nothing heavy until a test asks for one of its fixtures, and every
name it adds starts with ``orch``:

- ``orch_stack`` (:class:`~orchestrator.testing.stack.OrchStack`): broker, SQLite
  database, worker and coordinator on your DAG folder; with ``kill_worker()``,
  ``restart_broker()``, ``deliver_twice(task)`` and ``wait_idle()``;
- ``orch_client``: an :class:`orchestrator.Client` of that stack;
- ``orch_stacks``: the session's stacks, one per DAG folder (used by ``orch_stack``).

One stack per DAG folder serves the whole session (starting one takes seconds); after
each test that used it, it is put back whole — its duplicate watches stopped, and a
broker, a worker or a coordinator that is down started again — so faults do not leak.
Runs of earlier tests stay in its database: tests look at their own run ids.

The DAG folder, first found wins: the test's ``@pytest.mark.orch_dags("path")``
(relative to the rootdir), ``--orch-dags PATH`` on the command line, the ``ORCH_DAGS_PATH``
variable (both relative to where pytest was started), the ``orch_dags`` ini option
(relative to the ini file's folder), else ``dags`` in the rootdir.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from orchestrator.client import Client
    from orchestrator.testing.stack import OrchStack, Stacks

OPTION = "orch_dags"
"""The command-line option's dest, the ini option and the marker: one name."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("orchestrator", "orchestrator: testing your DAGs")
    group.addoption("--orch-dags", dest=OPTION, default=None, metavar="PATH",
                    help="DAG folder orch_stack's worker runs (default: ORCH_DAGS_PATH, "
                         "the orch_dags ini option, else dags/ in the rootdir)")
    parser.addini(OPTION, "DAG folder orch_stack's worker runs, relative to the ini file "
                          "(default: dags)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{OPTION}(path): the DAG folder this test's orch_stack runs (relative to "
                   "the rootdir)")


def dags_folder(node: pytest.Item | pytest.Collector, config: pytest.Config) -> Path:
    """The DAG folder a test's stack runs, resolved (see the module's docstring)."""
    marker = node.get_closest_marker(OPTION)
    started_in = config.invocation_params.dir
    if marker is not None:
        if len(marker.args) != 1 or not isinstance(marker.args[0], str | os.PathLike):
            raise pytest.UsageError(f"@pytest.mark.{OPTION} takes one path")
        path = Path(config.rootpath, marker.args[0])
    elif config.getoption(OPTION):
        path = Path(started_in, config.getoption(OPTION))
    elif os.environ.get("ORCH_DAGS_PATH"):
        path = Path(started_in, os.environ["ORCH_DAGS_PATH"])
    elif config.getini(OPTION):
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        path = Path(base, str(config.getini(OPTION)))
    else:
        path = config.rootpath / "dags"
    return path.resolve()


@pytest.fixture(scope="session")
def orch_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    """The session's stacks, one per DAG folder; all stopped when the session ends."""
    from orchestrator.testing.stack import Stacks

    stacks = Stacks(lambda dags: tmp_path_factory.mktemp(f"orch-{dags.name}"))
    try:
        yield stacks
    finally:
        stacks.close()


@pytest.fixture
def orch_stack(request: pytest.FixtureRequest, orch_stacks: Stacks) -> Iterator[OrchStack]:
    """A running stack on this test's DAG folder (shared; made whole after the test)."""
    folder = dags_folder(request.node, request.config)
    if not folder.is_dir():
        pytest.fail(f"orch_stack: the DAG folder {folder} does not exist (give it with "
                    f"--orch-dags, the {OPTION} ini option, ORCH_DAGS_PATH or "
                    f"@pytest.mark.{OPTION})", pytrace=False)
    stack = orch_stacks.get(folder)
    try:
        yield stack
    finally:
        stack.restore()


@pytest.fixture
def orch_client(orch_stack: OrchStack) -> Iterator[Client]:
    """An :class:`orchestrator.Client` of ``orch_stack``, closed after the test."""
    with orch_stack.client() as client:
        yield client
