"""Celery workers: the app, the task runtime and its heartbeat."""
