"""State that outlives one request, behind one small interface (:class:`Store`)."""

from __future__ import annotations

import os

from .. import messages
from ..exceptions import ConfigurationError
from .base import Store
from .memory import MemoryStore
from .sqlite import SqliteStore

#: The store used when ``CALLTRANSFER_STORE_URL`` is not set: a file in the app's instance folder.
DEFAULT_URL = "sqlite:///calltransfer.sqlite3"

_REDIS_SCHEMES = tuple(
    f"{scheme}://"
    for scheme in (
        "redis",
        "rediss",
        "unix",
        "redis+cluster",
        "rediss+cluster",
        "redis+sentinel",
        "rediss+sentinel",
    )
)


def from_url(
    url: str, *, instance_path: str, key: str = "CALLTRANSFER_STORE_URL", timeout: float = 0.25
) -> Store:
    """Build the store a URL names: ``memory://``, ``sqlite:///path``, ``redis://host/db``,
    ``redis+cluster://host:port``, ``redis+sentinel://host:port,.../service`` or
    ``postgresql://user@host/database``.

    Relative SQLite paths are taken from ``instance_path``. ``timeout`` bounds each operation's
    wait for the server or for another process's lock.
    """
    if url == "memory://":
        return MemoryStore()
    if url.startswith(_REDIS_SCHEMES):
        from .redis import RedisStore

        try:
            return RedisStore.from_url(url, timeout=timeout)
        except ImportError:
            raise ConfigurationError(messages.store_needs_redis(key), key=key) from None
        except ValueError as exc:
            raise ConfigurationError(messages.store_url_invalid(key, url) + f" ({exc})", key=key) from None
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        try:
            # SQLAlchemy is imported here, psycopg by from_url: either may be missing.
            from .postgres import PostgresStore

            return PostgresStore.from_url(url, timeout=timeout)
        except ImportError:
            raise ConfigurationError(messages.store_needs_postgres(key), key=key) from None
        except Exception as exc:  # SQLAlchemy's ArgumentError and friends: a URL it cannot read
            raise ConfigurationError(messages.store_url_invalid(key, url), key=key) from exc
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path or path.endswith("/"):
            raise ConfigurationError(messages.store_url_invalid(key, url), key=key)
        return SqliteStore(
            path if os.path.isabs(path) else os.path.join(instance_path, path), timeout=timeout
        )
    raise ConfigurationError(messages.store_url_invalid(key, url), key=key)


__all__ = ["DEFAULT_URL", "MemoryStore", "SqliteStore", "Store", "from_url"]
