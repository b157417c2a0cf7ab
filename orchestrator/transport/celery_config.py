"""The Celery configuration shared by producers (client, coordinator) and workers."""

from __future__ import annotations

from typing import Any

from orchestrator.settings import Settings
from orchestrator.transport import tls


def celery_config(settings: Settings, broker_url: str) -> dict[str, Any]:
    return {
        "broker_url": broker_url,
        "broker_use_ssl": tls.broker_use_ssl(broker_url),
        # The state database is the result store: Celery's result backend would be the
        # single largest per-task cost (measured 2.1x) and we never read it.
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": settings.worker.default_queue,
        "broker_transport_options": {
            # Above the longest task timeout, or a healthy long task is redelivered again
            # and again while it runs.
            "visibility_timeout": settings.visibility_timeout,
            # kombu's defaults took ~84 s to bring back a lost message; sweep more often.
            "unacked_restore_interval": settings.broker.unacked_restore_interval,
            "unacked_restore_throttle": 1,
            "socket_timeout": 30,
            "health_check_interval": 10,
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # Events cost about a millisecond per task in the worker's main process (measured:
        # a third of its time on a wide fan-out). Flower enables them in the workers it
        # watches; `task_events` turns them on from the start.
        "worker_send_task_events": settings.worker.task_events,
        "task_send_sent_event": settings.worker.task_events,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_lost_wait": 10.0,
        "worker_hijack_root_logger": False,
    }
