"""The pure model: DAG specs, plans, states, trigger rules, retries, read views.

Nothing here does I/O or knows of Celery, Redis or SQL.
"""
