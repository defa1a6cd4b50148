"""A PostgreSQL store: the database the app may have already, shared by every machine.

Every operation is one SQL statement through SQLAlchemy, on an engine of its own (from
``CALLTRANSFER_STORE_URL = "postgresql://..."``) or on the app's own (``PostgresStore(db.engine)``
with Flask-SQLAlchemy). Atomicity comes from the statements themselves: ``INSERT ... ON CONFLICT
DO UPDATE ... RETURNING`` for counters and ``DELETE ... RETURNING`` for
:meth:`~PostgresStore.pop` lock the rows they touch, so two machines never both see the first
increment or both pop one value. Expiry is read from the database server's clock, so machines
whose clocks disagree still agree on what has expired.

The tables are never created by surprise: :func:`create_tables` (or ``flask calltransfer
create-tables``) makes them, and :data:`metadata` describes them to Alembic and Flask-Migrate.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
import typing as t

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from .. import messages
from ..logs import logger
from ..timers import PerProcess
from ..timers import Timers
from .base import Store
from .base import wait_budget

#: The store's tables, for ``metadata.create_all`` and for Alembic's ``target_metadata``.
metadata = sa.MetaData()

kv_table = sa.Table(
    "calltransfer_kv",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    # Seconds since 1970 on the database server's clock; NULL never expires.
    sa.Column("expires", sa.Float(precision=53), nullable=True),
    sa.Index("calltransfer_kv_expires", "expires"),
)

counts_table = sa.Table(
    "calltransfer_counts",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("expires", sa.Float(precision=53), nullable=True),
    sa.Index("calltransfer_counts_expires", "expires"),
)

# The statement's start, not each row's moment: every counter one statement adds to a key gets
# the same expiry, and they expire together as a Redis hash does.
_NOW = "CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS float8)"
_TTL = "CAST(:ttl AS float8)"
# Local to the transaction: a pooled connection of the app's own is left as it was.
_TIMEOUTS = sa.text(
    "SELECT set_config('statement_timeout', :ms, true), set_config('lock_timeout', :ms, true)"
)
_LIVE = f"(expires IS NULL OR expires > {_NOW})"

_GET = sa.text(f"SELECT value FROM calltransfer_kv WHERE key = :key AND {_LIVE}")
_SET = sa.text(
    "INSERT INTO calltransfer_kv (key, value, expires)"
    f" VALUES (:key, :value, CASE WHEN {_TTL} IS NULL THEN NULL ELSE {_NOW} + {_TTL} END)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires"
)
_DELETE = sa.text("DELETE FROM calltransfer_kv WHERE key = :key")
_POP = sa.text(f"DELETE FROM calltransfer_kv WHERE key = :key RETURNING value, {_LIVE} AS live")
# An expired counter starts again from the amount, with a new expiry; a live one keeps its own.
_INCR = sa.text(
    "INSERT INTO calltransfer_kv AS old (key, value, expires)"
    f" VALUES (:key, CAST(:amount AS bigint)::text,"
    f" CASE WHEN {_TTL} IS NULL THEN NULL ELSE {_NOW} + {_TTL} END)"
    " ON CONFLICT (key) DO UPDATE SET"
    f" value = CASE WHEN old.expires IS NOT NULL AND old.expires <= {_NOW}"
    " THEN excluded.value ELSE (CAST(old.value AS bigint) + CAST(:amount AS bigint))::text END,"
    f" expires = CASE WHEN old.expires IS NOT NULL AND old.expires <= {_NOW}"
    " THEN excluded.expires ELSE old.expires END"
    " RETURNING CAST(value AS bigint)"
)
_COUNTS = sa.text(f"SELECT name, value FROM calltransfer_counts WHERE key = :key AND {_LIVE}")
# One statement for every counter of a call: row locks are held for that statement alone. Every
# counter of a key shares the expiry of the key's first live counter.
_ADD_COUNTS = (
    "INSERT INTO calltransfer_counts AS old (key, name, value, expires)"
    " SELECT :key, new.name, new.amount, COALESCE("
    f"(SELECT expires FROM calltransfer_counts WHERE key = :key AND {_LIVE} LIMIT 1),"
    f" CASE WHEN {_TTL} IS NULL THEN NULL ELSE {_NOW} + {_TTL} END)"
    " FROM (VALUES {rows}) AS new (name, amount)"
    " ON CONFLICT (key, name) DO UPDATE SET"
    f" value = CASE WHEN old.expires IS NOT NULL AND old.expires <= {_NOW}"
    " THEN excluded.value ELSE old.value + excluded.value END,"
    f" expires = CASE WHEN old.expires IS NOT NULL AND old.expires <= {_NOW}"
    " THEN excluded.expires ELSE old.expires END"
)
# A bounded batch that skips rows other transactions hold: a sweep never waits for a worker,
# and a large backlog is worked off a batch per sweep.
_SWEEPS = tuple(
    sa.text(
        f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table}"
        f" WHERE expires IS NOT NULL AND expires <= {_NOW} LIMIT 1000 FOR UPDATE SKIP LOCKED)"
    )
    for table in ("calltransfer_kv", "calltransfer_counts")
)
# Expired rows are never returned; this many writes by one process between sweeps keeps the
# tables from growing, with no job for anyone to schedule.
_SWEEP_EVERY = 500
_POOL_SIZE, _POOL_OVERFLOW = 5, 5
#: PostgreSQL's SQLSTATE for "relation does not exist".
_UNDEFINED_TABLE = "42P01"


#: How much longer than its statement timeout a transaction may wait for a server that does not
#: answer at all (paused, or cut off without a reset) before its connection is cut.
_GRACE = 0.05


class _Cutter:
    """Cuts the connection of a transaction still waiting past its time.

    ``statement_timeout`` is the server's to enforce: a server that is paused, or gone without
    closing its sockets, never sends the cancellation, and libpq has no timeout of its own for a
    query. Shutting the socket down ends the wait at once with a connection error, which the
    store's circuit breaker counts as an outage, and the pool drops the connection.
    """

    def __init__(self) -> None:
        self._waiting: dict[int, int] = {}
        self._tokens = itertools.count()
        self._lock = threading.Lock()
        self._timers = Timers(self._cut, name="calltransfer-postgres-cutter")

    def watch(self, fd: int, seconds: float) -> int:
        token = next(self._tokens)
        # A descriptor of its own for the same socket: if the pool closes the connection's first,
        # its number may be reused, but this one still names the socket it was made for.
        with self._lock:
            self._waiting[token] = os.dup(fd)
        self._timers.add(time.monotonic() + seconds, token)
        return token

    def done(self, token: int) -> None:
        # Under the lock: once this returns, the socket is never cut.
        with self._lock:
            fd = self._waiting.pop(token, None)
        if fd is not None:
            os.close(fd)

    def _cut(self, token: int) -> None:
        with self._lock:
            fd = self._waiting.pop(token, None)
        if fd is None:
            return  # the transaction ended in time
        try:
            # Through one more duplicate, closed right away: the shutdown reaches the socket.
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by the server
        finally:
            os.close(fd)


#: One per process: its thread does not survive a fork.
_cutter = PerProcess(_Cutter)


def _connect_within(connect: t.Callable[[], t.Any], seconds: float, attempts: threading.Semaphore) -> t.Any:
    """``connect()``, or psycopg's OperationalError once ``seconds`` have passed.

    The attempt goes on in its own thread until libpq gives up, and a connection it makes after
    that is closed: a paused server costs a request one store timeout, not libpq's two seconds.
    ``attempts`` bounds the attempts under way, so a server that never answers cannot make a
    thread pile of them.
    """
    import psycopg

    if not attempts.acquire(blocking=False):
        raise psycopg.OperationalError(messages.postgres_connect_timeout(seconds))
    outcome: dict[str, t.Any] = {}
    lock = threading.Lock()
    finished = threading.Event()

    def attempt() -> None:
        try:
            connection = connect()
        except BaseException as exc:  # handed to the waiting thread, or dropped once it left
            outcome["error"] = exc
        else:
            with lock:
                if outcome.get("abandoned"):
                    connection.close()
                else:
                    outcome["connection"] = connection
        finally:
            attempts.release()
        finished.set()

    threading.Thread(target=attempt, name="calltransfer-postgres-connect", daemon=True).start()
    finished.wait(seconds)
    with lock:
        if "connection" in outcome:
            return outcome["connection"]
        if "error" in outcome:
            raise outcome["error"]
        outcome["abandoned"] = True
    raise psycopg.OperationalError(messages.postgres_connect_timeout(seconds))


def _url(url: str) -> str:
    # Heroku and many hosts hand out postgres://; SQLAlchemy needs the driver named.
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


class PostgresStore(Store):
    """Keeps entries in two PostgreSQL tables, shared by every worker on every machine.

    :param engine: a SQLAlchemy engine, or a function returning one (``lambda: db.engine`` with
        Flask-SQLAlchemy, whose engine exists only inside an app context).
    :param timeout: seconds a statement may run, or wait for a row another transaction holds,
        before it fails as :class:`~flask_calltransfer.StoreUnavailable`; less when the handler's
        deadline is nearer.

    ``postgresql://user:password@host/database`` in ``CALLTRANSFER_STORE_URL``; install the
    ``postgresql`` extra. Create the tables once with :func:`create_tables` or ``flask
    calltransfer create-tables``.

    .. versionadded:: 0.2
    """

    outage_errors = (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,
        sa_exc.DisconnectionError,
        OSError,
    )

    def __init__(self, engine: sa.Engine | t.Callable[[], sa.Engine], *, timeout: float = 0.25) -> None:
        self._engine = engine
        self.timeout = timeout
        self._writes = itertools.count(1)
        self._own = False
        self._pid = os.getpid()

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 0.25) -> PostgresStore:
        """A store on a new engine for ``url``, with a small pool of its own, whose connects wait
        at most ``timeout`` seconds."""
        import psycopg

        parsed = sa.make_url(_url(url))
        # psycopg reads the libpq URI itself: the driver name is SQLAlchemy's alone.
        conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)

        # As many attempts as the pool holds connections: a cold start opens them all at once.
        attempts = threading.BoundedSemaphore(_POOL_SIZE + _POOL_OVERFLOW)

        def connect() -> t.Any:
            # libpq waits at least two seconds for a connection; a worker waits `timeout`.
            return _connect_within(lambda: psycopg.connect(conninfo, connect_timeout=2), timeout, attempts)

        engine = sa.create_engine(
            parsed,
            creator=connect,
            pool_size=_POOL_SIZE,
            max_overflow=_POOL_OVERFLOW,
            # Waiting for a free pooled connection is bounded like any other wait.
            pool_timeout=timeout,
            # Every operation is a single statement (see _transaction).
            isolation_level="AUTOCOMMIT",
        )
        store = cls(engine, timeout=timeout)
        store._own = True
        return store

    @property
    def engine(self) -> sa.Engine:
        """The engine in use."""
        if not isinstance(self._engine, sa.Engine):
            return self._engine()
        if self._own and self._pid != os.getpid():
            # A gunicorn worker forked from a parent that used the pool: the parent's connections
            # stay the parent's (close=False), and this process opens its own.
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        return self._engine

    @contextlib.contextmanager
    def _transaction(self) -> t.Iterator[sa.Connection]:
        # Statements and row locks must end inside the handler's deadline, when there is one.
        budget = wait_budget(self.timeout)
        milliseconds = max(1, int(budget * 1000))
        try:
            with self.engine.connect() as connection:
                cutter = _cutter.get()
                # The commit is watched too: a server can stop answering at any step.
                token = cutter.watch(_fileno(connection), budget + _GRACE)
                try:
                    if self._own:
                        # The store's own connections commit each statement (each operation is
                        # one) and keep their timeouts for the session: one round trip a step.
                        info = connection.connection.info
                        if info.get("calltransfer_timeout") != milliseconds:
                            connection.exec_driver_sql(
                                f"SET statement_timeout = {milliseconds}; SET lock_timeout = {milliseconds}"
                            )
                            info["calltransfer_timeout"] = milliseconds
                        yield connection
                    else:
                        # Whatever the app's engine defaults to: each statement is atomic on its own,
                        # and a stricter level would fail concurrent increments of one key.
                        connection.execution_options(isolation_level="READ COMMITTED")
                        with connection.begin():
                            connection.execute(_TIMEOUTS, {"ms": str(milliseconds)})
                            yield connection
                finally:
                    cutter.done(token)
        except sa_exc.ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) == _UNDEFINED_TABLE:
                raise MissingTables(messages.postgres_tables_missing()) from exc
            raise

    def _run(
        self, statement: sa.TextClause, *, write: bool = False, **values: t.Any
    ) -> list[tuple[t.Any, ...]]:
        with self._transaction() as connection:
            result = connection.execute(statement, values)
            # Read inside the transaction: the rows are gone once it closes.
            rows = [tuple(row) for row in result] if result.returns_rows else []
        if write and next(self._writes) % _SWEEP_EVERY == 0:
            self._sweep()
        return rows

    def _sweep(self) -> None:
        # After the operation committed, in a transaction of its own: a sweep that fails or runs
        # out of time must not turn a done write into a failure, nor open the breaker.
        try:
            for sweep in _SWEEPS:
                with self._transaction() as connection:
                    connection.execute(sweep)
        except Exception as exc:
            logger.warning(messages.postgres_sweep_failed(type(exc).__name__))

    def get(self, key: str) -> str | None:
        rows = self._run(_GET, key=key)
        return str(rows[0][0]) if rows else None

    def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        self._run(_SET, write=True, key=key, value=value, ttl=ttl)

    def delete(self, key: str) -> None:
        self._run(_DELETE, write=True, key=key)

    def pop(self, key: str) -> str | None:
        rows = self._run(_POP, write=True, key=key)
        return str(rows[0][0]) if rows and rows[0][1] else None

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        rows = self._run(_INCR, write=True, key=key, amount=amount, ttl=ttl)
        return int(rows[0][0])

    def add_counts(self, key: str, counts: t.Mapping[str, int], *, ttl: float | None = None) -> None:
        if not counts:
            return
        # In one order for everyone: two workers locking the same rows in different orders
        # would deadlock until PostgreSQL gives up on one of them.
        names = sorted(counts)
        rows = ", ".join(f"(CAST(:name{i} AS text), CAST(:amount{i} AS bigint))" for i in range(len(names)))
        values: dict[str, t.Any] = {"key": key, "ttl": ttl}
        for i, name in enumerate(names):
            values[f"name{i}"], values[f"amount{i}"] = name, counts[name]
        # Only placeholders go into the statement's text; the names are bound values.
        self._run(sa.text(_ADD_COUNTS.format(rows=rows)), write=True, **values)

    def counts(self, key: str) -> dict[str, int]:
        return {str(name): int(value) for name, value in self._run(_COUNTS, key=key)}

    def close(self) -> None:
        if self._own:
            self.engine.dispose()

    def __repr__(self) -> str:
        try:
            url = self.engine.url.render_as_string(hide_password=True)
        except Exception:  # an engine function outside its app context
            url = "?"
        return f"<PostgresStore {url!r}>"


def _fileno(connection: sa.Connection) -> int:
    dbapi = connection.connection.dbapi_connection
    fileno: int = dbapi.fileno()  # type: ignore[union-attr]
    return fileno


class MissingTables(Exception):
    """The store's tables do not exist in the database yet."""


def create_tables(engine: sa.Engine) -> None:
    """Create the store's tables and indexes where they do not exist yet.

    Apps that manage their schema with Alembic or Flask-Migrate add :data:`metadata` to
    ``target_metadata`` instead, and let a migration create them.
    """
    metadata.create_all(engine)


def create_statements() -> list[str]:
    """The SQL :func:`create_tables` runs, for a migration written by hand."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex
    from sqlalchemy.schema import CreateTable

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            statements.append(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)).strip())
    return statements


def tables_exist(engine: sa.Engine) -> bool:
    """Whether every table and column the store uses is in the database."""
    inspector = sa.inspect(engine)
    for table in metadata.tables.values():
        if not inspector.has_table(table.name):
            return False
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        if not {column.name for column in table.columns} <= columns:
            return False
    return True


__all__ = ["MissingTables", "PostgresStore", "create_statements", "create_tables", "metadata", "tables_exist"]
