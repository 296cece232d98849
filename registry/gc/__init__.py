"""Garbage collection: review queues, the collector, and retention policies (``content/`` calls it; it calls
``db/`` and the storage backend)."""
