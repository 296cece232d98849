"""The notification outbox's SQL (``event_outbox``): rows written with the change they report, claimed by one
delivery worker at a time (others skip them: ``SKIP LOCKED`` on PostgreSQL, SQLite's one writer), deleted once
delivered, handed back due later when not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from registry.db.models import event_outbox
from registry.db.sessions import IN_CHUNK, Reader, Writer

_INSERT = insert(event_outbox)
_DUE = (
    select(event_outbox.c.id)
    .where(event_outbox.c.endpoint == bindparam("for_endpoint"), event_outbox.c.due_at <= bindparam("now"))
    .order_by(event_outbox.c.due_at, event_outbox.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    update(event_outbox)
    .where(event_outbox.c.id.in_(_DUE.scalar_subquery()))
    .values(claimed_by=bindparam("token"), due_at=bindparam("until"))
    .returning(event_outbox.c.id, event_outbox.c.payload, event_outbox.c.attempts)
)
_DELETE = delete(event_outbox).where(event_outbox.c.id.in_(bindparam("ids", expanding=True)))
_RELEASE = (
    update(event_outbox)
    .where(event_outbox.c.id == bindparam("row"), event_outbox.c.claimed_by == bindparam("token"))
    .values(claimed_by=None, attempts=event_outbox.c.attempts + 1, due_at=bindparam("due"))
)


@dataclass(frozen=True)
class Claimed:
    id: int
    payload: str
    attempts: int  # failed deliveries before this one


def outbox_row(endpoint: str, payload: str, now: datetime) -> dict[str, Any]:
    return {"endpoint": endpoint, "payload": payload, "created_at": now, "due_at": now, "attempts": 0}


async def add(session: Writer, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_INSERT, rows[0] if len(rows) == 1 else list(rows))


async def claim(
    session: Writer, endpoint: str, token: str, now: datetime, until: datetime, limit: int
) -> list[Claimed]:
    """Up to ``limit`` of the endpoint's due rows, oldest first, taken until ``until``."""
    params = {"for_endpoint": endpoint, "now": now, "limit": limit, "token": token, "until": until}
    rows = (await session.execute(_CLAIM, params)).all()
    return sorted((Claimed(int(row[0]), str(row[1]), int(row[2])) for row in rows), key=lambda row: row.id)


async def delivered(session: Writer, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), IN_CHUNK):
        await session.execute(_DELETE, {"ids": list(ids[start : start + IN_CHUNK])})


async def release(session: Writer, token: str, due: Sequence[tuple[int, datetime]]) -> None:
    """Hand claimed rows back, each due at its time, one more failed attempt counted (only while the claim is ours)."""
    if due:
        await session.execute(_RELEASE, [{"row": row_id, "token": token, "due": when} for row_id, when in due])


async def pending(session: Reader, endpoint: str | None = None) -> int:
    """Rows waiting (for one endpoint, or all)."""
    query = select(func.count()).select_from(event_outbox)
    if endpoint is not None:
        query = query.where(event_outbox.c.endpoint == endpoint)
    return int(await session.scalar(query) or 0)
