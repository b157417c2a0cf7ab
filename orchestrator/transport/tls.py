"""TLS to the broker: ``rediss://`` URLs verify the server's certificate by default.

kombu reads ``ssl_*`` options from the URL's query (``?ssl_cert_reqs=required&
ssl_ca_certs=/path/ca.pem``), but a ``rediss://`` URL without them falls back to
``CERT_NONE``: encrypted, yet open to anyone in the middle. Here such a URL verifies
against the system's CAs instead, as redis-py does for the clients we build ourselves, and
the same options go to ``broker_use_ssl``, which Flower's broker view needs to reach a TLS
broker at all.
"""

from __future__ import annotations

import ssl
from typing import Any

from kombu.utils.url import parse_url


def broker_use_ssl(url: str) -> dict[str, Any] | None:
    """Celery's ``broker_use_ssl`` for this broker URL; None unless it is ``rediss://``."""
    if not url.startswith("rediss://"):
        return None
    given = parse_url(url).get("ssl")
    options: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
    options.setdefault("ssl_cert_reqs", ssl.CERT_REQUIRED)
    return options
