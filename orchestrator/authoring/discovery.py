"""Find the DAGs in a folder: ``*.py`` files with ``@dag`` objects, ``*.yaml``/``*.yml`` files.

The folder goes on ``sys.path`` (as Airflow does with its DAGs folder), so a task in
``dags/etl.py`` imports as ``etl:extract`` in every process that loads the same folder,
and YAML DAGs can name helpers that live beside them. A broken file does not hide the
others: its error is kept in :attr:`DagBag.errors` (file path -> :class:`~errors.DagError`)
and reported by ``dags validate``, ``dags list`` and :meth:`Client.dag_errors`. Whatever a
file does when imported, even ``os._exit`` or hanging, stays that file's error: Python
files run first in a child process (:mod:`~orchestrator.authoring.isolation`), and YAML
files are bounded before they are read and built (:mod:`~orchestrator.authoring.yaml_loader`).

:meth:`DagBag.refresh` looks again: new and changed files are loaded (a changed Python
file is executed afresh from its source), removed ones dropped, unchanged ones kept.
Workers call it when a message names a task or a DAG version they do not know; only
files that changed go through the child process again.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path

from orchestrator import errors
from orchestrator import settings as settings_
from orchestrator.authoring import isolation, yaml_dags
from orchestrator.authoring import python as authoring
from orchestrator.execution import operators
from orchestrator.model import spec
from orchestrator.model.compiled import CompiledDag

_DEFAULTS = settings_.DagSettings.model_fields
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
    max_tasks: int = _DEFAULTS["max_tasks"].default
    import_timeout: float = _DEFAULTS["import_timeout"].default
    max_file_bytes: int = _DEFAULTS["max_file_bytes"].default
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
        refused = self._isolate({f: files[f] for f in changed})
        for f in sorted(changed):
            self._files[f] = (
                _Loaded(files[f], [], errors.DagError(refused[f], source=str(f)))
                if f in refused else _load(f, files[f], self.max_tasks, self.max_file_bytes))
        operators.resolve.cache_clear()  # a module run again has new functions
        self._merge()
        return True

    def _isolate(self, changed: dict[Path, _Stamp]) -> dict[Path, str]:
        """The Python files this process would execute, run in a child first: those that
        ended or outlasted it, with why."""
        runs = sorted(f for f, stamp in changed.items() if f.suffix == ".py"
                      and stamp[1] <= self.max_file_bytes and _would_execute(f, stamp))
        if not runs:
            return {}
        return isolation.check([(f, f.stem) for f in runs], self.path, self.import_timeout)

    def _merge(self) -> None:
        # Built aside and swapped in at once: a server thread reading the bag while
        # another rescans never sees it empty.
        dags: dict[str, CompiledDag] = {}
        errs: dict[str, errors.DagError] = {}
        for file, loaded in sorted(self._files.items()):
            if loaded.error is not None:
                errs[str(file)] = loaded.error
                continue
            for d in loaded.dags:
                existing = dags.get(d.id)
                if existing is not None and existing.spec is d.spec:
                    continue  # the same DAG object, aliased or imported by another file
                if existing is not None:
                    errs[str(file)] = errors.DagError(
                        f"DAG id {d.id!r} is also defined in {existing.spec.source}",
                        source=str(file))
                    continue
                dags[d.id] = d
        self.dags, self.errors = dags, errs


def load(path: Path | str, *, max_tasks: int = _DEFAULTS["max_tasks"].default,
         import_timeout: float = _DEFAULTS["import_timeout"].default,
         max_file_bytes: int = _DEFAULTS["max_file_bytes"].default) -> DagBag:
    bag = DagBag(Path(path).resolve(), max_tasks, import_timeout, max_file_bytes)
    bag.refresh()
    return bag


def load_configured(dags: settings_.DagSettings, path: Path | str | None = None) -> DagBag:
    """The folder ``ORCH_DAGS_PATH`` (or ``path``) under the configured limits."""
    return load(dags.path if path is None else path, max_tasks=dags.max_tasks,
                import_timeout=dags.import_timeout, max_file_bytes=dags.max_file_bytes)


def _would_execute(file: Path, stamp: _Stamp) -> bool:
    """Whether loading runs the file's code in this process (a module it ran before
    from the same content is reused; one of another file is refused unrun)."""
    existing = sys.modules.get(file.stem)
    if existing is None:
        return True
    return (Path(getattr(existing, "__file__", "") or "").resolve() == file
            and _executed.get(file) != stamp)


def _load(file: Path, stamp: _Stamp, max_tasks: int, max_bytes: int) -> _Loaded:
    try:
        return _Loaded(stamp, [CompiledDag.of(s) for s in
                               _load_file(file, stamp, max_tasks, max_bytes)])
    except errors.DagError as exc:
        return _Loaded(stamp, [], exc)
    except (OSError, RecursionError, MemoryError) as exc:  # unreadable, or past a bound
        return _Loaded(stamp, [], errors.DagError(f"failed to load: {type(exc).__name__}: "
                                                  f"{exc}", source=str(file)))


def _load_file(file: Path, stamp: _Stamp, max_tasks: int,
               max_bytes: int) -> list[spec.DagSpec]:
    if file.suffix in (".yaml", ".yml"):
        return [yaml_dags.load_file(file, max_tasks=max_tasks, max_bytes=max_bytes)]
    if file.suffix != ".py":
        return []
    if stamp[1] > max_bytes:
        raise errors.DagError(f"is {stamp[1]} bytes, more than the limit of {max_bytes} "
                              "(ORCH_MAX_DAG_FILE_BYTES)", source=str(file))
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
        raise errors.DagError(str(exc), source=str(file), line=_line_in(file, exc)) from exc
    except BaseException as exc:  # even SystemExit or KeyboardInterrupt is this file's error
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise errors.DagError(f"failed to import: {what}", source=str(file),
                              line=_line_in(file, exc)) from exc
    found = [v.spec for v in vars(module).values() if isinstance(v, authoring.Dag)]
    for s in found:  # Python DAGs are built at import, before the folder's limit is known
        if len(s.tasks) > max_tasks:
            raise errors.DagError(f"has {len(s.tasks)} tasks, more than the limit {max_tasks}",
                                  dag_id=s.id, source=str(file))
    return found


def _line_in(file: Path, exc: BaseException) -> int | None:
    """The line of ``file`` the failure came from: a syntax error's, or the deepest
    frame of the traceback in that file."""
    if isinstance(exc, SyntaxError) and exc.filename == str(file):
        return exc.lineno
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == str(file):
            line = lineno
    return line


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
