"""Daemon threads that call back at deadlines, one per purpose and per process.

The thread-method handler deadlines (:mod:`flask_calltransfer.deadlines`) and the PostgreSQL
store's bound on a server that stops answering (:mod:`flask_calltransfer.store.postgres`) both need
"call this when that moment has passed" without a thread per wait.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
import typing as t

T = t.TypeVar("T")


class Timers:
    """Calls ``expire(token)`` in its own daemon thread once a token's deadline has passed, in
    deadline order.

    Tokens are never cancelled: whoever hands one out decides, when it expires, whether it still
    means anything, so ending a wait early costs nothing here.
    """

    def __init__(self, expire: t.Callable[[int], None], *, name: str) -> None:
        self._expire = expire
        self._heap: list[tuple[float, int]] = []
        self._wake = threading.Condition(threading.Lock())
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def add(self, deadline: float, token: int) -> None:
        """Call back for ``token`` at ``deadline``, on the :func:`time.monotonic` clock."""
        with self._wake:
            heapq.heappush(self._heap, (deadline, token))
            if self._heap[0][1] == token:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                deadline, token = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    # Bounded, because Condition.wait overflows on a huge timeout.
                    self._wake.wait(min(wait, 3600.0))
                    continue
                heapq.heappop(self._heap)
            self._expire(token)


class PerProcess(t.Generic[T]):
    """An object made on first use, and made again in a forked child: threads do not survive a
    fork, so a gunicorn worker needs its own.

    :param make: makes the object.
    :param on_fork: called before the child's object is made, when the parent had one.
    """

    def __init__(self, make: t.Callable[[], T], *, on_fork: t.Callable[[], None] | None = None) -> None:
        self._make = make
        self._on_fork = on_fork
        self._made: tuple[int, T] | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        made = self._made
        if made is not None and made[0] == os.getpid():
            return made[1]
        with self._lock:
            made = self._made
            if made is None or made[0] != os.getpid():
                if made is not None and self._on_fork is not None:
                    self._on_fork()
                made = self._made = (os.getpid(), self._make())
            return made[1]
