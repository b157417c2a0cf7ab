"""Reading the broker's MONITOR lines for deliver_twice: arguments unescaped as the server
escaped them, and task messages told from anything else (pure: no broker here; the
example project's tests duplicate a message on a real one)."""

from __future__ import annotations

import base64
import json

from orchestrator.transport.redelivery import Redelivery, arguments


def _line(*args: bytes) -> bytes:
    """A MONITOR line as Valkey writes it (sdscatrepr: \\" \\\\ \\n \\r \\t \\a \\b \\xHH)."""
    def quoted(a: bytes) -> bytes:
        out = bytearray(b'"')
        for c in a:
            if c in b'"\\':
                out += b"\\" + bytes([c])
            elif c in b"\n\r\t\a\b":
                out += {10: b"\\n", 13: b"\\r", 9: b"\\t", 7: b"\\a", 8: b"\\b"}[c]
            elif 32 <= c < 127:
                out.append(c)
            else:
                out += b"\\x%02x" % c
        return bytes(out + b'"')

    return b"1796321055.126721 [0 127.0.0.1:52134] " + b" ".join(quoted(a) for a in args)


def _message(kwargs: dict[str, object], task: str = "d.t") -> bytes:
    body = base64.b64encode(json.dumps([[], kwargs, {}]).encode()).decode()
    return json.dumps({"body": body, "headers": {"task": task, "id": "x"},
                       "properties": {"body_encoding": "base64", "delivery_tag": "tag-1"},
                       "content-type": "application/json"}).encode()


def test_arguments_are_unescaped_byte_for_byte() -> None:
    tricky = 'q"uo\\te é\n\r\t\a\b\x00'.encode()
    assert arguments(_line(b"LPUSH", b"queue\x06\x163", tricky)) == [
        b"LPUSH", b"queue\x06\x163", tricky]
    assert arguments(_line()) == []
    assert arguments(b"not a monitor line") == []


def test_only_a_push_of_the_wanted_tasks_message_matches() -> None:
    r = Redelivery("redis://127.0.0.1:1/0", "charge", dag_id="shop")
    wanted = _message({"dag": "shop", "task": "charge", "run": "r1", "attempt": 1})
    found = r._match(_line(b"LPUSH", b"q", wanted))
    assert found is not None and found[0] == b"q"
    assert found[1]["properties"]["delivery_tag"] == "tag-1"
    for line in (
            _line(b"GET", b"q", wanted),  # not a push
            _line(b"LPUSH", b"q", _message({"dag": "shop", "task": "refund", "run": "r1"})),
            _line(b"LPUSH", b"q", _message({"dag": "other", "task": "charge", "run": "r1"})),
            _line(b"LPUSH", b"q", b"not json"),
            _line(b"LPUSH", b"q", json.dumps({"headers": {}}).encode())):
        assert r._match(line) is None
