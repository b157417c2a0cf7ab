"""Captures what a task body prints and logs, per attempt, into the state database.

While a body runs, ``sys.stdout`` and ``sys.stderr`` are streams of ours and a handler
of ours sits on the root logger; both route to the buffer of the attempt running in the
writing thread (in a prefork child, the one attempt running: threads the body started
count too). A background flusher, one per worker process and started at the first byte
a body writes, moves complete lines to ``log_chunks`` at least every flush interval, or
as soon as 64 KiB is buffered; the attempt's last flush, partial line included, comes
before its outcome is recorded. Every chunk is masked before it leaves the process.

A body that writes nothing costs two attribute swaps and a handler added and removed:
no thread is started or woken, nothing is written.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from orchestrator.model.records import truncation_marker
from orchestrator.observability.masking import Masker, process_masker
from orchestrator.settings import Settings
from orchestrator.store import Store

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
"""A flush happens as soon as this much is buffered, and no chunk is longer."""
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOT_THE_TASKS = frozenset({"orchestrator", "workers", "celery", "kombu", "billiard", "amqp"})
"""Loggers of the orchestrator and of Celery: their records belong to the worker's own
log, not to the task's."""

_DATA, _FULL = 1, 2


def _size(text: str) -> int:
    # isascii() is O(1) in CPython: the common case never encodes.
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def _cut(text: str, limit: int) -> tuple[str, str]:
    """``text`` split where its first ``limit`` UTF-8 bytes end (never inside a
    character; at the last line end before that when there is one)."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text, ""
    end = limit
    while end > 0 and (raw[end] & 0xC0) == 0x80:
        end -= 1  # a continuation byte: back to the start of its character
    line_end = raw.rfind(b"\n", 0, end) + 1
    end = line_end or end
    return raw[:end].decode("utf-8", "replace"), raw[end:].decode("utf-8", "replace")


class AttemptLog:
    """One attempt's buffer: what was written and not yet flushed, and its cap."""

    def __init__(self, run_id: str, task_id: str, attempt: int, *, masker: Masker,
                 max_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.key = (run_id, task_id, attempt)
        self.masker = masker
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self.written = 0
        """Bytes stored so far (the cap counts these)."""
        self.closed = False
        """Truncated, or its attempt ended elsewhere: nothing more is kept."""
        self.touched = False
        """Something was written: the attempt's end must flush (and wait for a flush)."""
        self.flush_lock = threading.Lock()
        """Held while a flush takes and writes chunks, so sequence numbers keep order."""
        self._parts: list[str] = []
        self._pending = 0
        self._seq = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Buffer ``text``; 0, or _DATA, or _FULL (a chunk's worth is waiting)."""
        if self.closed or not text:
            return 0
        n = _size(text)
        with self._lock:
            if self.written + self._pending > self.max_bytes + self.chunk_bytes:
                return _FULL  # past the cap anyway: the flush truncates, memory stays bounded
            self._parts.append(text)
            self._pending += n
            self.touched = True
            return _FULL if self._pending >= self.chunk_bytes else _DATA

    def take(self, final: bool) -> list[tuple[int, str]]:
        """The chunks to write now, numbered: complete lines; everything once a chunk's
        worth is buffered, or at the end (``final``); then the truncation marker once
        the cap is reached."""
        with self._lock:
            if self.closed or not self._parts:
                return []
            text = "".join(self._parts)
            cut = len(text)
            if not final:
                cut = text.rfind("\n") + 1
                if self._pending >= self.chunk_bytes:
                    # A long partial line goes too, but for the tail a secret cut in two
                    # would start with: it is masked with what comes next.
                    cut = max(cut, len(text) - max(self.masker.longest - 1, 0))
            keep = text[cut:]
            self._parts = [keep] if keep else []
            self._pending = _size(keep)
        chunks: list[str] = []
        rest = self.masker.mask(text[:cut])
        while rest and not self.closed:
            piece, rest = _cut(rest, min(self.chunk_bytes, self.max_bytes - self.written))
            if piece:
                chunks.append(piece)
                self.written += _size(piece)
            # Nothing fitted (not even one character) or the cap is reached: the end.
            if rest and (not piece or self.written >= self.max_bytes):
                chunks.append(truncation_marker(self.max_bytes))
                self.close()
        numbered = []
        for chunk in chunks:
            self._seq += 1
            numbered.append((self._seq, chunk))
        return numbered

    def close(self) -> None:
        self.closed = True
        with self._lock:
            self._parts, self._pending = [], 0


class _Stream(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr`` while a body runs: into the writing attempt's
    buffer, or to the stream it replaced for any other thread."""

    def __init__(self, capture: LogCapture, original: TextIO) -> None:
        super().__init__()
        self._capture = capture
        self.original = original

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def name(self) -> str:
        return str(getattr(self.original, "name", "<orchestrator capture>"))

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        target = self._capture.route()
        if target is None:
            return self.original.write(s)
        self._capture.write(target, s)
        return len(s)

    def flush(self) -> None:
        if self._capture.route() is None:
            self.original.flush()

    def for_this_thread(self) -> TextIO:
        """A writer for other threads writing on this one's behalf (a shell task's
        output readers): into this thread's attempt, whichever thread writes."""
        target = self._capture.route()
        return self if target is None else _Bound(self._capture, target)  # type: ignore[return-value]

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.original.fileno()  # faulthandler and the like write to the fd itself

    @property
    def buffer(self) -> _Bytes:
        return _Bytes(self)


class _Bound:
    """Writes into one attempt's buffer (see ``_Stream.for_this_thread``)."""

    def __init__(self, capture: LogCapture, target: AttemptLog) -> None:
        self._capture = capture
        self._target = target

    def write(self, s: str) -> int:
        self._capture.write(self._target, s)
        return len(s)

    def flush(self) -> None:
        pass


class _Bytes:
    """``sys.stdout.buffer`` for code that writes bytes: decoded as UTF-8."""

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    def write(self, b: bytes) -> int:
        self._stream.write(bytes(b).decode("utf-8", "replace"))
        return len(b)

    def flush(self) -> None:
        self._stream.flush()


class _Handler(logging.Handler):
    """On the root logger while a body runs: its records into the attempt's buffer."""

    def __init__(self, capture: LogCapture) -> None:
        super().__init__()
        self._capture = capture
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.partition(".")[0] in NOT_THE_TASKS:
            return
        target = self._capture.route(record.thread)
        if target is None:
            return
        try:
            self._capture.write(target, self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _MaskRecords(logging.Filter):
    """On the worker's own log handlers (Celery's, on the root logger): a body's record
    reaches them too, through propagation, so it is masked with its attempt's masker
    (the process's outside an attempt) before any of them writes it."""

    def __init__(self, capture: LogCapture) -> None:
        super().__init__()
        self._capture = capture

    def filter(self, record: logging.LogRecord) -> bool:
        target = self._capture.route(record.thread)
        masker = target.masker if target is not None else self._capture.masker
        try:
            text = record.getMessage()
        except Exception:  # a bad format string: the handler reports it as it would
            return True
        masked = masker.mask(text)
        if masked != text:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = masker.mask(record.exc_text)
        return True


class LogCapture:
    """The capture of one worker process (built after the fork, like the heartbeat)."""

    def __init__(self, store: Store, settings: Settings, masker: Masker | None = None,
                 ) -> None:
        self.store = store
        self.interval = settings.logs.flush_interval
        self.max_bytes = settings.logs.max_bytes
        self.masker = masker if masker is not None else process_masker(settings)
        self._active: dict[int, AttemptLog] = {}
        self._only: AttemptLog | None = None
        self._lock = threading.Lock()
        self._data = threading.Event()
        self._full = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved: tuple[Any, Any] | None = None
        self._handler = _Handler(self)
        self._mask_records = _MaskRecords(self)
        # Made once: a body's start only points them at the streams they replace.
        self._out = _Stream(self, sys.stdout)
        self._err = _Stream(self, sys.stderr)

    # -- routing ---------------------------------------------------------------------------

    def route(self, thread: int | None = None) -> AttemptLog | None:
        """The attempt a write from ``thread`` (this one when None) belongs to."""
        found = self._active.get(threading.get_ident() if thread is None else thread)
        return found if found is not None else self._only

    def write(self, target: AttemptLog, text: str) -> None:
        signal = target.write(text)
        if not signal:
            return
        if self._thread is None:
            self._start_flusher()
        if signal == _FULL:
            self._full.set()
            self._data.set()
        elif not self._data.is_set():
            self._data.set()

    # -- an attempt ------------------------------------------------------------------------

    @contextmanager
    def attempt(self, run_id: str, task_id: str, attempt: int,
                masker: Masker | None = None) -> Iterator[AttemptLog]:
        """Capture the body run inside; its last chunks are written when it exits.
        ``masker``: the attempt's own (its secrets on top of the process's)."""
        target = self.start(run_id, task_id, attempt, masker)
        try:
            yield target
        finally:
            self.stop(target)

    def start(self, run_id: str, task_id: str, attempt: int,
              masker: Masker | None = None) -> AttemptLog:
        target = AttemptLog(run_id, task_id, attempt,
                            masker=self.masker if masker is None else masker,
                            max_bytes=self.max_bytes)
        with self._lock:
            self._active[threading.get_ident()] = target
            self._only = target if len(self._active) == 1 else None
            if self._saved is None:
                # (Ours still there: a body swapped streams and put ours back late.)
                if sys.stdout is not self._out:
                    self._out.original = sys.stdout
                if sys.stderr is not self._err:
                    self._err.original = sys.stderr
                self._saved = (self._out.original, self._err.original)
                sys.stdout, sys.stderr = self._out, self._err
                root = logging.getLogger()
                for handler in root.handlers:
                    if self._mask_records not in handler.filters:
                        handler.addFilter(self._mask_records)
                root.addHandler(self._handler)
        return target

    def stop(self, target: AttemptLog) -> None:
        """Stop routing to ``target`` and write what it still holds (never raises)."""
        with self._lock:
            me = threading.get_ident()
            if self._active.get(me) is target:
                del self._active[me]
            left = list(self._active.values())
            self._only = left[0] if len(left) == 1 else None
            if not left and self._saved is not None:
                # Unless the body put streams of its own there meanwhile.
                if sys.stdout is self._out:
                    sys.stdout = self._saved[0]
                if sys.stderr is self._err:
                    sys.stderr = self._saved[1]
                logging.getLogger().removeHandler(self._handler)
                self._saved = None
        if target.touched:  # waits for a flush the flusher may be in the middle of
            self._flush(target, final=True)

    # -- flushing --------------------------------------------------------------------------

    def _start_flusher(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="orchestrator-log-flusher")
                self._thread.start()

    def _loop(self) -> None:
        while True:
            self._data.wait()  # idle: no timeout, so a quiet worker is never woken
            self._full.wait(self.interval)
            # Cleared before taking: a write from now on sets them again for next time.
            self._data.clear()
            self._full.clear()
            with self._lock:
                targets = list(self._active.values())
            for target in targets:
                self._flush(target, final=False)

    def _flush(self, target: AttemptLog, final: bool) -> None:
        with target.flush_lock:
            try:
                chunks = target.take(final)
            except Exception:  # a bug here must not fail the task
                log.exception("could not take the log of %s", target.key)
                return
            for seq, data in chunks:
                try:
                    kept = self.store.append_log(*target.key, seq, data)
                except Exception as exc:  # the database is away: this flush is lost
                    log.warning("could not write the log of %s (chunk %d): %s", target.key,
                                seq, self.store.describe(exc))
                    return  # the next flush tries again, rather than each chunk waiting
                if not kept:  # the attempt ended elsewhere (taken over, cancelled)
                    target.close()
                    return
