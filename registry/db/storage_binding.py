"""The one ``storage_binding`` row: what storage the database indexes, and when it was last imported."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from registry.db.dialect import for_dialect
from registry.db.models import storage_binding, utcnow
from registry.db.sessions import Reader, Writer

ROW_ID = 1
_COLUMNS = ("driver", "bucket", "endpoint", "rootdirectory")


async def recorded(session: Reader) -> dict[str, Any] | None:
    """The storage the database indexes (and ``imported_at``), or None before any was recorded."""
    columns = [storage_binding.c[name] for name in (*_COLUMNS, "imported_at")]
    row = (await session.execute(select(*columns).where(storage_binding.c.id == ROW_ID))).first()
    return None if row is None else dict(row._mapping)


async def record(session: Writer, identity: dict[str, str | None]) -> dict[str, Any]:
    """Record ``identity`` unless one is recorded already (replicas starting together agree on the first); the
    recorded one."""
    values = {"id": ROW_ID, **identity, "created_at": utcnow()}
    statement = for_dialect(session, "ignore", storage_binding, lambda insert: insert.on_conflict_do_nothing())
    await session.execute(statement, values)
    found = await recorded(session)
    assert found is not None
    return found


async def replace(session: Writer, identity: dict[str, str | None]) -> None:
    await session.execute(update(storage_binding).where(storage_binding.c.id == ROW_ID).values(**identity))


async def mark_imported(session: Writer) -> None:
    await session.execute(update(storage_binding).where(storage_binding.c.id == ROW_ID).values(imported_at=utcnow()))
