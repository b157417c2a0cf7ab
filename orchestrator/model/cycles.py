"""Pure: find a cycle in a dependency mapping (DAG validation and planning)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return one cycle as ``[a, b, ..., a]`` (in dependency direction), or None."""
    indeg = {n: 0 for n in deps}
    children: dict[str, list[str]] = {n: [] for n in deps}
    for n, ds in deps.items():
        for d in ds:
            if d in indeg:
                indeg[n] += 1
                children[d].append(n)
    ready = [n for n, k in indeg.items() if k == 0]
    while ready:
        n = ready.pop()
        for c in children[n]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    left = {n for n, k in indeg.items() if k > 0}
    if not left:
        return None
    # Every node left has a parent that is left too, so walking parents must revisit one.
    node = min(left)
    path: list[str] = []
    index: dict[str, int] = {}
    while node not in index:
        index[node] = len(path)
        path.append(node)
        node = next(d for d in sorted(deps[node]) if d in left)
    cycle = path[index[node]:]
    cycle.reverse()  # parents were walked; report upstream -> downstream
    return [*cycle, cycle[0]]
