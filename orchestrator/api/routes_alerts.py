"""/api/v1 routes: the alerts outbox, a run's notifications and the latest of all, each
with every try made at it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from orchestrator.api import deps
from orchestrator.api import schemas_alerts as schemas
from orchestrator.api.auth import Viewer
from orchestrator.api.deps import ClientDep
from orchestrator.api.problems import responses
from orchestrator.api.routes_runs import RunId

router = APIRouter(tags=["alerts"], dependencies=[Depends(deps.strict_query)])

MAX_LISTED = 1000


@router.get("/runs/{run_id}/notifications", response_model=schemas.NotificationList,
            responses=responses(404))
def run_notifications(run_id: RunId, _who: Viewer, client: ClientDep,
                      request: Request) -> schemas.NotificationList:
    """A run's notifications, oldest first: each alert its rules called for (one per
    channel), its state, and each try to deliver it (who, when, how the receiver
    answered). Never the target: no URL, address or secret."""
    found = client.notifications(run_id)
    masker = deps.masker(request)
    return schemas.NotificationList(notifications=[schemas.view(n, masker) for n in found])


@router.get("/notifications", response_model=schemas.NotificationList,
            responses=responses())
def list_notifications(_who: Viewer, client: ClientDep, request: Request,
                       state: schemas.NotificationState | None = None,
                       limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
                       ) -> schemas.NotificationList:
    """The latest notifications of every run, newest first; ``state=failed`` lists the
    alerts given up on, ``pending`` those waiting for a (next) try."""
    found = client.notifications(state=state, limit=limit)
    masker = deps.masker(request)
    return schemas.NotificationList(notifications=[schemas.view(n, masker) for n in found])
