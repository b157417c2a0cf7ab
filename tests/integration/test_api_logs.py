"""An attempt's log through the API while it runs and after: JSON chunks by sequence
number, and Server-Sent Events that follow it live, end once it has ended, and resume
after Last-Event-ID (or ``after``) with only the later chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from orchestrator.client import Client
from tests.api_support import API, api, problem, token
from tests.support import Ledger, wait_until

pytestmark = pytest.mark.integration


@dataclass
class Event:
    name: str = "message"
    id: str | None = None
    data: list[str] = field(default_factory=list)

    @property
    def body(self) -> Any:
        return json.loads("\n".join(self.data))


def events(response: httpx.Response) -> Iterator[Event]:
    """The stream's events as they arrive (comments skipped)."""
    current = Event()
    for line in response.iter_lines():
        if not line:
            if current.data:
                yield current
            current = Event()
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                current.name = value
            elif name == "id":
                current.id = value
            elif name == "data":
                current.data.append(value)


def _stream(http: httpx.Client, run_id: str, **kwargs: Any) -> list[Event]:
    """A whole stream of a finished attempt: its events up to and with `end`."""
    with http.stream("GET", f"{API}/runs/{run_id}/tasks/chatty/logs/stream", **kwargs) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        got = []
        for e in events(r):
            got.append(e)
            if e.name == "end":
                return got
    raise AssertionError(f"the stream ended without an end event: {got}")


def test_a_log_read_and_followed_while_it_runs_then_resumed(client: Client,
                                                             ledger: Ledger) -> None:
    with api(client, token(client, "viewer")) as http:
        run_id = client.submit("api_logs", {"lines": 3})
        logs = f"{API}/runs/{run_id}/tasks/chatty/logs"

        def printed() -> dict[str, Any] | None:
            r = http.get(logs)
            if r.status_code == 404:  # no attempt yet
                return None
            body: dict[str, Any] = r.json()
            return body if "before the gate 2" in "".join(c["data"] for c in body["chunks"]) \
                else None

        page = wait_until(printed, timeout=60, what="the first lines in the log")
        assert page["attempt"] == 1 and page["outcome"] == "running"
        assert page["complete"] is False
        seqs = [c["seq"] for c in page["chunks"]]
        assert seqs == list(range(1, len(seqs) + 1))
        text = "".join(c["data"] for c in page["chunks"])
        assert text == "".join(f"before the gate {i}\n" for i in range(3))
        assert page["next_after"] == seqs[-1]
        rest = http.get(logs, params={"after": seqs[-1]}).json()
        assert rest["chunks"] == [] and rest["next_after"] == seqs[-1]

        # followed live: the lines so far, then the one printed after the gate opens
        with http.stream("GET", f"{logs}/stream") as r:
            assert r.status_code == 200
            stream = events(r)
            first = [next(stream) for _ in seqs]
            assert [e.id for e in first] == [str(s) for s in seqs]
            assert "".join(e.body["data"] for e in first) == text
            ledger.open_gate(run_id, "go")
            later = next(stream)
            assert later.name == "message" and later.body["data"] == "after the gate\n"
            assert int(later.id or 0) == seqs[-1] + 1
            end = next(stream)
            assert end.name == "end" and end.body == {"attempt": 1, "outcome": "success"}
        client.wait(run_id, timeout=60)

        whole = _stream(http, run_id)
        assert [e.id for e in whole[:-1]] == [str(s) for s in range(1, seqs[-1] + 2)]
        # resumed after the first chunk: only the later ones, then the end
        resumed = _stream(http, run_id, headers={"Last-Event-ID": "1"})
        assert [e.id for e in resumed[:-1]] == [str(s) for s in range(2, seqs[-1] + 2)]
        assert resumed[-1].name == "end"
        assert _stream(http, run_id, params={"after": seqs[-1]})[0].body["data"] == \
            "after the gate\n"
        # the header wins over the query, as it does when EventSource reconnects
        last = _stream(http, run_id, params={"after": 0},
                       headers={"Last-Event-ID": str(seqs[-1] + 1)})
        assert [e.name for e in last] == ["end"]
        done = http.get(logs).json()
        assert done["complete"] is True and done["outcome"] == "success"
        assert "".join(c["data"] for c in done["chunks"]) == text + "after the gate\n"
        assert http.get(logs, params={"attempt": 1, "limit": 1}).json()["complete"] is False

        problem(http.get(logs, params={"attempt": 2}), 404)
        problem(http.get(f"{API}/runs/{run_id}/tasks/nope/logs"), 404)
        problem(http.get(f"{API}/runs/{'0' * 32}/tasks/chatty/logs/stream"), 404)
        problem(http.get(f"{logs}/stream", headers={"Last-Event-ID": "x"}), 422)
        problem(http.get(logs, params={"after": -1}), 422)
