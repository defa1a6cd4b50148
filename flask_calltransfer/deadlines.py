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
#: A timer that fires this close before its deadline fires for it: the handlers' deadline counts
#: from the request's parse, a little after the timer was set when its body began.
_EARLY = 0.002

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
        "armed_at",
        "paused",
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
        #: When the alarm or gevent timer fires; before ``deadline`` when it serves a nearer
        #: deadline of the request first (:class:`RequestDeadline`).
        self.armed_at = self.deadline
        #: Between a request's body and its handlers: shielded, and no deadline for remaining().
        self.paused = False

    # Opening and closing ------------------------------------------------------------------------

    def open(self, seconds: float | None = None) -> None:
        """Start the timer: in ``seconds`` (default: the scope's own timeout)."""
        if self.method == "alarm":
            _alarm[0] = self
            self._arm(self.timeout if seconds is None else seconds)
        elif self.method == "gevent":
            # Only chosen when gevent has patched threading, so it is imported already.
            gevent: t.Any = sys.modules["gevent"]
            self.greenlet = gevent.getcurrent()
            self._arm(self.timeout if seconds is None else seconds)
        else:
            self.injected = threading.Event()
            self.token = next(_tokens)
            _active[self.token] = self
            _watchdog.get().add(self.deadline, self.token)

    def _arm(self, seconds: float) -> None:
        # The alarm and gevent methods only; the watchdog's tokens always expire at the deadline.
        self.armed_at = _monotonic() + seconds
        if self.method == "alarm":
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-6))
        else:
            if self.timer is not None:
                self.timer.close()
            self.timer = sys.modules["gevent"].get_hub().loop.timer(max(seconds, 0.0))
            self.timer.start(self._gevent_fire)

    def resume(self, deadline: float) -> None:
        """End a request's pause: its handlers' deadline is ``deadline`` (on the monotonic clock),
        and the shield is lifted (raising at once if that deadline has passed).

        A timer set for later is moved now; one set for earlier is moved when it fires. A
        watchdog token is replaced: the old one, claimed by the shield, expires unheard.
        """
        self.deadline = deadline
        if self.method == "thread":
            self.token = next(_tokens)
            _watchdog.get().add(deadline, self.token)
        elif self.pending:
            # The timer fired for the deadline before, which has passed; this one may not have.
            left = deadline - _monotonic()
            if left > 0:
                self.pending = False
                self._arm(left)
        elif not deadline - _EARLY <= self.armed_at <= deadline:
            if self.method == "gevent" and self.armed_at < deadline:
                # Set for the body's nearer deadline: gevent's timer interrupts no system call,
                # and when it fires early it waits again for this one (_due). Nearly every
                # request is answered before then, so it is never moved: one timer less each.
                pass
            else:
                # Set for later, or for a nearer deadline (the body's) that would interrupt the
                # handlers' system calls long before theirs: moved to theirs. Set for a moment
                # within _EARLY of it (sipgate's, armed when the body began), it stays.
                self._arm(deadline - _monotonic())
        self.paused = False
        self.exit_shield()

    def close(self) -> None:
        """End the deadline. Afterwards nothing raises in this thread on its behalf."""
        if self.closed:
            return
        self.closed = True
        if self.method == "alarm":
            _alarm[0] = None
            signal.setitimer(signal.ITIMER_REAL, 0)
        elif self.method == "gevent":
            if self.timer is not None:
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
        early = self.deadline - _monotonic()
        if early > _EARLY:
            # Set for a nearer deadline of the request that has moved on (its body was read):
            # the timer waits again for this one.
            self._arm(early)
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


_patched_by_gevent = False


def _gevent_patched() -> bool:
    global _patched_by_gevent
    if _patched_by_gevent:
        # Patching is never undone in a process: asked once, not on every request.
        return True
    monkey = sys.modules.get("gevent.monkey")
    _patched_by_gevent = monkey is not None and bool(monkey.is_module_patched("threading"))
    return _patched_by_gevent


def _method(ident: int) -> str:
    # gevent.monkey is imported only where gevent may patch: elsewhere one dict lookup decides.
    if "gevent.monkey" in sys.modules and _gevent_patched():
        return "gevent"
    if ident == _process[1] and _alarm[0] is None and _getsignal(signal.SIGALRM) is _on_alarm:
        # The main thread, with the handler installed by an earlier request: nearly always.
        return "alarm"
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
    if outer is not None and not outer.closed and outer.ident == ident and not outer.paused:
        # One deadline at a time per thread: inside another, the outer one applies. Two would
        # have to agree on every shielded section, and a timer signal can only serve one. A
        # request paused between its body and its handlers is shielded: a deadline in between
        # gets one of its own, by a method the paused one does not use (_method sees its timer).
        return func()
    if not _logging_guarded:
        _guard_logging()
    timeout = _bounded(timeout)
    scope = _Scope(timeout, _method(ident) if method == "auto" else "thread", ident)
    reset = _current.set(scope)
    try:
        return _run_scoped(scope, None, func, timeout)
    finally:
        _current.reset(reset)


def _run_scoped(scope: _Scope, resume_at: float | None, func: t.Callable[[], T], timeout: float) -> T:
    """Open the scope's deadline (or resume a paused one until ``resume_at``), call ``func`` and
    close the scope; ``HandlerTimeout(timeout)`` if the deadline passed."""
    try:
        # Everything from starting to closing sits inside this try: the one exception a deadline
        # raises can arrive at any bytecode in between, including inside close(). Raised once, it
        # cannot come again, so the close in the handler completes.
        try:
            if resume_at is None:
                scope.open()
            else:
                scope.resume(resume_at)
            result = func()
        finally:
            scope.close()
    except HandlerTimeout:
        scope.close()
        raise HandlerTimeout(timeout) from None
    # A late answer is never used, even where nothing could interrupt the handler (C code, a
    # greenlet that never yields).
    if scope.fired or scope.raised or _monotonic() >= scope.deadline:
        raise HandlerTimeout(timeout)
    return result


def _bounded(timeout: float) -> float:
    if timeout < 1e-6:
        return 1e-6
    return _FOREVER if timeout > _FOREVER else timeout


class RequestDeadline:
    """The two deadlines of one webhook request on one timer: its body's, then its handlers'.

    :meth:`read` reads the body within ``body_timeout``; from then on the request is shielded
    (parsing, verification, the store's look-ups and the signals are never interrupted), until
    :meth:`run` runs the handlers until an absolute deadline; :meth:`close` ends it all. The timer
    is set once, for the nearer of the two deadlines, and moved to the handlers' when theirs comes
    later, so that no signal reaches a handler before its own deadline: a request answered in time
    sets it once or twice and clears it once, where a deadline of its own for each part would set
    and clear it twice. A deadline opened while the request is paused gets its own scope, by a
    method that does not need the request's timer (the watchdog, in the main thread).

    Inside another deadline of the same thread, the outer one applies and this one does nothing.

    :meta private:
    """

    __slots__ = ("_body_timeout", "_handler_timeout", "_scope", "_reset", "_inert")

    def __init__(self, body_timeout: float, handler_timeout: float) -> None:
        # Built on every webhook, with timeouts nearly always in bounds: no call for those.
        self._body_timeout = body_timeout if 1e-6 <= body_timeout <= _FOREVER else _bounded(body_timeout)
        self._handler_timeout = (
            handler_timeout if 1e-6 <= handler_timeout <= _FOREVER else _bounded(handler_timeout)
        )
        self._scope: _Scope | None = None
        self._reset: contextvars.Token[_Scope | None] | None = None
        self._inert = False

    def read(self, func: t.Callable[[], T]) -> T:
        """Call ``func`` within the body's deadline, then shield the request.

        :raises HandlerTimeout: if the body took longer (the scope is closed then).
        """
        ident = _get_ident()
        outer = _current.get()
        if outer is not None and not outer.closed and outer.ident == ident:
            self._inert = True
            return func()
        if not _logging_guarded:
            _guard_logging()
        timeout = self._body_timeout
        scope = _Scope(timeout, _method(ident), ident)
        body_deadline = scope.deadline
        self._scope = scope
        self._reset = _current.set(scope)
        try:
            # As in call_with_deadline: the deadline's one exception can land at any bytecode
            # from here on, inside close() too, until the scope is shielded.
            try:
                scope.open(min(timeout, self._handler_timeout))
                result = func()
                scope.enter_shield()
                scope.paused = True
                # The handlers' deadline counts from the request's arrival, known once it is
                # parsed (run() sets it); it is no nearer than this.
                scope.deadline = _monotonic() + self._handler_timeout
            except BaseException:
                # A body too large, a client gone: the scope must not stay armed behind it.
                scope.close()
                raise
        except HandlerTimeout:
            scope.close()
            self._release()
            raise HandlerTimeout(timeout) from None
        except BaseException:
            self._release()
            raise
        if scope.fired or scope.raised or _monotonic() >= body_deadline:
            # Read, but too late (C code the timer could not interrupt).
            self.close()
            raise HandlerTimeout(timeout)
        return result

    def run(self, func: t.Callable[[], T], deadline: float) -> T:
        """Call ``func`` until ``deadline`` (on the monotonic clock), then close the scope.

        A deadline that passed while the request was shielded raises at once.

        :raises HandlerTimeout: if ``func`` ran past it, or it had passed already.
        """
        scope = self._scope
        if self._inert:
            return func()
        if scope is None or scope.closed:
            return call_with_deadline(func, max(deadline - _monotonic(), 0.001))
        try:
            return _run_scoped(scope, deadline, func, max(deadline - _monotonic(), 0.0))
        finally:
            self._release()

    def close(self) -> None:
        """End the request's deadline; nothing raises on its behalf afterwards. Idempotent."""
        scope = self._scope
        if scope is not None:
            scope.close()
            self._release()

    def _release(self) -> None:
        reset, self._reset = self._reset, None
        if reset is not None:
            self._scope = None
            _current.reset(reset)


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
    if scope is None or scope.closed or scope.paused:
        return None
    return max(scope.deadline - time.monotonic(), 0.0)


def shield_target() -> _Scope | None:
    """The open deadline of this thread that a shielded section would hold off, if any.

    :meta private:
    """
    scope = _current.get()
    if scope is None or scope.closed or scope.ident != _get_ident() or scope.pid != _process[0]:
        return None
    return scope


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
        scope = self._scope = shield_target()
        if scope is not None:
            scope.enter_shield()

    def __exit__(self, *exc_info: object) -> None:
        scope = self._scope
        if scope is not None:
            scope.exit_shield()
