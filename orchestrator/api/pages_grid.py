"""The runs grid: a DAG's runs (rows, newest first) by its tasks (columns), one cell
coloured by state per task, a mapped task's cell counting its instances.

A page of 100 runs x 200 tasks is 20,000 cells, so its body is built here in one pass
rather than by the template: each task id is escaped once per column, a state is written
only if it is one of the known states, and counts are integers. Everything around it is
the template's, autoescaped like every page.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from orchestrator import errors
from orchestrator.api import deps
from orchestrator.api import pages_common as common
from orchestrator.store.grid import GridRun

router = APIRouter(include_in_schema=False)

GRID_LIMIT, GRID_MAX = 25, 100
_STATES = frozenset(common.TASK_STATES)


def rows_html(runs: Sequence[GridRun], columns: Sequence[str]) -> Markup:
    """``tr[data-run-id]`` per run, ``td[data-task-id][data-state]`` per task."""
    cols = [(t, str(escape(t))) for t in columns]
    out = []
    for run in runs:
        cells = run.cells
        parts = [str(Markup(
            '<tr data-run-id="{id}"><th scope="row" class="run-col" data-state="{state}">'
            '<a href="/runs/{id}" title="run {id}: {label}"><span class="dot"></span>{at}'
            '<span class="rid">{short}</span></a></th>').format(
                id=run.id, state=run.state.value, label=run.state.value.replace("_", " "),
                at=run.created_at.strftime("%m-%d %H:%M:%S"), short=run.id[:6]))]
        for t, et in cols:
            c = cells.get(t)
            if c is None:
                parts.append(f'<td data-task-id="{et}" data-state="none"></td>')
                continue
            state = c.state if c.state in _STATES else "none"
            counts = c.counts
            inner = f'<span class="counts">{counts}</span>' if counts is not None else ""
            parts.append(f'<td data-task-id="{et}" data-state="{state}">{inner}</td>')
        parts.append("</tr>")
        out.append("".join(parts))
    return Markup("\n".join(out))


@router.get("/dags/{dag_id}/grid")
def grid_page(request: Request, dag_id: str, limit: str = str(GRID_LIMIT),
              cursor: str | None = None) -> Response:
    who = common.signed_in(request)
    if isinstance(who, Response):
        return who
    client = deps.client(request)
    try:
        dag = deps.dagbag(request).get(dag_id)
    except errors.NotFound:
        return common.error_page(request, 404, "No such DAG",
                                 f"No DAG {dag_id!r} is loaded from the DAG folder.")
    if not limit.isdigit() or not 1 <= int(limit) <= GRID_MAX:
        return common.error_page(request, 422, "Invalid limit",
                                 f"limit must be a whole number from 1 to {GRID_MAX}.")
    try:
        page = client.store.grid(dag_id, limit=int(limit), cursor=cursor)
    except errors.InvalidArgument as exc:
        return common.error_page(request, 422, "Invalid page", str(exc))
    columns = list(dag.plan.order)
    known = set(columns)
    for run in page.runs:  # tasks of older versions of the DAG, after today's
        for task_id in run.cells:
            if task_id not in known:
                known.add(task_id)
                columns.append(task_id)
    return common.render(request, "grid.html", dag=dag, page=page,
                         rows=rows_html(page.runs, columns), columns=columns,
                         mapped=set(dag.plan.map_over), limit=int(limit), cursor=cursor,
                         sched=common.schedules(request, [dag]).get(dag.id))
