"""Prometheus metrics, served by the debug server (``registry.events.debug``) when ``http.debug.prometheus.enabled``.

What a worker measures, it records in the metrics below: requests (``request_metrics``, an observer of the request
record), storage calls (``storage_metrics`` wraps the backend), database write transactions (``Database.observer``)
and collector runs (``Collector.observers``). Nothing is recorded, and nothing is wrapped, when metrics are off.

Several workers: ``registry serve`` makes a private directory per start and hands it to the workers in
``PROMETHEUS_MULTIPROC_DIR`` before they start (``registry.events.debug.DebugServer``), so every worker's values live in
memory-mapped files there; the debug server, in the serving process, reads them all at each scrape
(``exposition``). Only counters and histograms are recorded by workers, and those add up across processes, a dead
worker's included (a total does not shrink when a worker is replaced). What the database holds (blobs, manifests,
upload sessions) is not a worker's to say: the debug server counts it at scrape time (``stored_metrics``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from registry.gc.collector import Report

LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

REQUESTS = Counter(
    "registry_http_requests", "HTTP requests by route name, method and status code", ["handler", "method", "code"]
)
REQUEST_SECONDS = Histogram(
    "registry_http_request_duration_seconds",
    "HTTP request latency, from the first byte received to the last byte sent",
    ["handler", "method", "code"],
    buckets=LATENCY,
)
RECEIVED = Counter("registry_http_request_bytes", "Request body bytes received, by route name", ["handler"])
SENT = Counter("registry_http_response_bytes", "Response body bytes sent, by route name", ["handler"])
STORAGE_SECONDS = Histogram(
    "registry_storage_action_seconds",
    "Storage backend call latency (a stream: the time spent waiting on the backend for its chunks)",
    ["driver", "action"],
    buckets=FAST,
)
STORAGE_ERRORS = Counter(
    "registry_storage_errors",
    "Storage backend calls that failed (a missing path is an answer, not an error)",
    ["driver", "action"],
)
DATABASE_SECONDS = Histogram(
    "registry_database_transaction_seconds", "Database write transaction latency, from begin to commit", buckets=FAST
)
GC_RUNS = Counter("registry_gc_runs", "Online garbage collector runs")
GC_SECONDS = Histogram("registry_gc_run_duration_seconds", "Online garbage collector run duration", buckets=LATENCY)
GC_REVIEWED = Counter("registry_gc_reviewed", "Blobs and manifests the collector reviewed", ["kind"])
GC_DELETED = Counter("registry_gc_deleted", "Blobs and manifests the collector deleted", ["kind"])
GC_FREED = Counter("registry_gc_freed_bytes", "Blob bytes the collector deleted from storage")


def database_observer() -> Callable[[float], None]:
    """``Database.observer``: each write transaction's seconds (a read is one statement, not a transaction)."""
    return DATABASE_SECONDS.observe


def observe_gc(report: Report, seconds: float) -> None:
    """``Collector.observers``: one run of the online collector."""
    GC_RUNS.inc()
    GC_SECONDS.observe(seconds)
    GC_REVIEWED.labels("manifest").inc(report.manifest_reviews)
    GC_REVIEWED.labels("blob").inc(report.reviews - report.manifest_reviews)
    GC_DELETED.labels("manifest").inc(len(report.manifests))
    GC_DELETED.labels("blob").inc(len(report.blobs))
    GC_FREED.inc(report.bytes_freed)


class Stored:
    """What the database holds, counted at scrape time by the debug server (never by a worker)."""

    def __init__(self, blobs: int, blob_bytes: int, manifests: int, repositories: int, uploads: int) -> None:
        self.values = {
            "registry_stored_blobs": ("Blobs stored (each digest once)", blobs),
            "registry_stored_blob_bytes": ("Bytes of the blobs stored", blob_bytes),
            "registry_stored_manifests": ("Manifests stored (per repository)", manifests),
            "registry_stored_repositories": ("Repositories", repositories),
            "registry_uploads_in_progress": ("Upload sessions started and not yet finished or cancelled", uploads),
        }
        self.when = time.time()

    def collect(self) -> list[Metric]:
        return [GaugeMetricFamily(name, text, value=value) for name, (text, value) in self.values.items()]


def exposition(multiprocess_dir: str | None, stored: Stored | None) -> bytes:
    """The text exposition: every worker's samples (their directory's, or this process's own) and what is stored."""
    if multiprocess_dir is None:
        registry: CollectorRegistry = REGISTRY
    else:
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    text = generate_latest(registry)
    if stored is not None:
        extra = CollectorRegistry(auto_describe=False)
        extra.register(stored)
        text += generate_latest(extra)
    return text
