"""The ``orchestrator`` command."""

from orchestrator.cli.app import app, main

__all__ = ["app", "main"]
