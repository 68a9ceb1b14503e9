"""The chat path's statements, run on the SQLite driver without SQLAlchemy's execution layer.

Why: measured in-process on these machines, reading a turn's history (49 rows) costs
~150 µs of CPU through ``AsyncConnection.execute`` and ~18 µs on the driver; inserting a
message ~145 µs and ~20 µs. The difference is SQLAlchemy's per-call work -- a greenlet
hand-off, the statement's cache key, an execution context, a ``Result`` and a ``Row`` per
row -- and a chat exchange runs five such statements (bench/results, "Where Parley's CPU
goes"). What SQLAlchemy still does for them: it compiles each statement, once per
dialect, and its types convert the values with the same bind and result processors it
would use itself (``UtcDateTime``, booleans). A driver error is raised as the same
``sqlalchemy.exc`` error. The transaction is the connection's, as SQLAlchemy's are: a
direct statement that finds none open sends ``BEGIN IMMEDIATE`` on the driver itself and
records it as SQLAlchemy's, which then commits or rolls it back like any other (begun
through SQLAlchemy, it cost one more greenlet hand-off per transaction).

Where they run through SQLAlchemy unchanged: any database but the inline SQLite driver
(PostgreSQL), and whenever something listens to the engine's cursor executions --
OpenTelemetry's SQLAlchemy instrumentation, for one -- so traces still show every
statement.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select

from adapters.persistence.inline_sqlite import InlineConnection

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    parameters: tuple[tuple[str, Any, _Processor], ...]  # name, default, bind processor
    results: tuple[_Processor, ...]
    row: Callable[..., Any] | None  # a named tuple, when rows are read by column name


class DirectStatement:
    """A SELECT, or an INSERT/UPDATE with or without RETURNING, whose ``rows`` and
    ``run`` take the same parameters as ``AsyncConnection.execute`` would. ``keys``: for
    an INSERT, the columns every execution gives values for. Rows are tuples, or with
    ``named`` named tuples (``row.title``), which cost ~1 µs a row more to build."""

    def __init__(
        self, statement: Select[Any] | UpdateBase, keys: Iterable[str] = (), *, named: bool = False
    ) -> None:
        self._statement = statement
        self._keys = list(keys) or None
        self._named = named
        self._compiled: _Compiled | None = None

    async def rows(self, connection: AsyncConnection, parameters: Mapping[str, Any]) -> list[Any]:
        driver = _inline_driver(connection)
        if driver is None:
            return list(await connection.execute(self._statement, parameters))
        compiled = self._compiled or self._compile(connection.dialect)
        rows, _ = await self._on(driver, connection, compiled, parameters)
        if any(compiled.results):
            rows = [_converted(compiled.results, row) for row in rows]
        make = compiled.row
        return rows if make is None else [make(*row) for row in rows]

    async def run(self, connection: AsyncConnection, parameters: Mapping[str, Any]) -> int:
        """Executes a statement that returns no rows; how many rows it changed."""
        driver = _inline_driver(connection)
        if driver is None:
            return int((await connection.execute(self._statement, parameters)).rowcount)
        compiled = self._compiled or self._compile(connection.dialect)
        _, changed = await self._on(driver, connection, compiled, parameters)
        return changed

    async def _on(
        self,
        driver: InlineConnection,
        connection: AsyncConnection,
        compiled: _Compiled,
        parameters: Mapping[str, Any],
    ) -> tuple[list[tuple[Any, ...]], int]:
        values = [
            (value if bind is None else bind(value))
            for name, default, bind in compiled.parameters
            for value in (parameters.get(name, default),)
        ]
        try:
            if not driver.in_transaction:
                await driver.execute_now("BEGIN IMMEDIATE", ())  # why IMMEDIATE: database.py
                if not connection.in_transaction():
                    _record_begun(connection)
            return await driver.execute_now(compiled.sql, values)
        except sqlite3.Error as error:
            raise DBAPIError.instance(compiled.sql, values, error, sqlite3.Error) from error

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._statement.compile(dialect=dialect, column_keys=self._keys)
        if compiled.positiontup is None or compiled.post_compile_params:
            raise TypeError("a direct statement needs plain positional parameters")
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            raise TypeError("a direct statement cannot apply Python-side column defaults")
        parameters = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            default = None if bind.required else bind.effective_value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            parameters.append((name, default, processor))
        columns = self._statement.exported_columns
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        names = [str(key) for key in columns.keys()]  # noqa: SIM118 (a collection, not a dict)
        row = namedtuple("Row", names, rename=True) if self._named else None
        self._compiled = _Compiled(compiled.string, tuple(parameters), results, row)
        return self._compiled


def _record_begun(connection: AsyncConnection) -> None:
    """SQLAlchemy's record of the transaction the driver began, so that it commits and
    rolls it back as its own. Called outside a greenlet, which is safe here: its begin
    hook (database.py) sees the driver's transaction and sends nothing, and SQLite's
    dialect begins nothing itself (DBAPI's implicit begin)."""
    sync = connection.sync_connection
    if sync is not None:
        sync.begin()


def _converted(results: tuple[_Processor, ...], row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple([value if p is None else p(value) for p, value in zip(results, row, strict=True)])


def _inline_driver(connection: AsyncConnection) -> InlineConnection | None:
    """The driver to run a direct statement on, or None: through SQLAlchemy."""
    sync = connection.sync_connection
    if sync is None or sync.closed or sync.invalidated or sync.dispatch.before_cursor_execute:
        return None
    driver = sync.connection.driver_connection
    return driver if isinstance(driver, InlineConnection) else None
