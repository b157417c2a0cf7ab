"""/api/v1 routes: runs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["runs"])
