"""Find the DAGs in a folder: ``*.py`` files with ``@dag`` objects, ``*.yaml``/``*.yml`` files.

The folder goes on ``sys.path`` (as Airflow does with its DAGs folder), so a task in
``dags/etl.py`` imports as ``etl:extract`` in every process that loads the same folder,
and YAML DAGs can name helpers that live beside them. A broken file does not hide the
others: its error is kept in :attr:`DagBag.errors` and reported by ``dags validate``.

:meth:`DagBag.refresh` looks again: new and changed files are loaded (a changed Python
file is executed afresh from its source), removed ones dropped, unchanged ones kept.
Workers call it when a message names a task or a DAG version they do not know.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
from pathlib import Path

from orchestrator import errors
from orchestrator.authoring import python as authoring
from orchestrator.authoring import yaml_dags
from orchestrator.execution import operators
from orchestrator.model import spec
from orchestrator.model.compiled import CompiledDag

_Stamp = tuple[int, int]  # (mtime_ns, size): a file changed when either did

_executed: dict[Path, _Stamp] = {}
"""The stamp each Python DAG file had when this process last ran it: a later bag (a new
client, say) runs a file again only if it changed since."""


@dataclasses.dataclass
class _Loaded:
    stamp: _Stamp
    dags: list[CompiledDag]
    error: errors.DagError | None = None


@dataclasses.dataclass
class DagBag:
    path: Path
    max_tasks: int = 100_000
    dags: dict[str, CompiledDag] = dataclasses.field(default_factory=dict)
    errors: dict[str, errors.DagError] = dataclasses.field(default_factory=dict)
    _files: dict[Path, _Loaded] = dataclasses.field(default_factory=dict, repr=False)

    def get(self, dag_id: str) -> CompiledDag:
        try:
            return self.dags[dag_id]
        except KeyError:
            known = ", ".join(sorted(self.dags)) or "none"
            broken = f"; files that failed to load: {', '.join(self.errors)}" if self.errors else ""
            raise errors.UnknownDag(
                f"unknown DAG {dag_id!r} in {self.path} (known: {known}){broken}") from None

    def version_of(self, dag_id: str) -> str | None:
        found = self.dags.get(dag_id)
        return found.version if found is not None else None

    def refresh(self) -> bool:
        """Look at the folder again; True if any file was added, changed or removed."""
        if not self.path.is_dir():
            self.dags, self._files = {}, {}
            self.errors = {str(self.path): errors.DagError("DAG folder does not exist",
                                                           source=str(self.path))}
            return True
        if str(self.path) not in sys.path:
            sys.path.insert(0, str(self.path))
        files = {f: (st.st_mtime_ns, st.st_size) for f in sorted(self.path.iterdir())
                 if not f.name.startswith(("_", ".")) and f.is_file()
                 for st in [f.stat()]}
        changed = {f for f, stamp in files.items()
                   if f not in self._files or self._files[f].stamp != stamp}
        gone = set(self._files) - set(files)
        if not changed and not gone and self._files:
            return False
        for f in gone:
            del self._files[f]
        for f in sorted(changed):
            self._files[f] = _load(f, files[f], self.max_tasks)
        operators.resolve.cache_clear()  # a module run again has new functions
        self._merge()
        return True

    def _merge(self) -> None:
        self.dags, self.errors = {}, {}
        for file, loaded in sorted(self._files.items()):
            if loaded.error is not None:
                self.errors[str(file)] = loaded.error
                continue
            for d in loaded.dags:
                existing = self.dags.get(d.id)
                if existing is not None and existing.spec is d.spec:
                    continue  # the same DAG object, aliased or imported by another file
                if existing is not None:
                    self.errors[str(file)] = errors.DagError(
                        f"DAG id {d.id!r} is also defined in {existing.spec.source}",
                        source=str(file))
                    continue
                self.dags[d.id] = d


def load(path: Path | str, *, max_tasks: int = 100_000) -> DagBag:
    bag = DagBag(Path(path).resolve(), max_tasks)
    bag.refresh()
    return bag


def _load(file: Path, stamp: _Stamp, max_tasks: int) -> _Loaded:
    try:
        specs = _load_file(file, stamp, max_tasks)
    except errors.DagError as exc:
        return _Loaded(stamp, [], exc)
    return _Loaded(stamp, [CompiledDag.of(s) for s in specs])


def _load_file(file: Path, stamp: _Stamp, max_tasks: int) -> list[spec.DagSpec]:
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
        if existing is not None and _executed.get(file) != stamp:
            module = _execute_afresh(module_name, file)
        else:
            module = importlib.import_module(module_name)
        _executed[file] = stamp
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


def _execute_afresh(name: str, file: Path) -> object:
    """Run a changed file's current source as its module (never a cached .pyc, whose
    one-second timestamps can miss a quick edit); the old module stays if it fails."""
    old = sys.modules[name]
    found = importlib.util.spec_from_file_location(name, file)
    assert found is not None
    module = importlib.util.module_from_spec(found)
    code = compile(file.read_bytes(), str(file), "exec", dont_inherit=True)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules[name] = old
        raise
    return module
