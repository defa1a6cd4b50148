"""The store interface: the small, typed key-value contract every backend fulfils.

Whatever must outlive one request (a pending sipgate transfer, a tool call already delivered)
goes through a store, so it works across gunicorn workers and, with a shared backend, across
machines. A backend is one class with five methods.
"""

from __future__ import annotations

import abc
import functools
import typing as t

from ..deadlines import shielded

#: The operations a handler's deadline must never cut in half.
_OPERATIONS = ("get", "set", "delete", "pop", "incr")


def _shield(operation: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    @functools.wraps(operation)
    def run(*args: t.Any, **kwargs: t.Any) -> t.Any:
        with shielded():
            return operation(*args, **kwargs)

    run.__calltransfer_shielded__ = True  # type: ignore[attr-defined]
    return run


class Store(abc.ABC):
    """A key-value store with expiry. Keys and values are strings.

    Implementations must make :meth:`incr` and :meth:`pop` atomic across every process that
    shares the store: two workers incrementing the same key get different results, and two
    workers popping the same key get the value at most once. An expired entry is never returned.

    Every backend's operations run shielded from handler deadlines (see
    :func:`~flask_calltransfer.deadlines.shielded`): a deadline that passes during ``incr`` raises
    after the increment committed or rolled back, never half-way. Subclasses get this without
    doing anything.

    .. versionadded:: 0.1
    """

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _OPERATIONS:
            operation = cls.__dict__.get(name)
            if operation is not None and not getattr(operation, "__isabstractmethod__", False):
                if not getattr(operation, "__calltransfer_shielded__", False):
                    setattr(cls, name, _shield(operation))

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
