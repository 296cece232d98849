"""One promise for a write transaction on both engines: its work awaits nothing but its own statements.

On SQLite that is how it runs (``WriteThread`` drives it in one thread, without an event loop). On PostgreSQL a
coroutine could await anything while it holds the transaction and its row locks (an HTTP call, a sleep, a storage
write); here it is driven step by step instead, and each time it suspends, one of its statements must be in flight.
Otherwise it is stopped with ``ForeignAwaitInTransaction`` and the transaction rolls back, as on SQLite."""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

from sqlalchemy.sql import Executable

from registry.db.sessions import ForeignAwaitInTransaction, ScalarsOfExecute, Writer

_T = TypeVar("_T")


class GuardedWriter(ScalarsOfExecute):
    """A ``Writer`` over another that knows when one of its statements is in flight."""

    def __init__(self, session: Writer) -> None:
        self._session = session
        self.in_statement = False

    async def execute(self, statement: Executable, params: Any = None, /) -> Any:
        self.in_statement = True
        try:
            return await self._session.execute(statement, params)
        finally:
            self.in_statement = False

    def get_bind(self) -> Any:
        return self._session.get_bind()


class _Suspend:
    """Suspends the awaiting task on what the driven coroutine yielded (a future, or None for a bare yield)."""

    __slots__ = ("_yielded",)

    def __init__(self, yielded: Any) -> None:
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self._yielded)


async def guarded(coroutine: Coroutine[Any, Any, _T], writer: GuardedWriter) -> _T:
    """``coroutine``'s result, each of its suspensions passed to the event loop only while one of ``writer``'s
    statements is in flight; any other raises ``ForeignAwaitInTransaction`` (the coroutine closed first)."""
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            yielded = coroutine.send(sent) if thrown is None else coroutine.throw(thrown)
        except StopIteration as done:
            result: _T = done.value
            return result
        if not writer.in_statement:
            coroutine.close()
            raise ForeignAwaitInTransaction()
        sent, thrown = None, None
        try:
            sent = await _Suspend(yielded)
        except BaseException as exc:  # the task cancelled: the coroutine gets it where it waits
            thrown = exc
