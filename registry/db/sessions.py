"""What the queries need of a database session: ``Reader`` for reads, ``Writer`` inside a write transaction.

SQLAlchemy's AsyncSession is both; on SQLite, ``registry.db.sqlite`` supplies faster threaded ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy.exc import MultipleResultsFound
from sqlalchemy.sql import Executable

Params = dict[str, Any] | None


class Scalars(Protocol):
    def all(self) -> Sequence[Any]: ...


class Rows(Protocol):
    """What callers use of a result: SQLAlchemy's Result is one, and so is ``PlainRows``."""

    def first(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...

    def scalar(self) -> Any: ...

    def scalars(self) -> Scalars: ...


class Reader(Protocol):
    """What a read needs: an AsyncSession is one, and so is ``ThreadedReader``."""

    async def execute(self, statement: Executable, params: Params = None, /) -> Rows: ...

    async def scalar(self, statement: Executable, params: Params = None, /) -> Any: ...

    async def scalars(self, statement: Executable, params: Params = None, /) -> Scalars: ...


class ForeignAwaitInTransaction(RuntimeError):
    """A write transaction's work awaited something other than its own statements (a sleep, a future, an HTTP call,
    a storage write): a programming error, on either engine. Its transaction is rolled back; do that await before
    ``Database.write`` or after it."""

    def __init__(self) -> None:
        super().__init__("a write transaction awaited something other than its own statements")


# The most values one ``IN`` binds: PostgreSQL (asyncpg) takes at most 32,767 arguments a statement, and an SQLite
# built with its old default at most 999.
IN_CHUNK = 900


def chunked(values: Iterable[str]) -> list[list[str]]:
    """The distinct ``values``, sorted, in lists of at most ``IN_CHUNK``: one ``IN`` each."""
    ordered = sorted(set(values))
    return [ordered[i : i + IN_CHUNK] for i in range(0, len(ordered), IN_CHUNK)]


class PlainRows:
    def __init__(self, rows: list[Any], rowcount: int = -1) -> None:
        self._rows = rows
        self.rowcount = rowcount  # of an INSERT, UPDATE or DELETE

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> Sequence[Any]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> Scalars:
        return PlainRows([row[0] for row in self._rows])

    def scalar_one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise MultipleResultsFound("more than one row where one or none was expected")
        return self.scalar()


class ScalarsOfExecute:
    """``scalar`` and ``scalars`` over the class's own ``execute``: the sessions SQLAlchemy does not make."""

    async def execute(self, statement: Executable, params: Any = None, /) -> Any:
        raise NotImplementedError

    async def scalar(self, statement: Executable, params: Params = None, /) -> Any:
        return (await self.execute(statement, params)).scalar()

    async def scalars(self, statement: Executable, params: Params = None, /) -> Scalars:
        found: Scalars = (await self.execute(statement, params)).scalars()
        return found


class Writer(Protocol):
    """Inside a write transaction: statements, and the dialect's name for dialect-specific inserts."""

    async def execute(self, statement: Executable, params: Any = None, /) -> Any: ...

    async def scalar(self, statement: Executable, params: Params = None, /) -> Any: ...

    async def scalars(self, statement: Executable, params: Params = None, /) -> Scalars: ...

    def get_bind(self) -> Any: ...
