"""Testing your own DAGs: ``Dag.test()`` runs one in this process; the pytest plugin
(:mod:`orchestrator.testing.plugin`, registered as ``pytest11: orchestrator``) gives the
``orch_stack`` and ``orch_client`` fixtures on real processes; :func:`wait_until` waits
on a condition with a deadline. Light to import: pytest loads this package in every
session."""

from orchestrator.testing.waiting import wait_until

__all__ = ["wait_until"]
