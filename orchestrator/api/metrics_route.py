"""GET /metrics: the Prometheus text format, for a viewer token like every other route.

Not under /api/v1: scrapers expect /metrics. Prometheus sends the token with
``authorization: {credentials: TOKEN}`` (or ``bearer_token_file``) in its scrape config.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request, Response
from prometheus_client.registry import CollectorRegistry

from orchestrator.api.auth import Viewer
from orchestrator.api.deps import ClientDep
from orchestrator.api.problems import responses
from orchestrator.observability import metrics

router = APIRouter(tags=["metrics"])
_made = threading.Lock()


def _registry(request: Request, client: ClientDep) -> CollectorRegistry:
    """The app's registry, made on the first scrape (one snapshot cache per app)."""
    state = request.app.state
    with _made:
        if getattr(state, "metrics_registry", None) is None:
            state.metrics_registry = metrics.registry(
                client.store.metrics, default_queue=client.settings.worker.default_queue)
    reg: CollectorRegistry = state.metrics_registry
    return reg


@router.get("/metrics", response_class=Response,
            responses={**responses(), 200: {
                "description": "Prometheus text format (version 0.0.4).",
                "content": {"text/plain": {"schema": {"type": "string"}}}}})
def get_metrics(request: Request, _who: Viewer, client: ClientDep) -> Response:
    """Runs, attempts, queue waits, run durations, hand-off latency (a parent's end to
    its child's start), reconciler resends and takeovers, and the oldest queued task's
    age, from the state database; a snapshot is reused for 5 s."""
    body = metrics.render(_registry(request, client))
    return Response(body, media_type=metrics.CONTENT_TYPE)
