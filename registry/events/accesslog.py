"""The access log: one line per request, from its ``RequestRecord``, on the ``registry.access`` logger.

Its keys are distribution's where it has one (``http.request.method``, ``vars.name``, ``auth.user.name``...), plus
the route's name and the bytes read. Fields that are None (no route, no user) are left out. The line is written at
INFO whatever ``log.level`` says (distribution's access log ignores it too); ``log.accesslog.disabled`` alone turns
it off.
"""

from __future__ import annotations

import logging

from registry.events.requests import RequestRecord

ACCESS_LOGGER = "registry.access"
MESSAGE = "response completed"  # distribution's message for the same line
log = logging.getLogger(ACCESS_LOGGER)


def access_fields(record: RequestRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "http.request.id": record.request_id,
        "http.request.method": record.method,
        "http.request.route": record.route,
        "http.request.path": record.path,
        "vars.name": record.repository,
        "http.response.status": record.status,
        "http.request.read": record.bytes_in,
        "http.response.written": record.bytes_out,
        "http.response.duration": round(record.duration, 6),
        "auth.user.name": record.user,
        "http.request.remoteaddr": record.remote_addr,
        "http.request.useragent": record.user_agent,
    }
    return {key: value for key, value in fields.items() if value is not None}


def log_access(record: RequestRecord) -> None:
    """An observer (``registry.events.requests``): the access line of ``record``."""
    if log.isEnabledFor(logging.INFO):  # the record made directly: the caller's frame would say nothing here
        extra = {"fields": access_fields(record)}
        log.handle(log.makeRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, MESSAGE, (), None, extra=extra))
