"""The handler registry: what the app registered, and how a handler's answer becomes a destination.

A :class:`Registry` belongs to one :class:`~flask_calltransfer.CallTransfer` and is shared by every
app it serves: the routing handlers in order, the event handlers, the error handler and the
directory. It knows nothing of HTTP or platforms; :mod:`~flask_calltransfer.dispatch` asks it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import typing as t

from . import deadlines
from . import messages
from . import phone
from .deadlines import HandlerTimeout
from .exceptions import InvalidDestination
from .models import Destination
from .models import HandlerResult
from .models import NumberDestination
from .models import PlatformEvent
from .models import SipDestination
from .models import TransferRequest
from .routing import DestinationPool

if t.TYPE_CHECKING:
    from flask import Flask

#: A routing handler: takes the request, returns a destination, a string shorthand, or ``None``.
RequestHandler = t.Callable[[TransferRequest], HandlerResult | t.Awaitable[HandlerResult]]
#: An error handler: takes the request and the exception, returns a destination or ``None``.
ErrorHandler = t.Callable[[TransferRequest, Exception], HandlerResult | t.Awaitable[HandlerResult]]
#: An event handler: takes the event, returns the reply body or ``None`` for the platform's no-op.
EventHandler = t.Callable[
    [PlatformEvent],
    t.Mapping[str, t.Any] | None | t.Awaitable[t.Mapping[str, t.Any] | None],
]
Predicate = t.Callable[[TransferRequest], bool]
#: The app's availability check: ``(destination, call) -> bool``.
AvailabilityCheck = t.Callable[[Destination, TransferRequest], bool]


@dataclasses.dataclass(frozen=True)
class Line:
    """What a directory entry declares about being free to take a call.

    :meta private:
    """

    #: Calls it takes at once; ``None`` for no limit.
    max_concurrent: int | None = None
    #: A predicate ``(call) -> bool``, such as a :class:`~flask_calltransfer.BusinessHours`.
    available: t.Callable[[TransferRequest], bool] | None = None


T_request_handler = t.TypeVar("T_request_handler", bound=RequestHandler)
T_error_handler = t.TypeVar("T_error_handler", bound=ErrorHandler)
T_availability = t.TypeVar("T_availability", bound=AvailabilityCheck)
T_event_handler = t.TypeVar("T_event_handler", bound=EventHandler)


def platform_filter(platform: str | t.Iterable[str] | None) -> frozenset[str] | None:
    """The ``platform=`` argument of a decorator as a set of names, or ``None`` for every one."""
    if platform is None:
        return None
    if isinstance(platform, str):
        names: tuple[object, ...] = (platform,)
    elif isinstance(platform, t.Iterable):
        names = tuple(platform)
    else:
        raise TypeError(messages.platform_filter_invalid(platform))
    if not names or not all(isinstance(name, str) and name for name in names):
        raise TypeError(messages.platform_filter_invalid(platform))
    return frozenset(t.cast(tuple[str, ...], names))


def name_of(func: t.Callable[..., t.Any] | None) -> str:
    """A handler's name for log lines; ``None`` stands for the configured fallback."""
    if func is None:
        return "CALLTRANSFER_FALLBACK"
    return getattr(func, "__qualname__", None) or repr(func)


@dataclasses.dataclass(frozen=True)
class Handler:
    """One ``@on_request`` registration."""

    func: RequestHandler
    platforms: frozenset[str] | None
    when: Predicate | None
    # Only coroutine functions need Flask's ensure_sync; checking once saves it per request.
    is_async: bool = False


@dataclasses.dataclass(frozen=True)
class EventHook:
    """One ``@on_event`` registration."""

    func: EventHandler
    type: str
    platforms: frozenset[str] | None


class Running:
    """Which handler (or which handler's ``when=`` predicate) runs now, for the log line of one
    that raises or runs out of time."""

    # Class attributes as the defaults: made on every request, it needs no __init__ to run.
    func: t.Callable[..., t.Any] | None = None
    in_predicate = False

    def __str__(self) -> str:
        if self.func is None:
            return "-"
        return f"the when= predicate of {name_of(self.func)}" if self.in_predicate else name_of(self.func)


_TIMED_OUT = object()


def run_async(app: Flask, func: t.Callable[..., t.Any], *args: t.Any) -> t.Any:
    """Call a handler; a coroutine function runs on Flask's ``ensure_sync`` within the deadline.

    asgiref runs the coroutine on an event loop in another thread while this one waits in C,
    where no interruption reaches. So the coroutine gets the deadline as an asyncio timeout, and
    the wait is shielded: when the deadline passes, the shield's end raises it here.
    """
    if not inspect.iscoroutinefunction(func):
        return func(*args)
    budget = deadlines.remaining()

    async def bounded() -> t.Any:
        timeout = asyncio.timeout(budget)
        try:
            async with timeout:
                return await func(*args)
        except TimeoutError:
            # Only the deadline's own timeout: a TimeoutError of the handler's is its failure.
            if timeout.expired():
                return _TIMED_OUT
            raise

    with deadlines.shielded():
        answer = app.ensure_sync(bounded)()
    if answer is _TIMED_OUT:
        raise HandlerTimeout(budget or 0.0)
    return answer


def is_shorthand(text: str) -> bool:
    """Whether a handler's string answer is a number or a SIP URI rather than a directory name."""
    return text.startswith(("sip:", "sips:")) or phone.looks_like_number(text)


@functools.lru_cache(maxsize=4096)
def _shorthand(text: str, region: str | None) -> Destination | None:
    # Parsing a number with phonenumbers costs more than the rest of a request; handlers return
    # the same few strings again and again, and destinations are immutable. ``None``: a name.
    if text.startswith(("sip:", "sips:")):
        return SipDestination(text)
    if phone.looks_like_number(text):
        return NumberDestination(text, region=region)
    return None


class Registry:
    """Everything an extension registered: handlers, the error handler, event handlers, the
    directory and the pools. Filled at import time, read on every request."""

    def __init__(self) -> None:
        self.handlers: list[Handler] = []
        self.event_hooks: list[EventHook] = []
        self.error_handler: ErrorHandler | None = None
        #: Named destinations, each carrying its name.
        self.directory: dict[str, Destination] = {}
        #: The pools made with :meth:`CallTransfer.pool`, which ``flask calltransfer check`` checks.
        self.pools: list[DestinationPool] = []
        #: What directory entries declare about taking calls (``max_concurrent``, ``available``).
        self.lines: dict[str, Line] = {}
        #: The app's availability check, from :meth:`CallTransfer.availability`.
        self.availability: AvailabilityCheck | None = None

    def coerce(self, value: object, region: str | None) -> Destination:
        """Turn a handler's answer into a destination, raising InvalidDestination if it is none."""
        if isinstance(value, Destination):
            return value
        if not isinstance(value, str):
            raise InvalidDestination(messages.destination_type_invalid(value))
        text = value.strip()
        found = _shorthand(text, region)
        if found is not None:
            return found
        try:
            return self.directory[text]
        except KeyError:
            raise InvalidDestination(messages.directory_name_unknown(text, self.directory)) from None

    def run(
        self, app: Flask, call: TransferRequest, running: Running | None = None
    ) -> tuple[HandlerResult, RequestHandler | None]:
        """Ask the handlers in order; the first answer that is not ``None`` wins.

        :return: the answer and the handler that gave it, or ``(None, None)``.
        """
        platform = call.platform
        for handler in self.handlers:
            if handler.platforms is not None and platform not in handler.platforms:
                continue
            if handler.when is not None:
                if running is not None:
                    running.func, running.in_predicate = handler.func, True
                if not handler.when(call):
                    continue
            if running is not None:
                running.func, running.in_predicate = handler.func, False
            if handler.is_async:
                answer: HandlerResult = run_async(app, handler.func, call)
            else:
                # Not async, so a result, not an awaitable; no typing.cast, a call on every request.
                answer = handler.func(call)  # type: ignore[assignment]
            if answer is not None:
                return answer, handler.func
        return None, None
