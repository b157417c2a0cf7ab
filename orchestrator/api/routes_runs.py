"""/api/v1 routes: runs (pages newest first, one run's tasks and attempts), cancel, rerun."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from orchestrator.api import deps, schemas
from orchestrator.api.auth import Operator, Viewer
from orchestrator.api.deps import ClientDep
from orchestrator.api.problems import responses
from orchestrator.model import limits
from orchestrator.model.states import RunState

router = APIRouter(tags=["runs"], dependencies=[Depends(deps.strict_query)])

RunId = Annotated[str, Path(pattern=schemas.RUN_ID_PATTERN,
                            description=f"A run id ({limits.RUN_ID_LENGTH} hex digits).")]


@router.get("/runs", response_model=schemas.RunPage, responses=responses())
def list_runs(_who: Viewer, client: ClientDep,
              dag_id: Annotated[str | None, Query(max_length=limits.MAX_ID_LENGTH)] = None,
              state: RunState | None = None,
              limit: Annotated[int, Query(ge=1, le=limits.MAX_RUNS_PAGE)] = 50,
              cursor: Annotated[str | None, Query(
                  max_length=200, description="The next_cursor of the page before.")] = None,
              ) -> schemas.RunPage:
    """Runs, newest first, a page at a time (keyset pagination: a page costs the same
    however deep it is, and runs submitted meanwhile move none between pages)."""
    page, after = client.store.runs_page(dag_id, state, limit, cursor, with_params=False)
    return schemas.RunPage(runs=[schemas.run_summary(r) for r in page], next_cursor=after)


@router.get("/runs/{run_id}", response_model=schemas.RunDetail, responses=responses(404))
def get_run(run_id: RunId, _who: Viewer, client: ClientDep,
            request: Request) -> schemas.RunDetail:
    """A run: its state, and per task its state, timings, worker, error and attempts (each
    with its worker, celery_id, error, traceback and DAG version)."""
    run = client.store.get_run(run_id, with_results=False)
    order: list[str] = []
    if run.dag_version is not None:
        order = list(client.store.compiled(run.dag_version).plan.order)
    masker = deps.masker(request)
    return schemas.run_detail(run, order, mask=masker.mask, mask_value=masker.mask_value)


@router.post("/runs/{run_id}/cancel", response_model=schemas.Cancelled,
             responses=responses(403, 404, 409, 503))
def cancel_run(run_id: RunId, _who: Operator, client: ClientDep) -> schemas.Cancelled:
    """Cancel a running run: queued tasks never start, running ones are terminated.
    409 if it has ended already."""
    client.cancel(run_id)
    return schemas.Cancelled(run_id=run_id, state=client.store.run_state(run_id))


@router.post("/runs/{run_id}/rerun", response_model=schemas.Rerun,
             responses=responses(403, 404, 409, 413, 503))
def rerun_run(run_id: RunId, _who: Operator, client: ClientDep,
              body: schemas.RerunBody | None = None) -> schemas.Rerun:
    """Continue a finished run: its failed tasks (or ``from_task`` and what is downstream
    of it) run again; every other result is kept. 409 while it runs."""
    reset = client.rerun(run_id, from_task=body.from_task if body is not None else None)
    return schemas.Rerun(run_id=run_id, reset=reset)
