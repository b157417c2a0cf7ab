"""Messages as an attacker sends them: bytes pushed straight onto a worker's queue in
kombu's Redis format (a JSON envelope whose body is base64), and Hypothesis strategies
for hostile ones. Nothing here goes through Celery's producer."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import redis
from hypothesis import strategies as st

from orchestrator.transport.signing import Signer


def celery_headers(name: Any, task_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """The headers Celery 5 (task protocol 2) puts on a task message."""
    headers: dict[str, Any] = {
        "lang": "py", "task": name, "id": task_id or str(uuid.uuid4()), "shadow": None,
        "eta": None, "expires": None, "group": None, "group_index": None, "retries": 0,
        "timelimit": [None, None], "root_id": None, "parent_id": None, "argsrepr": "()",
        "kwargsrepr": "{}", "origin": "attacker@nowhere", "ignore_result": None,
        "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}}
    headers.update(changes)
    return headers


def body(kwargs: Any, args: Any = (), embed: Any = None) -> bytes:
    embed = embed if embed is not None else {"callbacks": None, "errbacks": None,
                                             "chain": None, "chord": None}
    return json.dumps([list(args), kwargs, embed]).encode()


def envelope(body_bytes: bytes, headers: Any, queue: str, *,
             content_type: Any = "application/json", encoding: Any = "utf-8",
             properties: Any = None) -> bytes:
    """One item of a kombu Redis queue."""
    props = properties if properties is not None else {
        "correlation_id": str(uuid.uuid4()), "reply_to": "", "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
        "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())}
    return json.dumps({"body": base64.b64encode(body_bytes).decode(),
                       "content-encoding": encoding, "content-type": content_type,
                       "headers": headers, "properties": props}).encode()


def task_message(queue: str, name: Any, kwargs: Any, **headers: Any) -> bytes:
    return envelope(body(kwargs), celery_headers(name, **headers), queue)


def signed_kwargs(signer: Signer, name: str, dag: Any, task: Any, run: Any,
                  attempt: Any) -> dict[str, Any]:
    """Kwargs whose signature matches their text, whatever the types (``"1"`` signs as
    ``1`` would): the worker must refuse a wrong type before it looks at a signature."""
    return {"dag": dag, "task": task, "run": run, "attempt": attempt,
            "sig": signer.task(name, str(dag), str(task), str(run), attempt)}


def push(r: redis.Redis, queue: str, items: list[bytes]) -> None:
    if items:
        r.lpush(queue, *items)


# -- Hypothesis ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8)

BAD_ATTEMPTS = ["1", True, False, 1.0, 0, -1, 2**31, 2**64, None, [1], {"n": 1}, "01"]
HUGE = [b" " * (2 * 1024 * 1024), b"[" * 200_000, json.dumps(["x" * (2 * 1024 * 1024)]).encode()]


@st.composite
def kwargs_shapes(draw: st.DrawFn, run_ids: list[str]) -> Any:
    """Kwargs close to ours (each one field wrong or unsigned), or anything at all."""
    good = {"dag": draw(st.sampled_from(["chain20", "killme", "nodag"])),
            "task": draw(st.sampled_from(["inc", "first", "inc__3", "sq[2]", "nope"])),
            "run": draw(st.sampled_from(run_ids) | st.text(max_size=40)),
            "attempt": draw(st.sampled_from([1, 2]) | st.sampled_from(BAD_ATTEMPTS)),
            "sig": draw(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
                        | json_values)}
    if draw(st.booleans()):
        good.pop(draw(st.sampled_from(sorted(good))))
    if draw(st.booleans()):
        good[draw(st.sampled_from(["extra", "dag", "task", "run"]))] = draw(json_values)
    return draw(st.just(good) | json_values)


@st.composite
def bodies(draw: st.DrawFn, run_ids: list[str]) -> bytes:
    kwargs = kwargs_shapes(run_ids)
    choice = draw(st.integers(0, 6))
    if choice == 0:  # [args, kwargs, embed] of the right length, wrong contents
        return body(draw(kwargs), draw(st.lists(json_values, max_size=2)),
                    draw(json_values | st.just({"chain": draw(json_values)})))
    if choice == 1:  # a list of the wrong length
        return json.dumps(draw(st.lists(json_values, max_size=5).filter(
            lambda v: len(v) != 3))).encode()
    if choice == 2:  # JSON that is not a list
        return json.dumps(draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3)
                               | st.text(max_size=20) | st.integers())).encode()
    if choice == 3:  # not JSON at all
        return draw(st.binary(max_size=64))
    if choice == 4:
        return draw(st.sampled_from(HUGE))
    return body(draw(kwargs))


@st.composite
def headers(draw: st.DrawFn, names: list[Any]) -> Any:
    name = draw(st.sampled_from(names) | st.text(max_size=30) | json_values)
    h = celery_headers(name)
    for key in draw(st.lists(st.sampled_from([*sorted(h), "compression"]), max_size=3)):
        if draw(st.booleans()):
            h.pop(key, None)
        else:
            h[key] = draw(json_values | st.sampled_from(
                ["garbage", "9999-99-99T99:99:99", [0.001, "x"], [-1, None], "application/zlib"]))
    return h if draw(st.integers(0, 9)) else draw(json_values)


CONTENT_TYPES = ["application/json", "application/json", "application/x-python-serialize",
                 "application/x-yaml", "application/data", "text/plain", "", None, 7]
ENCODINGS = ["utf-8", "utf-8", "binary", "latin-1", "rot13", None, 0]


@st.composite
def hostile_items(draw: st.DrawFn, queue: str, names: list[Any], run_ids: list[str]) -> bytes:
    """One queue item: a malformed task message, or something that is not a kombu
    message at all."""
    if draw(st.integers(0, 7)) == 0:
        return draw(envelopes_that_are_not(queue))
    return envelope(draw(bodies(run_ids)), draw(headers(names)), queue,
                    content_type=draw(st.sampled_from(CONTENT_TYPES)),
                    encoding=draw(st.sampled_from(ENCODINGS)))


@st.composite
def envelopes_that_are_not(draw: st.DrawFn, queue: str) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=40))
    if choice == 1:
        return json.dumps(draw(json_values)).encode()
    props: dict[str, Any] = {"delivery_info": {"exchange": "", "routing_key": queue},
                             "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())}
    key = draw(st.sampled_from(sorted(props)))
    props[key] = draw(json_values | st.sampled_from(["rot13", [1], {"a": 1}]))
    if choice == 2:
        return json.dumps({"body": "!!not base64!!", "headers": {}, "properties": props,
                           "content-type": "application/json",
                           "content-encoding": "utf-8"}).encode()
    return envelope(body({}), {"task": "x.y", "id": "1", "compression": "application/x-gzip"},
                    queue, properties=draw(st.just(props) | json_values))
