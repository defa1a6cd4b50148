"""The store interface: the small, typed key-value contract every backend fulfils.

Whatever must outlive one request (a pending sipgate transfer, a tool call already delivered)
goes through a store, so it works across gunicorn workers and, with a shared backend, across
machines. A backend is one class with five methods; counters (:meth:`Store.add_counts`) come
with a default built on them, which backends replace with one atomic round trip.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import contextvars
import functools
import threading
import time
import typing as t

from .. import messages
from ..deadlines import remaining
from ..deadlines import shield_target
from ..exceptions import StoreUnavailable
from ..logs import logger

#: The operations a handler's deadline must never cut in half.
_OPERATIONS = ("get", "set", "delete", "pop", "incr", "add_counts", "counts")


#: Set inside :meth:`Store.trying`: operations try the store even while its breaker is open.
_trying: contextvars.ContextVar[bool] = contextvars.ContextVar("calltransfer_store_trying", default=False)


#: Each operation's breaker: reads can work while writes cannot (a locked SQLite file, a
#: read-only disk, a Redis replica), and a working read must not keep reopening the way for writes.
_KIND = {
    "get": "read",
    "set": "write",
    "delete": "write",
    "pop": "write",
    "incr": "write",
    "add_counts": "write",
    "counts": "read",
}
_count_lock = threading.Lock()


def _guard(name: str, operation: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    kind = _KIND[name]

    @functools.wraps(operation)
    def run(self: Store, *args: t.Any, **kwargs: t.Any) -> t.Any:
        # The property only on a store's first operation: this runs for every one.
        breaker = self.__dict__.get("_calltransfer_breaker")
        if breaker is None:
            breaker = self._breaker
        open_until = breaker.get(kind, 0.0)
        # A breaker that was never opened, or has closed again, needs no clock: nearly always.
        started = time.monotonic() if open_until else 0.0
        if started < open_until and not _trying.get():
            self._count("skipped: " + name)
            raise StoreUnavailable(messages.store_circuit_open(repr(self), open_until - started))
        # What ``with shielded()`` does, without building it for the common case of no deadline.
        scope = shield_target()
        if scope is not None:
            if scope.depth:
                # Shielded already (a request between its body and its handlers): entering and
                # leaving once more would change nothing.
                scope = None
            else:
                scope.enter_shield()
        try:
            result = operation(self, *args, **kwargs)
        except self.outage_errors as exc:
            self._count("failed: " + name)
            # One failure opens the breaker: a dead store costs one short timeout per
            # cool-down, not one per operation.
            breaker[kind] = time.monotonic() + self.cooldown
            breaker[kind + " opened"] = time.monotonic()
            raise StoreUnavailable(messages.store_failed(repr(self), name, exc)) from exc
        except Exception as exc:
            # Not an outage (a value the backend cannot hold, a bug in a custom store): the
            # caller still degrades, but the store stays in use for everything else.
            self._count("error: " + name)
            raise StoreUnavailable(messages.store_error(repr(self), name, exc)) from exc
        finally:
            if scope is not None:
                scope.exit_shield()
        # Only a success that started after the breaker opened says the store is back; one that
        # started while it was closed has nothing to report, even if another thread opened it since.
        if open_until and breaker.get(kind, 0.0) and breaker.get(kind + " opened", 0.0) < started:
            breaker[kind] = 0.0
            logger.info(messages.store_recovered(repr(self)))
        return result

    run.__calltransfer_guarded__ = True  # type: ignore[attr-defined]
    return run


class _Trying:
    """The context manager of :meth:`Store.trying`: a class, as it runs on every tool call and
    sipgate utterance, where a generator-based one costs several times as much."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _trying.set(True)

    def __exit__(self, *exc_info: object) -> None:
        _trying.reset(self._token)


def wait_budget(timeout: float) -> float:
    """Seconds a store operation may wait for its server or a lock: ``timeout``, or what is left
    of the handler's deadline when that is nearer (at least 10 ms, so it can still answer)."""
    left = remaining()
    return timeout if left is None else max(min(timeout, left), 0.01)


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

    @property
    def _breaker(self) -> dict[str, float]:
        breaker: dict[str, float] | None = self.__dict__.get("_calltransfer_breaker")
        if breaker is None:
            breaker = self.__dict__["_calltransfer_breaker"] = {}
        return breaker

    def _count(self, what: str) -> None:
        with _count_lock:
            self.faults[what] += 1

    @property
    def faults(self) -> collections.Counter[str]:
        """Operations that failed (``"failed: incr"``) or were skipped while the breaker was open
        (``"skipped: incr"``), in this process."""
        counts: collections.Counter[str] | None = self.__dict__.get("_faults")
        if counts is None:
            counts = self.__dict__["_faults"] = collections.Counter()
        return counts

    def trying(self) -> t.ContextManager[None]:
        """Operations in this block try the store even while the breaker is open (each still within
        the store's timeout), for state a transfer cannot do without.

        Another worker's failure, or this one's a moment ago, must not lose a caller's announced
        transfer when the store answers again.
        """
        return _Trying()

    @property
    def available(self) -> bool:
        """Whether the circuit breakers let reads and writes through now."""
        now = time.monotonic()
        return all(now >= self._breaker.get(kind, 0.0) for kind in ("read", "write"))

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _OPERATIONS:
            # Looked up through the whole MRO: an operation may come from a mixin.
            operation = getattr(cls, name, None)
            # The defaults of add_counts and counts are built on guarded operations already.
            if operation is getattr(Store, name, None):
                continue
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

    def add_counts(self, key: str, counts: t.Mapping[str, int], *, ttl: float | None = None) -> None:
        """Add each amount in ``counts`` to the counter of that name under ``key`` (absent counts
        as 0). ``ttl`` sets the expiry of ``key`` when it is created; all its counters expire
        together.

        The default is built on :meth:`incr`, :meth:`get` and :meth:`set` (several round trips,
        each atomic); the built-in backends do it in one atomic step.

        .. versionadded:: 0.1
        """
        for name, amount in counts.items():
            self.incr(f"{key}#c:{name}", amount, ttl=ttl)
            # Names are listed in numbered slots, so workers adding different names never
            # overwrite each other's list.
            if self.incr(f"{key}#seen:{name}", ttl=ttl) == 1:
                slot = self.incr(f"{key}#names", ttl=ttl)
                self.set(f"{key}#name:{slot}", name, ttl=ttl)

    def counts(self, key: str) -> dict[str, int]:
        """Every counter under ``key``, by name; ``{}`` if there are none or they expired.

        .. versionadded:: 0.1
        """
        found: dict[str, int] = {}
        for slot in range(1, int(self.get(f"{key}#names") or 0) + 1):
            name = self.get(f"{key}#name:{slot}")
            value = None if name is None else self.get(f"{key}#c:{name}")
            if name is not None and value is not None:
                found[name] = int(value)
        return found

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections. The store may be used again afterwards."""
