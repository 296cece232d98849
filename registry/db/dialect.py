"""Statements that differ between SQLite and PostgreSQL (``INSERT ... ON CONFLICT``), built once per dialect."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table

from registry.db.sessions import Writer

_BUILT: dict[tuple[str, str, Any], Any] = {}


def dialect_insert(session: Writer, table: Table) -> Any:
    # imported here: the PostgreSQL dialect is a sizeable share of the start-up time of a SQLite registry
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


async def insert_ignore(session: Writer, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT the rows, each skipped when one with its key is there already (``ON CONFLICT DO NOTHING``)."""
    if rows:
        statement = for_dialect(session, "ignore", table, lambda insert: insert.on_conflict_do_nothing())
        await session.execute(statement, rows[0] if len(rows) == 1 else list(rows))


def for_dialect(session: Writer, kind: str, table: Table, build: Callable[[Any], Any]) -> Any:
    """A dialect-specific statement, built once (building a statement costs more than running it)."""
    key = (session.get_bind().dialect.name, kind, table)
    statement = _BUILT.get(key)
    if statement is None:
        statement = _BUILT[key] = build(dialect_insert(session, table))
    return statement
