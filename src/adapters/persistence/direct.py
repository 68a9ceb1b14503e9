"""The chat path's statements, run on the driver without SQLAlchemy's execution layer.

Why: measured in-process on these machines, reading a turn's history (49 rows) costs
~150 µs of CPU through ``AsyncConnection.execute`` and ~18 µs on the SQLite driver;
inserting a message ~145 µs and ~20 µs. The difference is SQLAlchemy's per-call work -- a
greenlet hand-off, the statement's cache key, an execution context, a ``Result`` and a
``Row`` per row -- and a chat exchange runs five such statements (bench/results, "Where
Parley's CPU goes"). What SQLAlchemy still does for them: it compiles each statement, once
per dialect, and its types convert the values with the same bind and result processors it
would use itself (``UtcDateTime``, booleans). A driver error is raised as the same
``sqlalchemy.exc`` error. The transaction is the connection's, as SQLAlchemy's are: a
direct statement that finds none open begins it on the driver and records it as
SQLAlchemy's, which then commits or rolls it back like any other.

Two drivers: the inline SQLite driver (``BEGIN IMMEDIATE`` sent on it; begun through
SQLAlchemy, it cost one more greenlet hand-off per transaction), and asyncpg, where the
statement goes to asyncpg's own ``fetch``/``execute`` (its statement cache prepares it once
per connection) under SQLAlchemy's adapter: its lock on the connection, its transaction
start and its error translation. Those three are the adapter's private members, so they
are looked up first; an SQLAlchemy without them gets the ordinary path, not an error.

Where they run through SQLAlchemy unchanged: any other driver, and whenever something
listens to the engine's cursor executions -- OpenTelemetry's SQLAlchemy instrumentation,
for one -- so traces still show every statement.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import namedtuple
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select
from sqlalchemy.types import TypeEngine

from adapters.persistence.inline_sqlite import InlineConnection

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    parameters: tuple[tuple[str, Any, _Processor], ...]  # name, default, bind processor
    results: tuple[_Processor, ...]
    row: Callable[..., Any] | None  # a named tuple, when rows are read by column name
    returns_rows: bool


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
        # By dialect (tests serve SQLite and PostgreSQL from one process); None: this
        # statement runs through SQLAlchemy there (see _compile).
        self._compiled: dict[str, _Compiled | None] = {}

    async def rows(self, connection: AsyncConnection, parameters: Mapping[str, Any]) -> list[Any]:
        driver = _direct_driver(connection)
        compiled = None if driver is None else self._compiled_for(connection.dialect)
        if driver is None or compiled is None:
            return list(await connection.execute(self._statement, parameters))
        rows, _ = await driver(connection, compiled, _values(compiled, parameters))
        if any(compiled.results):
            rows = [_converted(compiled.results, row) for row in rows]
        make = compiled.row
        return rows if make is None else [make(*row) for row in rows]

    async def run(self, connection: AsyncConnection, parameters: Mapping[str, Any]) -> int:
        """Executes a statement that returns no rows; how many rows it changed."""
        driver = _direct_driver(connection)
        compiled = None if driver is None else self._compiled_for(connection.dialect)
        if driver is None or compiled is None:
            return int((await connection.execute(self._statement, parameters)).rowcount)
        _, changed = await driver(connection, compiled, _values(compiled, parameters))
        return changed

    def _compiled_for(self, dialect: Dialect) -> _Compiled | None:
        if dialect.name not in self._compiled:
            self._compiled[dialect.name] = self._compile(dialect)
        return self._compiled[dialect.name]

    def _compile(self, dialect: Dialect) -> _Compiled | None:
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
        try:
            results = tuple(_result_processor(column.type, dialect) for column in columns)
        except (InvalidRequestError, TypeError):
            return None  # a type this module does not know how to convert without a cursor
        names = [str(key) for key in columns.keys()]  # noqa: SIM118 (a collection, not a dict)
        row = namedtuple("Row", names, rename=True) if self._named else None
        returns_rows = bool(compiled.returning) or isinstance(self._statement, Select)
        return _Compiled(compiled.string, tuple(parameters), results, row, returns_rows)


# The type codes PostgreSQL reports for numeric columns as our tables declare them (FLOAT
# is double precision, NUMERIC numeric), which asyncpg's numeric types need in order to
# choose their result processor -- SQLAlchemy reads them from the cursor.
_PG_FLOAT8, _PG_NUMERIC = 701, 1700


def _result_processor(column_type: TypeEngine[Any], dialect: Dialect) -> _Processor:
    impl = column_type.dialect_impl(dialect)
    code = None
    if dialect.name == "postgresql" and isinstance(impl, Float | Numeric):
        code = _PG_FLOAT8 if isinstance(impl, Float) else _PG_NUMERIC
    return impl.result_processor(dialect, code)


def _values(compiled: _Compiled, parameters: Mapping[str, Any]) -> list[Any]:
    return [
        (value if bind is None else bind(value))
        for name, default, bind in compiled.parameters
        for value in (parameters.get(name, default),)
    ]


_Driver = Callable[[AsyncConnection, _Compiled, list[Any]], Awaitable[tuple[list[Any], int]]]


def _direct_driver(connection: AsyncConnection) -> _Driver | None:
    """How to run a direct statement on this connection, or None: through SQLAlchemy."""
    sync = connection.sync_connection
    if sync is None or sync.closed or sync.invalidated or sync.dispatch.before_cursor_execute:
        return None
    adapted = sync.connection.dbapi_connection
    driver = getattr(adapted, "driver_connection", None)
    if isinstance(driver, InlineConnection):
        return _on_sqlite
    if adapted is not None and _is_asyncpg_adapter(type(adapted)):
        return _on_asyncpg
    return None


@functools.cache
def _is_asyncpg_adapter(adapter: type) -> bool:
    return adapter.__name__ == "AsyncAdapt_asyncpg_connection" and _ASYNCPG_ADAPTER.issubset(
        dir(adapter)
    )


async def _on_sqlite(
    connection: AsyncConnection, compiled: _Compiled, values: list[Any]
) -> tuple[list[Any], int]:
    driver = _driver_of(connection)
    try:
        if not driver.in_transaction:
            await driver.execute_now("BEGIN IMMEDIATE", ())  # why IMMEDIATE: database.py
            if not connection.in_transaction():
                _record_begun(connection)
        return await driver.execute_now(compiled.sql, values)
    except sqlite3.Error as error:
        raise DBAPIError.instance(compiled.sql, values, error, sqlite3.Error) from error


# What _on_asyncpg uses of SQLAlchemy's asyncpg adapter (sqlalchemy.dialects.postgresql.asyncpg).
_ASYNCPG_ADAPTER = frozenset(
    {"_execute_mutex", "_transaction", "_start_transaction", "_handle_exception"}
)


async def _on_asyncpg(
    connection: AsyncConnection, compiled: _Compiled, values: list[Any]
) -> tuple[list[Any], int]:
    adapted = _dbapi_connection(connection)
    driver = adapted.driver_connection
    async with adapted._execute_mutex:  # noqa: SLF001 (see _ASYNCPG_ADAPTER)
        try:
            if adapted._transaction is None:  # noqa: SLF001
                await adapted._start_transaction()  # noqa: SLF001
                if not connection.in_transaction():
                    _record_begun(connection)
            if compiled.returns_rows:
                records = await driver.fetch(compiled.sql, *values)
                return [tuple(record) for record in records], len(records)
            status: str = await driver.execute(compiled.sql, *values)
            return [], int(status.rsplit(" ", 1)[-1])  # "UPDATE 1"
        except Exception as error:  # the adapter translates any driver error
            try:
                adapted._handle_exception(error)  # noqa: SLF001 (raises the DBAPI error)
            except adapted.dbapi.Error as translated:
                raise DBAPIError.instance(
                    compiled.sql, values, translated, adapted.dbapi.Error
                ) from error
            raise


def _record_begun(connection: AsyncConnection) -> None:
    """SQLAlchemy's record of the transaction the driver began, so that it commits and
    rolls it back as its own. Called outside a greenlet, which is safe here: it sends
    nothing. SQLite's begin hook (database.py) sees the driver's transaction, SQLite's
    dialect begins nothing itself (DBAPI's implicit begin), and neither does asyncpg's
    (its adapter begins at the first statement; here the transaction is already open)."""
    sync = connection.sync_connection
    if sync is not None:
        sync.begin()


def _converted(results: tuple[_Processor, ...], row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple([value if p is None else p(value) for p, value in zip(results, row, strict=True)])


def _dbapi_connection(connection: AsyncConnection) -> Any:
    sync = connection.sync_connection
    assert sync is not None  # _direct_driver checked
    return sync.connection.dbapi_connection


def _driver_of(connection: AsyncConnection) -> InlineConnection:
    driver = _dbapi_connection(connection).driver_connection
    assert isinstance(driver, InlineConnection)  # _direct_driver checked
    return driver
