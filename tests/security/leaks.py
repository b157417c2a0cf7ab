"""Where secrets could leak to, gathered as text to search: the argv of every process a test
started (sampled while they run), every row of the state database, every key of a broker,
and a search that names each secret and where it showed."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import redis
import sqlalchemy as sa

from orchestrator.store.engine import make_engine


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # the command name may hold spaces and parentheses: the ppid follows the last ')'
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def descendants(root: int) -> list[int]:
    children, found, todo = _children(), [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class ArgvWatch:
    """Records the command line of every descendant of this process, over and over, until
    stopped: each worker, pool process, coordinator, Flower, broker and CLI run we start."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ArgvWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def sample(self) -> None:
        for pid in descendants(os.getpid()):
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if raw:
                self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace").strip())

    def saw(self, fragment: str) -> bool:
        return any(fragment in cmd for cmd in self.seen)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.1)


def dump_database(url: str) -> str:
    """Every row of every table, as text."""
    engine = make_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        lines = []
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                lines += [f"{table.name}: {tuple(row)!r}" for row in conn.execute(sa.select(table))]
        return "\n".join(lines)
    finally:
        engine.dispose()


def dump_broker(url: str) -> str:
    """Every key of the broker with its value (queues, unacknowledged messages, ...)."""
    r = redis.Redis.from_url(url)
    try:
        lines = []
        for key in r.scan_iter(count=1000):
            lines.append(f"{key!r}: {_value(r, key)!r}")
        return "\n".join(lines)
    finally:
        r.close()


def _value(r: redis.Redis, key: bytes) -> object:
    raw = r.type(key)
    kind = raw.decode() if isinstance(raw, bytes) else str(raw)
    if kind == "string":
        return r.get(key)
    if kind == "list":
        return r.lrange(key, 0, -1)
    if kind == "hash":
        return r.hgetall(key)
    if kind == "set":
        return r.smembers(key)
    if kind == "zset":
        return r.zrange(key, 0, -1, withscores=True)
    return kind


def find(secrets: Mapping[str, str], places: Iterable[tuple[str, str]]) -> list[str]:
    """``"<secret name> in <place>"`` for every secret that shows anywhere."""
    return [f"{name} in {where}" for where, text in places
            for name, secret in secrets.items() if secret and secret in text]
