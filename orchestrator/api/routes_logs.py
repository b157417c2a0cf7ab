"""/api/v1 routes: logs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["logs"])
