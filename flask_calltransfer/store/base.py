"""The store interface: the small, typed key-value contract every backend fulfils.

Whatever must outlive one request (a pending sipgate transfer, a tool call already delivered)
goes through a store, so it works across gunicorn workers and, with a shared backend, across
machines. A backend is one class with five methods.
"""

from __future__ import annotations

import abc


class Store(abc.ABC):
    """A key-value store with expiry. Keys and values are strings.

    Implementations must make :meth:`incr` and :meth:`pop` atomic across every process that
    shares the store: two workers incrementing the same key get different results, and two
    workers popping the same key get the value at most once. An expired entry is never returned.

    .. versionadded:: 0.1
    """

    @abc.abstractmethod
    def get(self, key: str) -> str | None:
        """The value of ``key``, or ``None`` if it is absent or expired."""

    @abc.abstractmethod
    def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any value, expiring after ``ttl`` seconds."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing an absent key is not an error."""

    @abc.abstractmethod
    def pop(self, key: str) -> str | None:
        """Atomically return and remove the value of ``key``, or ``None`` if absent or expired."""

    @abc.abstractmethod
    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Atomically add ``amount`` to the integer under ``key`` (absent counts as 0) and return
        the result. ``ttl`` sets the expiry when the key is created."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections. The store may be used again afterwards."""
