"""Running handlers under a deadline, in the request's own thread and Flask context.

Handlers always run in the thread (or greenlet) that serves the request, so ``g``, teardown
callbacks, ``sqlite3`` connections and database sessions behave as in any view. What interrupts a
handler at its deadline depends on where the request runs:

- **The main thread** (gunicorn's sync workers, test clients): a one-shot ``SIGALRM`` timer. Its
  handler raises :class:`HandlerTimeout` at the next bytecode, and interrupts ``time.sleep`` and
  blocking socket calls too.
- **gevent** (gunicorn's gevent worker, or any monkey-patched server): a timer on gevent's hub
  that throws :class:`HandlerTimeout` into the request's greenlet where it waits: at a sleep, a
  socket call or a lock.
- **Any other thread** (``flask run``, gunicorn's gthread worker, waitress): one watchdog thread
  per process that schedules :class:`HandlerTimeout` in the request's thread with CPython's
  ``PyThreadState_SetAsyncExc``. It is raised at the thread's next bytecode; a thread blocked in C
  (``time.sleep``, a socket read without a timeout) receives it when that call returns.

Whatever the method, the exception is raised at most once per deadline, never after the deadline
has been closed, and never inside a :func:`shielded` section: a deadline that passes there is
raised when the section ends. A signal that arrives late is ignored, never re-raised, so no timer
of this module can end a process. C code that holds the GIL cannot be interrupted by anything; the
shipped gunicorn configuration bounds it with the worker ``timeout``.
"""

from __future__ import annotations

import contextvars
import ctypes
import functools
import itertools
import logging
import os
import signal
import sys
import threading
import time
import typing as t

from .timers import PerProcess
from .timers import Timers

T = t.TypeVar("T")


class HandlerTimeout(BaseException):
    """A handler ran past ``CALLTRANSFER_HANDLER_TIMEOUT``.

    It derives from :class:`BaseException`, like :class:`KeyboardInterrupt`, so a handler's
    ``except Exception`` cannot swallow it and carry on past the deadline.

    .. versionadded:: 0.1
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(f"The handler ran past its {timeout:g} s deadline.")
        #: The deadline that passed, in seconds.
        self.timeout = timeout


class _Expired(HandlerTimeout):
    """The deadline's own exception; creating one marks its scope as interrupted."""

    def __init__(self, scope: _Scope | None = None) -> None:
        super().__init__(0.0)
        # CPython creates an asynchronous exception from its class, without arguments, in the
        # thread it is raised in: there the current scope is the one it was meant for.
        scope = scope or _current.get()
        if scope is not None:
            scope.raised = True


_current: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
    "calltransfer_deadline", default=None
)
#: Open thread-method scopes by token. Whoever pops a token first (the watchdog to interrupt, the
#: request thread to close or shield) owns the scope's interruption: a dict pop is atomic.
_active: dict[int, _Scope] = {}
_tokens = itertools.count()
# Module globals, not attribute lookups: these run several times on every webhook.
_get_ident = threading.get_ident
_monotonic = time.monotonic
#: setitimer(0) would disarm the timer instead of firing it at once; a year is forever here.
_FOREVER = 365 * 86400.0

# Two prototypes of one C function: a NULL exception (the second) cancels one that is scheduled
# for the thread and not yet raised.
_set_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
_cancel_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


def _clear_async_exc(ident: int) -> None:
    _cancel_async_exc(ident, None)


class _Scope:
    """One deadline over one call; see the module docstring for the three methods."""

    __slots__ = (
        "timeout",
        "deadline",
        "method",
        "ident",
        "token",
        "depth",
        "fired",
        "raised",
        "pending",
        "closed",
        "claimed",
        "injected",
        "timer",
        "greenlet",
        "pid",
    )

    def __init__(self, timeout: float, method: str, ident: int) -> None:
        self.timeout = timeout
        self.deadline = _monotonic() + timeout
        self.method = method
        self.ident = ident
        self.token = -1
        #: Nesting depth of shielded sections.
        self.depth = 0
        #: The watchdog took the token and scheduled the exception (thread method).
        self.fired = False
        #: The deadline's exception was raised in the request (at most once per scope).
        self.raised = False
        #: The deadline passed inside a shielded section.
        self.pending = False
        self.closed = False
        #: The request thread itself took its token from ``_active`` (thread method).
        self.claimed = False
        self.injected: threading.Event | None = None
        self.timer: t.Any = None
        self.greenlet: t.Any = None
        # A process forked inside a handler inherits the scope, but not the watchdog serving it.
        self.pid = _process[0]

    # Opening and closing ------------------------------------------------------------------------

    def open(self) -> None:
        if self.method == "alarm":
            _alarm[0] = self
            signal.setitimer(signal.ITIMER_REAL, self.timeout)
        elif self.method == "gevent":
            # Only chosen when gevent has patched threading, so it is imported already.
            gevent: t.Any = sys.modules["gevent"]
            self.greenlet = gevent.getcurrent()
            self.timer = gevent.get_hub().loop.timer(self.timeout)
            self.timer.start(self._gevent_fire)
        else:
            self.injected = threading.Event()
            self.token = next(_tokens)
            _active[self.token] = self
            _watchdog.get().add(self.deadline, self.token)

    def close(self) -> None:
        """End the deadline. Afterwards nothing raises in this thread on its behalf."""
        if self.closed:
            return
        self.closed = True
        if self.method == "alarm":
            _alarm[0] = None
            signal.setitimer(signal.ITIMER_REAL, 0)
        elif self.method == "gevent":
            self.timer.close()
        elif _active.pop(self.token, None) is None and not self.claimed:
            # The watchdog took the token first: its exception is scheduled, or already raised.
            self._absorb()

    def _absorb(self) -> None:
        injected = self.injected
        assert injected is not None
        injected.wait()
        _clear_async_exc(self.ident)

    def _claim(self) -> bool:
        """Take the token back from ``_active``; false if the watchdog got it first."""
        if _active.pop(self.token, None) is None:
            return False
        self.claimed = True
        return True

    # The three interrupters -----------------------------------------------------------------------

    def _due(self) -> bool:
        """Whether the timer or gevent's hub should raise now; they run between two bytecodes of
        the request, or while its greenlet waits, so nothing races this."""
        if self.closed or self.raised:
            return False
        if self.depth:
            self.pending = True
            return False
        return True

    def _alarm_fire(self) -> None:
        if self._due():
            raise _Expired(self)

    def _gevent_fire(self) -> None:
        if self._due():
            self.greenlet.throw(_Expired(self))

    def _watchdog_fire(self) -> None:
        # Called by the watchdog after popping this scope's token: it owns the interruption.
        self.fired = True
        _set_async_exc(self.ident, _Expired)
        assert self.injected is not None
        self.injected.set()

    # Shielded sections ------------------------------------------------------------------------------

    def enter_shield(self) -> None:
        if self.depth == 0 and self.method == "thread" and not self.claimed and not self._claim():
            # The watchdog got there first: take its exception out of the way of the section.
            self._absorb()
            if not self.raised:
                raise _Expired(self)
        self.depth += 1

    def exit_shield(self) -> None:
        self.depth -= 1
        if self.depth or self.closed:
            # A section that outlived its deadline's scope (a generator) ends quietly.
            return
        if self.method == "thread":
            if self.claimed and not self.raised:
                self.claimed = False
                _active[self.token] = self
            # Put back first, then read the clock: a watchdog that found the token missing did so
            # after the deadline, so this reading sees the deadline passed too.
            if not (self.pending or time.monotonic() >= self.deadline):
                return
            if not self.claimed and not self._claim():
                self._absorb()
        elif not (self.pending or time.monotonic() >= self.deadline):
            return
        if not self.raised:
            raise _Expired(self)


#: The scope the main thread's timer is serving, if any.
_alarm: list[_Scope | None] = [None]


def _on_alarm(signum: int, frame: object) -> None:
    scope = _alarm[0]
    # A signal that arrives after its deadline closed is ignored: re-raising it with the default
    # action would end the process, and with it every request the worker serves.
    if scope is not None:
        scope._alarm_fire()


_HAS_TIMER = hasattr(signal, "setitimer")

# This process's id and main thread, read once per request twice over otherwise (a system call
# and a lookup). A forked child, a gunicorn worker, reads them again: threading has already
# made the forking thread its main thread when these callbacks run.
_process = [os.getpid(), threading.main_thread().ident]


def _after_fork() -> None:
    _process[:] = [os.getpid(), threading.main_thread().ident]


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX; nothing forks elsewhere
    os.register_at_fork(after_in_child=_after_fork)
try:
    # The C module's getsignal skips the enum conversion signal.getsignal does: this runs per
    # request.
    from _signal import getsignal as _getsignal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - other Python implementations
    _getsignal = signal.getsignal


def _alarm_available(ident: int) -> bool:
    if not _HAS_TIMER or ident != _process[1] or _alarm[0] is not None:
        return False
    handler = _getsignal(signal.SIGALRM)
    if handler is _on_alarm:
        return True
    # Someone else's timer or SIGALRM handler is left alone.
    if handler in (signal.SIG_DFL, None) and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0):
        # Installed once and kept: swapping handlers on every request costs more than the timer.
        signal.signal(signal.SIGALRM, _on_alarm)
        return True
    return False


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))


def _method(ident: int) -> str:
    # gevent.monkey is imported only where gevent may patch: elsewhere one dict lookup decides.
    if "gevent.monkey" in sys.modules and _gevent_patched():
        return "gevent"
    if _alarm_available(ident):
        return "alarm"
    return "thread"


def _fire(token: int) -> None:
    # A token no longer active belongs to a scope that closed, or that is inside a shielded
    # section, whose end reads the clock and raises itself.
    scope = _active.pop(token, None)
    if scope is not None:
        scope._watchdog_fire()


#: One thread per process that fires thread-method deadlines in order. Tokens only: a closed
#: scope is freed at once, its token left to expire there. A forked worker starts its own,
#: without the scopes that were open in the parent.
_watchdog = PerProcess(lambda: Timers(_fire, name="calltransfer-deadlines"), on_fork=_active.clear)


def call_with_deadline(func: t.Callable[[], T], timeout: float | None, *, method: str = "auto") -> T:
    """Call ``func`` in this thread and return its result, or raise :class:`HandlerTimeout` once
    ``timeout`` seconds have passed.

    A ``func`` that catches the exception and returns anyway still ends in :class:`HandlerTimeout`:
    its answer came too late.

    :param timeout: seconds; ``None`` calls ``func`` directly, without a deadline.
    :param method: ``"auto"`` picks the method for where it runs (see the module's docs);
        ``"thread"`` uses the watchdog even in the main thread.
    """
    if timeout is None:
        return func()
    ident = _get_ident()
    outer = _current.get()
    if outer is not None and not outer.closed and outer.ident == ident:
        # One deadline at a time per thread: inside another, the outer one applies. Two would
        # have to agree on every shielded section, and a timer signal can only serve one.
        return func()
    if not _logging_guarded:
        _guard_logging()
    if timeout < 1e-6:
        timeout = 1e-6
    elif timeout > _FOREVER:
        timeout = _FOREVER
    scope = _Scope(timeout, _method(ident) if method == "auto" else "thread", ident)
    reset = _current.set(scope)
    try:
        # Everything from opening to closing sits inside this try: the one exception a deadline
        # raises can arrive at any bytecode in between, including inside close().
        try:
            scope.open()
            result = func()
        finally:
            scope.close()
    except HandlerTimeout:
        scope.close()
        raise HandlerTimeout(timeout) from None
    finally:
        _current.reset(reset)
    # A late answer is never used, even where nothing could interrupt the handler (C code, a
    # greenlet that never yields).
    if scope.fired or scope.raised or _monotonic() >= scope.deadline:
        raise HandlerTimeout(timeout)
    return result


_logging_guarded = False


def _guard_logging() -> None:
    """Shield ``logging.Handler.handle``.

    It takes the handler's lock with ``self.acquire()`` and only then enters its ``try``: a
    deadline's exception raised between the two would keep the lock forever, and every thread that
    logs through that handler afterwards would wait for it.
    """
    global _logging_guarded
    if _logging_guarded:
        return
    _logging_guarded = True
    handle = logging.Handler.handle

    @functools.wraps(handle)
    def shielded_handle(self: logging.Handler, record: logging.LogRecord) -> t.Any:
        with shielded():
            return handle(self, record)

    logging.Handler.handle = shielded_handle  # type: ignore[method-assign]


def remaining() -> float | None:
    """Seconds left before the current deadline, or ``None`` outside one."""
    scope = _current.get()
    if scope is None or scope.closed:
        return None
    return max(scope.deadline - time.monotonic(), 0.0)


class shielded:
    """A section the deadline must not interrupt: a store operation, delivery bookkeeping.

    A deadline that passes inside it raises :class:`HandlerTimeout` when the section ends, after
    its work finished or rolled back; one that passed just before it raises on entry, before the
    work starts. Outside a deadline, or in another thread than the deadline's, it does nothing.

    .. code-block:: python

        from flask_calltransfer.deadlines import shielded

        with app.app_context(), shielded():
            transfers.store.incr("agent-turn")
    """

    __slots__ = ("_scope",)

    def __enter__(self) -> None:
        scope = _current.get()
        if scope is None or scope.closed or scope.ident != _get_ident() or scope.pid != _process[0]:
            self._scope = None
            return
        self._scope = scope
        scope.enter_shield()

    def __exit__(self, *exc_info: object) -> None:
        scope = self._scope
        if scope is not None:
            scope.exit_shield()
