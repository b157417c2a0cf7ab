"""The only Celery and Redis code: configuration, dispatch of node attempts, wake-ups."""
