"""What routes depend on: the app's one Client, its settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from orchestrator.client import Client
from orchestrator.settings import Settings


def client(request: Request) -> Client:
    """The app's Client (``app.state.client``): one store, one producer, one DAG folder
    shared by every request (SQLAlchemy's pool and the producer are thread-safe)."""
    found: Client = request.app.state.client
    return found


def settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


ClientDep = Annotated[Client, Depends(client)]
SettingsDep = Annotated[Settings, Depends(settings)]
