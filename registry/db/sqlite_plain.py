"""SQLite's fast paths, decided here and nowhere else (the queries say nothing about them).

A statement object run a second time is compiled once (per set of parameter names: an INSERT sets the columns it
is given) and from then on runs as its SQL on a sqlite3 connection, skipping SQLAlchemy's execution machinery,
which costs several times what SQLite does for a point lookup or a one-row write. Statements built for one call
never pay for that compilation: only one seen before is compiled. Bound values and result columns get the
dialect's own conversions (a datetime to text and back), so rows are what SQLAlchemy would give. A statement
whose compiled form leaves work to SQLAlchemy (column defaults it computes, expanding ``IN`` parameters) or that
is not a SELECT, INSERT, UPDATE or DELETE runs through SQLAlchemy.

A SELECT that can return at most one row, because its WHERE and join conditions fix every column of a primary key
or unique index of each table it reads, is marked ``one_row``: the reader runs it on the event loop, where a thread
hop would cost several times the lookup (``registry.db.sqlite.ThreadedReader``)."""

from __future__ import annotations

import collections
import sqlite3
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BindParameter, Column, Dialect, Join, Select, Table, UniqueConstraint
from sqlalchemy.sql import Executable, operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList, ColumnElement

from registry.db.sessions import Params, PlainRows

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class PlainStatement:
    sql: str
    names: tuple[str, ...]  # bind parameter names in positional order
    defaults: dict[str, Any]
    processors: dict[str, Processor]  # the dialect's conversion of a bound value (a datetime to text)
    row: Callable[[Any], tuple[Any, ...]]
    one_row: bool  # a SELECT that finds at most one row by a unique key: cheap enough for the event loop

    def arguments(self, params: Params) -> list[Any]:
        values = params or {}
        arguments = [values[name] if name in values else self.defaults[name] for name in self.names]
        for index, name in enumerate(self.names):
            process = self.processors.get(name)
            if process is not None:
                arguments[index] = process(arguments[index])
        return arguments

    def run(self, connection: sqlite3.Connection, params: Params | list[dict[str, Any]]) -> PlainRows:
        if isinstance(params, list):  # an executemany: nothing to read back
            return PlainRows([], connection.executemany(self.sql, [self.arguments(p) for p in params]).rowcount)
        cursor = connection.execute(self.sql, self.arguments(params))
        return PlainRows([self.row(row) for row in cursor.fetchall()], cursor.rowcount)


@dataclass
class _Seen:
    statement: weakref.ref[Executable]
    compiled: dict[frozenset[str], PlainStatement | None] = field(default_factory=dict)


class PlainStatements:
    """The plain form of each statement object seen before, compiled at its second run and forgotten with it."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._seen: dict[int, _Seen] = {}

    def get(self, statement: Executable, params: Params | list[dict[str, Any]]) -> PlainStatement | None:
        """The statement compiled for these parameters, or None when SQLAlchemy runs it (this time, or always)."""
        key = id(statement)
        seen = self._seen.get(key)
        if seen is None:
            self._remember(statement, key)
            return None
        names = frozenset((params[0] if isinstance(params, list) else params) or ())
        if names not in seen.compiled:
            seen.compiled[names] = _compile(statement, names, self._dialect)
        return seen.compiled[names]

    def _remember(self, statement: Executable, key: int) -> None:
        if not isinstance(statement, Select | UpdateBase):
            return
        self._seen[key] = _Seen(weakref.ref(statement, lambda _ref: self._forget(key)))

    def _forget(self, key: int) -> None:
        self._seen.pop(key, None)


def _compile(statement: Executable, names: frozenset[str], dialect: Dialect) -> PlainStatement | None:
    assert isinstance(statement, Select | UpdateBase)
    compiled = statement.compile(dialect=dialect, column_keys=sorted(names))
    assert isinstance(compiled, SQLCompiler)
    if compiled.insert_prefetch or compiled.update_prefetch:
        return None  # column defaults SQLAlchemy computes
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None  # parameters SQLAlchemy expands at each execution
    positional = tuple(compiled.positiontup or ())
    processors: dict[str, Processor] = {}
    for name in positional:
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    defaults = dict(compiled.construct_params(_check=False))
    one_row = isinstance(statement, Select) and finds_one_row(statement)
    return PlainStatement(compiled.string, positional, defaults, processors, _row(compiled, dialect), one_row)


def _row(compiled: SQLCompiler, dialect: Dialect) -> Callable[[Any], Any]:
    """What makes a row of the driver's tuple: named as SQLAlchemy names it, each column converted as it would."""
    columns = compiled._result_columns
    if not columns:
        return tuple
    make = collections.namedtuple("PlainRow", [c.keyname for c in columns], rename=True)._make  # type: ignore[attr-defined]
    converters = [column.type._cached_result_processor(dialect, None) for column in columns]
    if not any(converters):
        return make  # type: ignore[no-any-return]

    def converted(values: Any) -> Any:
        return make(
            value if convert is None else convert(value) for convert, value in zip(converters, values, strict=True)
        )

    return converted


def finds_one_row(statement: Select[Any]) -> bool:
    """Whether every table the SELECT reads is pinned to at most one row: the equalities of its WHERE and its joins
    (each an AND of conditions) fix every column of a primary key or unique index of it, to a value or to a column
    of a table already pinned. A subquery, an OR at the top or a condition that is no equality pins nothing."""
    tables: list[Table] = []
    conditions: list[ColumnElement[Any]] = []
    for source in statement.get_final_froms():
        if not _flatten(source, tables, conditions):
            return False
    if statement.whereclause is not None:
        conditions.append(statement.whereclause)
    fixed: set[Column[Any]] = set()
    pairs: list[tuple[Column[Any], Column[Any]]] = []
    for condition in _conjuncts(conditions):
        _equality(condition, fixed, pairs)
    keys = {table: _unique_keys(table) for table in tables}
    pinned: set[Table] = set()
    changed = True
    while changed:
        changed = False
        for table in tables:
            if table not in pinned and any(key <= fixed for key in keys[table]):
                pinned.add(table)
                fixed.update(table.columns)
                changed = True
        for left, right in pairs:
            if (left in fixed) != (right in fixed):
                fixed.update((left, right))
                changed = True
    return all(table in pinned for table in tables)


def _flatten(source: Any, tables: list[Table], conditions: list[ColumnElement[Any]]) -> bool:
    if isinstance(source, Table):
        tables.append(source)
        return True
    if isinstance(source, Join) and not source.isouter and not source.full and source.onclause is not None:
        conditions.append(source.onclause)
        return _flatten(source.left, tables, conditions) and _flatten(source.right, tables, conditions)
    return False


def _conjuncts(conditions: list[ColumnElement[Any]]) -> Iterator[ColumnElement[Any]]:
    for condition in conditions:
        if isinstance(condition, BooleanClauseList) and condition.operator is operators.and_:
            yield from _conjuncts(list(condition.clauses))
        else:
            yield condition


def _equality(
    condition: ColumnElement[Any], fixed: set[Column[Any]], pairs: list[tuple[Column[Any], Column[Any]]]
) -> None:
    if not isinstance(condition, BinaryExpression) or condition.operator is not operators.eq:
        return
    left, right = condition.left, condition.right
    if isinstance(left, Column) and isinstance(right, Column):
        pairs.append((left, right))
    elif isinstance(left, Column) and isinstance(right, BindParameter):
        fixed.add(left)
    elif isinstance(right, Column) and isinstance(left, BindParameter):
        fixed.add(right)


def _unique_keys(table: Table) -> list[set[Column[Any]]]:
    keys = [set(table.primary_key.columns)] if table.primary_key.columns else []
    keys += [{column} for column in table.columns if column.unique]
    keys += [set(index.columns) for index in table.indexes if index.unique]
    keys += [set(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)]
    return keys
