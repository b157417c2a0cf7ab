"""Pure: a validated DagSpec becomes a Plan the store and dispatcher work from.

A *segment* is a maximal run of nodes ``a -> b -> c`` where each link is the only
child of its parent and the only parent of its child. A segment goes to Celery as one
``chain``; fan-out dispatches several segments as a ``group``; a node with several
parents (a join) always starts a segment and is released by the state database.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from orchestrator import errors
from orchestrator.model import cycles, notify
from orchestrator.model import spec as spec_
from orchestrator.model.triggers import TriggerRule

MAX_SEGMENT = 64
"""Longest chain sent as one message, so messages stay O(segment) even on a long line."""

DEFAULT_POOL = "default"


@dataclasses.dataclass(frozen=True)
class Slot:
    """What a task takes while queued or running: ``slots`` of ``pool`` (None: the
    default pool). A mapped task's own row takes none; each of its instances takes its."""

    pool: str | None = None
    slots: int = 1


NO_SLOT = Slot(None, 0)
_ONE = Slot()


@dataclasses.dataclass(frozen=True)
class Plan:
    dag_id: str
    order: tuple[str, ...]
    upstream: dict[str, tuple[str, ...]]
    downstream: dict[str, tuple[str, ...]]
    chain_next: dict[str, str]
    trigger_rules: dict[str, TriggerRule]
    map_over: dict[str, str] = dataclasses.field(default_factory=dict)
    """Mapped node -> the upstream node whose list it maps over."""
    max_active_runs: int | None = None
    """The DAG's run-slot limit: only then does a finishing run look for a queued one."""
    outlets: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Node -> the assets its success updates (only nodes that declare some)."""
    slots: dict[str, Slot] = dataclasses.field(default_factory=dict)
    """Node -> its slot, for nodes with a named pool or other than one slot."""
    priority: dict[str, int] = dataclasses.field(default_factory=dict)
    """Node -> its priority among waiters, for nodes other than 0."""
    max_active_tasks: int | None = None
    alerts: notify.Alerts | None = None
    """Who its runs tell of what (None: nobody, and its transactions write nothing)."""

    @property
    def pooled(self) -> bool:
        """Some task of it waits for a named pool's slot, or the DAG bounds its tasks."""
        return self.max_active_tasks is not None or any(
            s.pool is not None for s in self.slots.values())

    @property
    def pools(self) -> frozenset[str | None]:
        """Every pool its tasks take slots of (None: the default pool)."""
        return frozenset({None, *(s.pool for s in self.slots.values())})

    def slot(self, task_id: str) -> Slot:
        """The slot a task (or a mapped task's instance, ``name[i]``) takes."""
        node, index = spec_.split_task_id(task_id)
        if index is None and node in self.map_over:
            return NO_SLOT
        return self.slots.get(node, _ONE)

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if not self.upstream[n])

    @property
    def initial(self) -> tuple[str, ...]:
        """Ready when the run starts: the roots, and tasks whose rule is ``always``."""
        return tuple(n for n in self.order if not self.upstream[n]
                     or self.trigger_rules[n] == TriggerRule.ALWAYS)

    def in_degree(self, node: str) -> int:
        return len(self.upstream[node])

    def segment_from(self, node: str) -> tuple[str, ...]:
        """The chain starting at ``node``: what is sent when ``node`` is dispatched."""
        out = [node]
        while (nxt := self.chain_next.get(out[-1])) is not None:
            out.append(nxt)
        return tuple(out)

    @property
    def segments(self) -> tuple[tuple[str, ...], ...]:
        inside = set(self.chain_next.values())
        return tuple(self.segment_from(n) for n in self.order if n not in inside)

    def released_by_chain(self, node: str) -> str | None:
        """The successor that Celery's chain delivers after ``node`` succeeds, if any."""
        return self.chain_next.get(node)

    def descendants(self, node: str) -> tuple[str, ...]:
        """Every node downstream of ``node``, in topological order."""
        seen: set[str] = set()
        todo = deque(self.downstream[node])
        while todo:
            n = todo.popleft()
            if n not in seen:
                seen.add(n)
                todo.extend(self.downstream[n])
        return tuple(n for n in self.order if n in seen)


def build(dag: spec_.DagSpec) -> Plan:
    upstream = {t.id: t.dependencies for t in dag.tasks}
    down: dict[str, list[str]] = {t.id: [] for t in dag.tasks}
    for t in dag.tasks:
        for d in t.dependencies:
            down[d].append(t.id)
    downstream = {n: tuple(c) for n, c in down.items()}
    order = _topological(upstream, downstream)
    rules = {t.id: t.trigger_rule for t in dag.tasks}
    branching = {t.id for t in dag.tasks if t.branch}
    map_over = {t.id: t.map_over for t in dag.tasks if t.map_over is not None}
    chain_next: dict[str, str] = {}
    depth: dict[str, int] = {}
    for n in order:
        kids = downstream[n]
        # Celery continues a chain only on success: chain only where success is what
        # releases the child (default rule, no branch choosing for it). A mapped node's
        # message only expands it; its child waits for every instance.
        if (len(kids) == 1 and len(upstream[kids[0]]) == 1 and n not in branching
                and n not in map_over and rules[kids[0]] == TriggerRule.ALL_SUCCESS):
            length = depth.get(n, 1)
            if length < MAX_SEGMENT:
                chain_next[n] = kids[0]
                depth[kids[0]] = length + 1
    return Plan(dag.id, order, upstream, downstream, chain_next, rules, map_over,
                max_active_runs=dag.max_active_runs,
                outlets={t.id: t.outlets for t in dag.tasks if t.outlets},
                slots={t.id: Slot(_pool(t.pool), t.pool_slots) for t in dag.tasks
                       if _pool(t.pool) is not None or t.pool_slots != 1},
                priority={t.id: t.priority for t in dag.tasks if t.priority},
                max_active_tasks=dag.max_active_tasks,
                alerts=notify.Alerts.of(dag.notify, _named(dag.callbacks),
                                        {t.id: _named(t.callbacks) for t in dag.tasks},
                                        dag.deadline))


def _named(callbacks: dict[notify.CallbackKind, str]) -> dict[str, str]:
    return {str(kind): path for kind, path in callbacks.items()}


def _pool(name: str | None) -> str | None:
    return None if name == DEFAULT_POOL else name


def _topological(upstream: dict[str, tuple[str, ...]],
                 downstream: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    indeg = {n: len(u) for n, u in upstream.items()}
    ready = deque(n for n, k in indeg.items() if k == 0)
    order: list[str] = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for c in downstream[n]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    if len(order) != len(upstream):  # spec.check rejects cycles first; this guards misuse
        cycle = cycles.find_cycle(upstream) or []
        raise errors.CycleError(cycle)
    return tuple(order)
