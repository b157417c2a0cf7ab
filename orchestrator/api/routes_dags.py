"""/api/v1 routes: dags."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["dags"])
