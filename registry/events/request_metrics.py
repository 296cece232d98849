"""The request metrics of one worker, tallied in plain numbers and added to the Prometheus metrics every second.

Recording a request straight into prometheus-client costs five locked writes, each to shared memory when several
workers run (about 3 us a request: a tenth of a manifest GET). ``RequestTally.count``, which ``RequestObserving``
calls with a request's figures (building no record), keeps them in a tuple instead; every BATCH requests, the one
that completes the batch adds theirs up per route, method and status (a few additions each, no lock: only the event
loop touches the sums). Added up on each request, among the code and objects of the request around them, the same
additions cost a manifest GET 3.5% of its CPU; in batches, 0.7% (wrk, 20 rounds of 2 s, against no tally).
``flush`` adds up what is left and moves the sums into the counters and the histogram's buckets, every
``FLUSH_SECONDS`` and when the worker stops (``flush_until``). A scrape sees a worker's requests at most that late,
well inside any scrape interval.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left

from registry.clock import stopped_within
from registry.events.metrics import LATENCY, RECEIVED, REQUEST_SECONDS, REQUESTS, SENT
from registry.events.requests import RequestRecord

FLUSH_SECONDS = 1.0
BATCH = 32  # requests counted before their figures are added up
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other: "other"
NO_ROUTE = "none"  # the handler label of a request no route matched (a 404, or a 503 from the health gate)
COUNT, SECONDS, BYTES_IN, BYTES_OUT, BUCKETS = range(5)  # a tally's slots; then one per bucket, +Inf last


Counted = tuple[str | None, str, int, float, int, int]  # the arguments of ``RequestTally.count``


class RequestTally:
    def __init__(self) -> None:
        self.counted: list[Counted] = []  # requests not added up yet
        self.pending: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, record: RequestRecord) -> None:
        self.count(record.route, record.method, record.status, record.duration, record.bytes_in, record.bytes_out)

    def count(self, route: str | None, method: str, status: int, seconds: float, received: int, sent: int) -> None:
        """One request (``RequestObserving`` calls it with the values, building no record)."""
        counted = self.counted
        counted.append((route, method, status, seconds, received, sent))
        if len(counted) >= BATCH:
            self.add_up()

    def add_up(self) -> None:
        """The requests counted so far, into the sums per route, method and status."""
        counted, self.counted = self.counted, []
        pending = self.pending
        for route, method, status, seconds, received, sent in counted:
            key = (route or NO_ROUTE, method if method in METHODS else "other", status)
            tally = pending.get(key)
            if tally is None:
                tally = pending[key] = [0.0] * (BUCKETS + len(LATENCY) + 1)
            tally[COUNT] += 1
            tally[SECONDS] += seconds
            tally[BYTES_IN] += received
            tally[BYTES_OUT] += sent
            tally[BUCKETS + bisect_left(LATENCY, seconds)] += 1  # buckets are "less or equal"

    def flush(self) -> None:
        self.add_up()
        pending, self.pending = self.pending, {}
        for (handler, method, status), tally in pending.items():
            code = str(status)
            REQUESTS.labels(handler, method, code).inc(tally[COUNT])
            histogram = REQUEST_SECONDS.labels(handler, method, code)
            # prometheus-client observes one value at a time: its sum and buckets take a tally's sums directly
            histogram._sum.inc(tally[SECONDS])
            for bucket, count in zip(histogram._buckets, tally[BUCKETS:], strict=True):
                if count:
                    bucket.inc(count)
            if tally[BYTES_IN]:
                RECEIVED.labels(handler).inc(tally[BYTES_IN])
            if tally[BYTES_OUT]:
                SENT.labels(handler).inc(tally[BYTES_OUT])

    async def flush_until(self, stop: asyncio.Event) -> None:
        while not await stopped_within(stop, FLUSH_SECONDS):
            self.flush()
        self.flush()


TALLY = RequestTally()  # one per process: the metrics it adds to are the process's
