"""Benchmarks: the orchestrator against raw Celery on the same broker (``make bench``)."""
