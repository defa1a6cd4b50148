"""The store interface: the small, typed key-value contract every backend fulfils.

Whatever must outlive one request (a pending sipgate transfer, a tool call already delivered)
goes through a store, so it works across gunicorn workers and, with a shared backend, across
machines. A backend is one class with five methods.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import contextvars
import functools
import time
import typing as t

from .. import messages
from ..deadlines import shielded
from ..exceptions import StoreUnavailable
from ..logs import logger

#: The operations a handler's deadline must never cut in half.
_OPERATIONS = ("get", "set", "delete", "pop", "incr")


#: Set inside :meth:`Store.trying`: operations try the store even while its breaker is open.
_trying: contextvars.ContextVar[bool] = contextvars.ContextVar("calltransfer_store_trying", default=False)


def _guard(name: str, operation: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    @functools.wraps(operation)
    def run(self: Store, *args: t.Any, **kwargs: t.Any) -> t.Any:
        now = time.monotonic()
        if now < self._open_until and not _trying.get():
            self.faults["skipped: " + name] += 1
            raise StoreUnavailable(messages.store_circuit_open(repr(self), self._open_until - now))
        with shielded():
            try:
                result = operation(self, *args, **kwargs)
            except self.outage_errors as exc:
                self.faults["failed: " + name] += 1
                # One failure opens the breaker: a dead store costs one short timeout per
                # cool-down, not one per operation.
                self._open_until = time.monotonic() + self.cooldown
                raise StoreUnavailable(messages.store_failed(repr(self), name, exc)) from exc
        if self._open_until:
            self._open_until = 0.0
            logger.info(messages.store_recovered(repr(self)))
        return result

    run.__calltransfer_guarded__ = True  # type: ignore[attr-defined]
    return run


@contextlib.contextmanager
def bookkeeping(what: str) -> t.Iterator[None]:
    """Run store bookkeeping that must never change a caller's answer: a store outage is logged
    (and counted by the store) and the block is skipped."""
    try:
        yield
    except StoreUnavailable as exc:
        logger.warning(messages.store_bookkeeping_skipped(what, str(exc)))


class Store(abc.ABC):
    """A key-value store with expiry. Keys and values are strings.

    Implementations must make :meth:`incr` and :meth:`pop` atomic across every process that
    shares the store: two workers incrementing the same key get different results, and two
    workers popping the same key get the value at most once. An expired entry is never returned.

    Subclasses get two guarantees without doing anything:

    - Every operation runs shielded from handler deadlines (see
      :class:`~flask_calltransfer.deadlines.shielded`): a deadline that passes during ``incr``
      raises after the increment committed or rolled back, never half-way.
    - Every operation sits behind a circuit breaker. An exception in :attr:`outage_errors` is
      raised as :class:`~flask_calltransfer.StoreUnavailable` and opens the breaker for
      :attr:`cooldown` seconds, during which operations fail at once instead of each waiting for
      a dead server. The first success after that closes it. :attr:`faults` counts both.

    .. versionadded:: 0.1
    """

    #: Exceptions that mean the store is down, locked, full or too slow (not a bug of the caller).
    outage_errors: tuple[type[BaseException], ...] = (OSError,)
    #: Seconds operations fail at once after an outage error, before the store is tried again.
    cooldown: float = 1.0
    _open_until: float = 0.0

    @property
    def faults(self) -> collections.Counter[str]:
        """Operations that failed (``"failed: incr"``) or were skipped while the breaker was open
        (``"skipped: incr"``), in this process."""
        counts: collections.Counter[str] | None = self.__dict__.get("_faults")
        if counts is None:
            counts = self.__dict__["_faults"] = collections.Counter()
        return counts

    @contextlib.contextmanager
    def trying(self) -> t.Iterator[None]:
        """Operations in this block try the store even while the breaker is open (each still within
        the store's timeout), for state a transfer cannot do without.

        Another worker's failure, or this one's a moment ago, must not lose a caller's announced
        transfer when the store answers again.
        """
        token = _trying.set(True)
        try:
            yield
        finally:
            _trying.reset(token)

    @property
    def available(self) -> bool:
        """Whether the circuit breaker lets operations through now."""
        return time.monotonic() >= self._open_until

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _OPERATIONS:
            # Looked up through the whole MRO: an operation may come from a mixin.
            operation = getattr(cls, name, None)
            if operation is not None and not getattr(operation, "__isabstractmethod__", False):
                if not getattr(operation, "__calltransfer_guarded__", False):
                    setattr(cls, name, _guard(name, operation))

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
