"""The run page's Alerts section: each notification its rules called for, its state and
every try at delivering it, as the API shows them (masked, never the target).

The section is rendered with the page, and again as a fragment by
``GET /runs/{id}/alerts``, which app.js fetches every ``REFRESH_S`` while the section is
not settled: alerts are delivered after the state change that caused them (by a
coordinator, with retries), so a page opened as a run fails would otherwise show them
pending for good.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator import errors
from orchestrator.api import deps, schemas_alerts
from orchestrator.api import pages_common as common
from orchestrator.model.states import FINISHED_RUN

router = APIRouter(include_in_schema=False)

REFRESH_S = 2
"""Seconds between two fetches of an unsettled section (app.js reads data-refresh)."""
_OPEN = ("pending", "sending")


def context(request: Request, run_id: str, *, finished: bool) -> dict[str, Any]:
    """What _alerts.html needs: the run's notifications, and whether they are settled
    (the run has ended and none is waiting to be sent: nothing will change by itself)."""
    found = deps.client(request).notifications(run_id)
    masker = deps.masker(request)
    alerts = [schemas_alerts.view(n, masker) for n in found]
    settled = finished and not any(n.state in _OPEN for n in alerts)
    return {"alerts": alerts, "alerts_settled": settled, "alerts_refresh": REFRESH_S}


@router.get("/runs/{run_id}/alerts")
def alerts_fragment(request: Request, run_id: str) -> Response:
    """The Alerts section alone (app.js swaps it in)."""
    who = common.signed_in(request)
    if isinstance(who, Response):
        return who
    client = deps.client(request)
    try:
        state = client.store.run_state(run_id)
        found = context(request, run_id, finished=state in FINISHED_RUN)
    except errors.NotFound:
        return common.error_page(request, 404, "No such run", f"There is no run {run_id!r}.")
    return common.fragment("_alerts.html", run_id=run_id, fragment=True, **found)
