"""Fixtures the integration tier's page tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.client import Client
from tests.integration.pages_support import Web, web_of


@pytest.fixture
def web(client: Client) -> Iterator[Web]:
    """The server app in process, on the shared stack's database, with a token per role."""
    with web_of(client) as w:
        yield w
