"""Find the DAGs in a folder: ``*.py`` files with ``@dag`` objects, ``*.yaml``/``*.yml`` files.

The folder goes on ``sys.path`` (as Airflow does with its DAGs folder), so a task in
``dags/etl.py`` imports as ``etl:extract`` in every process that loads the same folder,
and YAML DAGs can name helpers that live beside them. A broken file does not hide the
others: its error is kept in :attr:`DagBag.errors` and reported by ``dags validate``.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path

from orchestrator import errors
from orchestrator.authoring import python as authoring
from orchestrator.authoring import yaml_dags
from orchestrator.model import spec


@dataclasses.dataclass
class DagBag:
    path: Path
    dags: dict[str, spec.DagSpec]
    errors: dict[str, errors.DagError]

    def get(self, dag_id: str) -> spec.DagSpec:
        try:
            return self.dags[dag_id]
        except KeyError:
            known = ", ".join(sorted(self.dags)) or "none"
            broken = f"; files that failed to load: {', '.join(self.errors)}" if self.errors else ""
            raise errors.UnknownDag(
                f"unknown DAG {dag_id!r} in {self.path} (known: {known}){broken}") from None


def load(path: Path | str, *, max_tasks: int = 100_000) -> DagBag:
    folder = Path(path).resolve()
    bag = DagBag(folder, {}, {})
    if not folder.is_dir():
        bag.errors[str(folder)] = errors.DagError("DAG folder does not exist", source=str(folder))
        return bag
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    for file in sorted(folder.iterdir()):
        if file.name.startswith(("_", ".")) or not file.is_file():
            continue
        try:
            found = _load_file(file, max_tasks)
        except errors.DagError as exc:
            bag.errors[str(file)] = exc
            continue
        for s in found:
            if bag.dags.get(s.id) is s:
                continue  # the same DAG object, aliased or imported by another file
            if s.id in bag.dags:
                other = bag.dags[s.id].source
                bag.errors[str(file)] = errors.DagError(
                    f"DAG id {s.id!r} is also defined in {other}", source=str(file))
                continue
            bag.dags[s.id] = s
    return bag


def _load_file(file: Path, max_tasks: int) -> list[spec.DagSpec]:
    if file.suffix in (".yaml", ".yml"):
        return [yaml_dags.load_file(file, max_tasks=max_tasks)]
    if file.suffix != ".py":
        return []
    module_name = file.stem
    existing = sys.modules.get(module_name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() != file:
        raise errors.DagError(f"module name {module_name!r} is taken by "
                              f"{getattr(existing, '__file__', 'a built-in module')}; "
                              "rename the file", source=str(file))
    try:
        module = importlib.import_module(module_name)
    except errors.DagError as exc:
        if exc.source:
            raise
        raise errors.DagError(str(exc), source=str(file)) from exc
    except Exception as exc:  # any import failure is this file's error
        raise errors.DagError(f"failed to import: {type(exc).__name__}: {exc}",
                              source=str(file)) from exc
    found = [v.spec for v in vars(module).values() if isinstance(v, authoring.Dag)]
    for s in found:  # Python DAGs are built at import, before the folder's limit is known
        if len(s.tasks) > max_tasks:
            raise errors.DagError(f"has {len(s.tasks)} tasks, more than the limit {max_tasks}",
                                  dag_id=s.id, source=str(file))
    return found
