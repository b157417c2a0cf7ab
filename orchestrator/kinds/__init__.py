"""Task kinds that talk to users' own systems: ``sql`` (SQLAlchemy on a named connection)
and ``http`` (httpx). Each module has ``run(task, values, ctx, secret)``, which
``execution.operators`` imports by name when such a task first runs. They never touch
the state database or the broker."""
