"""A SQLite store: the embedded default, shared by every worker process on one machine."""

from __future__ import annotations

import os
import pathlib
import sqlite3
import threading
import time
import typing as t

from .base import Store
from .base import wait_budget

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS calltransfer_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL)"
)
_COUNTS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS calltransfer_counts (key TEXT NOT NULL, name TEXT NOT NULL,"
    " value INTEGER NOT NULL, expires REAL, PRIMARY KEY (key, name))"
)
# A counter whose key expired starts again from the amount, with a new expiry.
_ADD_COUNT = (
    "INSERT INTO calltransfer_counts (key, name, value, expires) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (key, name) DO UPDATE SET"
    " value = CASE WHEN expires IS NOT NULL AND expires <= ?5"
    " THEN excluded.value ELSE value + excluded.value END,"
    " expires = CASE WHEN expires IS NOT NULL AND expires <= ?5 THEN excluded.expires ELSE expires END"
)
# Expired rows are never returned; this many writes between sweeps keeps the file from growing.
_SWEEP_EVERY = 500


class SqliteStore(Store):
    """Keeps entries in one SQLite file, safe across gunicorn workers on one machine.

    Each thread of each process opens its own connection (a connection made before gunicorn forks
    is not reused after it). Writes run in ``BEGIN IMMEDIATE`` transactions, so :meth:`incr` and
    :meth:`pop` are atomic across processes; the database uses write-ahead logging so readers do
    not wait for writers.

    ``sqlite:///relative/path.sqlite3`` (relative to the app's instance folder) or
    ``sqlite:////absolute/path.sqlite3`` in ``CALLTRANSFER_STORE_URL``.

    A write waits at most ``timeout`` seconds for another process's lock (less when the handler's
    deadline is nearer), then fails as :class:`~flask_calltransfer.StoreUnavailable`; a read-only
    file or a full disk fails the same way.
    """

    outage_errors = (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: t.Callable[[], float] = time.time,
        timeout: float = 0.25,
    ) -> None:
        self.path = pathlib.Path(path)
        self.timeout = timeout
        self._clock = clock
        self._local = threading.local()
        self._writes = 0

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            return connection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=True
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(_SCHEMA)
        connection.execute(_COUNTS_SCHEMA)
        self._local.connection = connection
        self._local.pid = os.getpid()
        self._local.busy = self.timeout
        return connection

    def _budget(self, connection: sqlite3.Connection) -> None:
        # Waiting for a lock must end inside the handler's deadline, when there is one.
        busy = wait_budget(self.timeout)
        if busy != self._local.busy:
            connection.execute(f"PRAGMA busy_timeout = {int(busy * 1000)}")
            self._local.busy = busy

    def _now(self) -> float:
        return self._clock()

    def _read(self, connection: sqlite3.Connection, key: str) -> str | None:
        row = connection.execute(
            "SELECT value FROM calltransfer_kv WHERE key = ? AND (expires IS NULL OR expires > ?)",
            (key, self._now()),
        ).fetchone()
        return None if row is None else str(row[0])

    def _write(self, work: t.Callable[[sqlite3.Connection], t.Any]) -> t.Any:
        connection = self._connection()
        self._budget(connection)
        try:
            if connection.in_transaction:
                # Left open by an interrupted write: never build on it, never keep the lock.
                connection.execute("ROLLBACK")
            connection.execute("BEGIN IMMEDIATE")
            result = work(connection)
            self._writes += 1
            if self._writes % _SWEEP_EVERY == 0:
                for table in ("calltransfer_kv", "calltransfer_counts"):
                    connection.execute(
                        f"DELETE FROM {table} WHERE expires IS NOT NULL AND expires <= ?", (self._now(),)
                    )
            connection.execute("COMMIT")
        except BaseException:
            # Whatever arrives (an error, a deadline), the connection leaves without a transaction.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return result

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._now() + ttl

    def get(self, key: str) -> str | None:
        return self._read(self._connection(), key)

    def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        self._write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO calltransfer_kv (key, value, expires) VALUES (?, ?, ?)",
                (key, value, self._expiry(ttl)),
            )
        )

    def delete(self, key: str) -> None:
        self._write(lambda db: db.execute("DELETE FROM calltransfer_kv WHERE key = ?", (key,)))

    def pop(self, key: str) -> str | None:
        def work(db: sqlite3.Connection) -> str | None:
            value = self._read(db, key)
            db.execute("DELETE FROM calltransfer_kv WHERE key = ?", (key,))
            return value

        return t.cast("str | None", self._write(work))

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        def work(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT value, expires FROM calltransfer_kv"
                " WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (key, self._now()),
            ).fetchone()
            if row is None:
                result, expires = amount, self._expiry(ttl)
            else:
                result, expires = int(row[0]) + amount, row[1]
            db.execute(
                "INSERT OR REPLACE INTO calltransfer_kv (key, value, expires) VALUES (?, ?, ?)",
                (key, str(result), expires),
            )
            return result

        return t.cast(int, self._write(work))

    def add_counts(self, key: str, counts: t.Mapping[str, int], *, ttl: float | None = None) -> None:
        def work(db: sqlite3.Connection) -> None:
            now = self._now()
            # Every counter of a key shares the expiry of the key's first counter.
            row = db.execute(
                "SELECT expires FROM calltransfer_counts WHERE key = ? AND (expires IS NULL OR expires > ?)"
                " LIMIT 1",
                (key, now),
            ).fetchone()
            expires = self._expiry(ttl) if row is None else row[0]
            db.executemany(_ADD_COUNT, [(key, name, amount, expires, now) for name, amount in counts.items()])

        self._write(work)

    def counts(self, key: str) -> dict[str, int]:
        rows = self._connection().execute(
            "SELECT name, value FROM calltransfer_counts WHERE key = ? AND (expires IS NULL OR expires > ?)",
            (key, self._now()),
        )
        return {str(name): int(value) for name, value in rows}

    def close(self) -> None:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            connection.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<SqliteStore {str(self.path)!r}>"
