"""Running handlers under a deadline, so a slow or stuck handler never keeps a caller waiting.

Two ways, chosen per call:

- In the main thread (gunicorn's sync workers, test clients), an interval timer raises
  :class:`HandlerTimeout` inside the handler when its time is up, and again every 50 ms until the
  handler gives up. This costs a few microseconds.
- Anywhere else (threaded servers, gevent), the handler runs in a daemon worker thread and the
  request thread waits for it at most until the deadline. A handler that never returns is left
  behind; its eventual result is dropped.
"""

from __future__ import annotations

import contextvars
import os
import queue
import signal
import threading
import typing as t

T = t.TypeVar("T")

#: How often the timer fires again while a timed-out handler keeps running.
_REPEAT = 0.05
#: Worker threads per process for the thread method; stuck handlers hold theirs.
_MAX_THREADS = 64


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


#: The timeout of the deadline being enforced by the timer in the main thread, if any.
_armed: list[float | None] = [None]


def _expire(signum: int, frame: object) -> None:
    timeout = _armed[0]
    if timeout is not None:
        raise HandlerTimeout(timeout)
    # Not ours: behave as if this handler were not installed (the default ends the process).
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGALRM)


_HAS_TIMER = hasattr(signal, "setitimer")
try:
    # The C module's getsignal skips the enum conversion signal.getsignal does: this runs per
    # request.
    from _signal import getsignal as _getsignal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - other Python implementations
    _getsignal = signal.getsignal


def _alarm_available() -> bool:
    if not _HAS_TIMER or threading.get_ident() != threading.main_thread().ident:
        return False
    if _armed[0] is not None:
        return False
    handler = _getsignal(signal.SIGALRM)
    if handler is _expire:
        return True
    # Someone else's timer or SIGALRM handler is left alone.
    if handler in (signal.SIG_DFL, None) and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0):
        # Installed once and kept: swapping handlers on every request costs more than the timer.
        signal.signal(signal.SIGALRM, _expire)
        return True
    return False


def _with_alarm(func: t.Callable[[], T], timeout: float) -> T:
    _armed[0] = timeout
    signal.setitimer(signal.ITIMER_REAL, timeout, _REPEAT)
    try:
        return func()
    finally:
        # The timer may fire while this block runs; retrying makes sure it is always switched
        # off, and once nothing is armed it raises no more.
        while True:
            try:
                _armed[0] = None
                signal.setitimer(signal.ITIMER_REAL, 0)
                break
            except HandlerTimeout:
                continue


class _Task:
    __slots__ = ("func", "done", "result", "error")

    def __init__(self, func: t.Callable[[], t.Any]) -> None:
        self.func = func
        self.done = threading.Event()
        self.result: t.Any = None
        self.error: BaseException | None = None


class _Pool:
    """Daemon worker threads: a stuck handler must not stop the process from exiting."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._pid = os.getpid()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            task = self._tasks.get()
            with self._lock:
                self._idle -= 1
            try:
                task.result = task.func()
            except BaseException as exc:  # handed to the waiting thread
                task.error = exc
            task.done.set()

    def run(self, func: t.Callable[[], T], timeout: float) -> T:
        task = _Task(_in_context(func))
        self._tasks.put(task)
        with self._lock:
            if self._idle == 0 and self._threads < _MAX_THREADS:
                self._threads += 1
                threading.Thread(target=self._work, name="calltransfer-handler", daemon=True).start()
        if not task.done.wait(timeout):
            raise HandlerTimeout(timeout)
        if task.error is not None:
            raise task.error
        return t.cast(T, task.result)


def _in_context(func: t.Callable[[], T]) -> t.Callable[[], T]:
    # The copied context carries Flask's app and request context into the worker thread.
    context = contextvars.copy_context()
    return lambda: context.run(func)


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _thread_pool() -> _Pool:
    global _pool
    with _pool_lock:
        # Threads do not survive a fork: a gunicorn worker starts its own pool.
        if _pool is None or _pool._pid != os.getpid():
            _pool = _Pool()
        return _pool


def call_with_deadline(func: t.Callable[[], T], timeout: float | None, *, method: str = "auto") -> T:
    """Call ``func`` and return its result, or raise :class:`HandlerTimeout` after ``timeout`` s.

    :param timeout: seconds; ``None`` calls ``func`` directly, without a deadline.
    :param method: ``"auto"`` (the timer in the main thread, a worker thread elsewhere) or
        ``"thread"``.
    """
    if timeout is None:
        return func()
    if method == "auto" and _alarm_available():
        return _with_alarm(func, timeout)
    return _thread_pool().run(func, timeout)
