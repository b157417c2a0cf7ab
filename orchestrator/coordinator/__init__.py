"""The coordinator service: the reconciler (and, later, the scheduler and notifier)."""
