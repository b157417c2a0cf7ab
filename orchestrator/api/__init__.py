"""The HTTP server: REST API under /api/v1, the web run view and /metrics (FastAPI)."""
