"""What signing and checking a task message cost per task, in microseconds (no broker).

``python -m benchmarks.message_checks``. Per task: the sender signs one signature (a
chain signs each link once, when it is sent); the worker's consumer checks the message
(its body decoded once, which Celery's request then reuses) and the task checks its call
again before the runtime runs.
"""

from __future__ import annotations

import json
import timeit
import uuid
from collections.abc import Callable

from kombu.message import Message

from orchestrator.authoring import discovery
from orchestrator.settings import Settings
from orchestrator.transport import dispatch
from orchestrator.transport.signing import Signer
from tests.support import TEST_DAGS, TEST_SIGNING_KEY
from workers import integrity

NUMBER = 20_000


def _best_us(fn: Callable[[], object]) -> float:
    return min(timeit.repeat(fn, number=NUMBER, repeat=5)) / NUMBER * 1e6


def main() -> None:
    url = "redis://127.0.0.1:1/0"
    settings = Settings.from_env({"ORCH_BROKER_URL": url, "ORCH_SIGNING_KEY": TEST_SIGNING_KEY})
    app = dispatch.make_producer_app(settings, url)
    dispatcher = dispatch.Dispatcher(app, settings)
    signer = Signer.of(settings)
    dag = discovery.load(TEST_DAGS).get("chain20")
    run = uuid.uuid4().hex
    head = dispatcher.segment(dag, run, "inc", {})  # the head of a 20-link chain
    first = head.tasks[0]
    chain = [dict(link) for link in reversed(head.tasks[1:])]
    name, kwargs = first.task, first.kwargs
    body = json.dumps([[], kwargs, {"callbacks": None, "errbacks": None, "chain": chain,
                                    "chord": None}]).encode()
    headers = {"lang": "py", "task": name, "id": str(uuid.uuid4()), "shadow": None,
               "eta": None, "expires": None, "group": None, "group_index": None,
               "retries": 0, "timelimit": [None, None], "root_id": None, "parent_id": None,
               "argsrepr": "()", "kwargsrepr": repr(kwargs), "origin": "bench",
               "ignore_result": None, "replaced_task_nesting": 0, "stamped_headers": None,
               "stamps": {}}
    message = Message(body=body, content_type="application/json", content_encoding="utf-8",
                      headers=headers, delivery_info={}, properties={})
    message.accept = {"application/json"}
    assert integrity.message_problem(message, app, signer) is None

    def sign() -> object:
        return signer.task(name, "chain20", "inc", run, 1)

    def signature_unsigned() -> object:
        return app.signature(name, kwargs=kwargs, immutable=True, queue="default")

    def consumer_check() -> object:
        return integrity.message_problem(message, app, signer)

    def task_check() -> object:
        return integrity.call_problem(name, kwargs, [None, None], signer)

    def decode() -> object:
        message._decoded_cache = None
        return message.payload

    rows = [("sign one message (HMAC-SHA256)", _best_us(sign)),
            ("for scale: build one Celery signature", _best_us(signature_unsigned)),
            ("consumer check, 20-link chain (body decoded)", _best_us(consumer_check)),
            ("for scale: decode that body (Celery does it anyway)", _best_us(decode)),
            ("task check (shape, name, signature)", _best_us(task_check))]
    for what, us in rows:
        print(f"{us:8.2f} us  {what}")
    per_task = rows[0][1] + rows[2][1] + rows[4][1]
    print(f"{per_task:8.2f} us  per task: sign + consumer check + task check")
    app.close()


if __name__ == "__main__":
    main()
