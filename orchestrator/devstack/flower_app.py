"""The Celery app Flower runs with (``celery -A orchestrator.devstack.flower_app flower``).

It is the producers' app, built from the ``ORCH_*`` settings, so Flower reaches the broker
exactly as our clients and workers do, TLS options included, and finds the broker URL in
its environment rather than on its command line.
"""

from __future__ import annotations

from orchestrator import errors
from orchestrator import settings as settings_
from orchestrator.transport.dispatch import make_producer_app

_settings = settings_.load()
if not _settings.broker.url:
    raise errors.TransportError("ORCH_BROKER_URL is not set: Flower needs the broker's URL")
app = make_producer_app(_settings, _settings.broker.url)
