"""One request, from the parsed call to the platform's answer.

A :class:`Dispatch` carries one transfer request through the steps every platform shares: an
answer owed from an earlier request, the handlers under their deadline, the failure path
(``on_error``, the fallback, the refusal), rendering or delivery, and the signals. Whatever
happens, it returns the platform's own valid answer. :func:`answer_event` does the same for the
other events on a webhook URL.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import logging
import time
import typing as t

from flask import Response
from flask import has_request_context
from flask import request

from . import messages
from . import phone
from . import signals
from .callbacks import Callback
from .config import DECISION_ENVIRON
from .deadlines import HandlerTimeout
from .deadlines import RequestDeadline
from .deadlines import call_with_deadline
from .deadlines import shielded
from .exceptions import DeliveryFailed
from .exceptions import InvalidDestination
from .exceptions import StoreUnavailable
from .exceptions import TransferRefused
from .exceptions import UnsupportedDestination
from .failover import ATTEMPTS_TTL
from .failover import NOT_TAKEN
from .failover import RING_WINDOW
from .failover import RepeatedNews
from .failover import asked_again
from .handlers import Running
from .handlers import name_of
from .handlers import run_async
from .handoff import new_handoff_id
from .logs import logger
from .models import CALLER
from .models import Attempt
from .models import Destination
from .models import DestinationChain
from .models import PlatformEvent
from .models import TransferRequest
from .platforms.toolcalls import Ledger
from .platforms.toolcalls import carry_out
from .store.base import bookkeeping

if t.TYPE_CHECKING:
    from flask import Flask

    from .failover import Failover
    from .platforms.base import Platform
    from .platforms.base import TransferOutcome
    from .state import State

#: How long a transfer waits for its outcome, and an outcome is remembered as reported.
OUTCOME_TTL = 6 * 3600

_perf_counter = time.perf_counter
_monotonic = time.monotonic


def outcome_key(platform: str, call_id: str) -> str:
    """The store key that remembers a transfer until its outcome is reported."""
    return f"outcome:{platform}:{call_id}"


class Dispatch:
    """One transfer request on its way to the platform's answer.

    :param body: the raw request body, which keys the replay memory; ``None`` routes without it.
    """

    __slots__ = (
        "app",
        "state",
        "platform",
        "call",
        "body",
        "deadline",
        "timeout",
        "started",
        "running",
        "environ",
    )

    def __init__(
        self,
        app: Flask,
        state: State,
        platform: Platform,
        call: TransferRequest,
        body: bytes | None = None,
        deadline: RequestDeadline | None = None,
        environ: dict[str, t.Any] | None = None,
    ) -> None:
        self.app = app
        self.state = state
        self.platform = platform
        self.call = call
        self.body = body
        #: The request's deadline, open since its body was read; ``None`` to open one here.
        self.deadline = deadline
        #: The handlers' deadline in seconds, counted from the request's arrival.
        self.timeout = state.timeouts[platform.name]
        self.started = 0.0
        self.running = Running()
        #: The WSGI environ of the request being answered, where the decision may go.
        self.environ = environ

    def answer(self) -> Response:
        """The platform's answer to this request. Never raises.

        A request deadline given to it is closed once the handlers ran; whoever opened it closes
        it in any case.
        """
        try:
            body, window = self.body, self.state.settings.replay_window
            # A tool call has its own exactly-once memory (the ledger): checked first, it is cheap.
            if body is not None and window and self.call.tool_call_id is None:
                if self.platform.remembers_answers:
                    return self._answer_replays(body, window)
            return self._route()
        except Exception as exc:
            # A bug of ours, or a part that failed where nothing expected it: the call still gets
            # its own refusal (a tool call its id), not the blueprint's bare last resort.
            logger.exception(messages.route_failed(repr(self.call)))
            signals.transfer_failed.send(self.app, call=self.call, exception=exc, stage="internal")
            return self._refuse(self.state.settings.refusal_message)

    def _decided(self, line: str, *args: object) -> None:
        """Write what this request decided: an INFO line, or with ``CALLTRANSFER_DECISION_LOG =
        "environ"`` the same sentence, numbers masked, in the WSGI environ, where an access log
        line can end with it (one line per request instead of two)."""
        environ = self.environ
        if environ is None and has_request_context():
            environ = request.environ
        if self.state.settings.decision_log == "environ" and environ is not None:
            # Not through the logger and its filter: mask here what a number could hide in, the
            # first argument (the platform's call id, or a whole message). The others are masked
            # already (a destination's description) or ours (the platform's and handler's names);
            # masking the whole line would cost twice as much.
            first, *rest = args
            masked = phone.mask_text(first) if isinstance(first, str) else first
            environ[DECISION_ENVIRON] = line % (masked, *rest)
            return
        logger.info(line, *args)

    def _answer_replays(self, body: bytes, window: float) -> Response:
        # A captured request sent again gets the first answer: routing it again would move pools,
        # log transfers and signal twice. A platform's own retry gets the same answer, as it should.
        state, platform = self.state, self.platform
        replays = Ledger(state.services.store, platform.name, namespace="replay", ttl=window)
        key = hashlib.sha256(body).hexdigest()
        first = replays.claim(key, wait=self.timeout)
        if isinstance(first, str):
            self._decided("%s", messages.replay_answered(platform.name, repr(self.call)))
            return Response(first, mimetype="application/json")
        response = self._route()
        if response.status_code == 200 and response.mimetype == "application/json":
            replays.remember(key, response)
        return response

    def _remaining(self) -> float:
        return _time_left(self.call, self.timeout)

    def _route(self) -> Response:
        app, call, platform = self.app, self.call, self.platform
        owed = platform.owed(call)
        if owed is not None:
            return owed
        self.started = _perf_counter()
        if signals.transfer_requested.receivers:
            signals.transfer_requested.send(app, call=call)
        registry = self.state.registry
        if not registry.handlers:
            logger.warning(messages.no_handlers())
        running = self.running
        try:
            # A partial, not a lambda: one Python frame less on every request.
            ask = functools.partial(registry.run, app, call, running)
            if self.deadline is not None:
                answer, handler = self.deadline.run(ask, call.received + self.timeout)
            else:
                answer, handler = call_with_deadline(ask, self._remaining())
        except TransferRefused as refusal:
            return self._refuse(refusal.reason)
        except HandlerTimeout:
            # Reported with the configured timeout, not the part of it left after parsing.
            expired = HandlerTimeout(self.timeout)
            logger.error(messages.handler_timeout(str(running), repr(call), self.timeout))
            signals.transfer_failed.send(app, call=call, exception=expired, stage="timeout")
            return self._recover(expired)
        except Exception as exc:
            logger.exception(messages.handler_failed(str(running), repr(call)))
            signals.transfer_failed.send(app, call=call, exception=exc, stage="handler")
            return self._recover(exc)
        if isinstance(answer, Callback):
            return self._offer_callback(answer)
        if answer is None:
            response = platform.no_answer(call)
            if response is not None:
                self._decided("Transfer %s on %s deferred: no handler answered.", call.call_id, call.platform)
                signals.transfer_deferred.send(app, call=call)
                return response
            return self._fallback()
        try:
            # Not the property: two attribute reads, where a call would cost every request.
            if isinstance(answer, DestinationChain) or registry.lines or registry.availability is not None:
                return self._choose(answer, handler)
            destination = registry.coerce(answer, self.state.settings.default_region)
            return self._send(destination, handler)
        except (InvalidDestination, UnsupportedDestination) as exc:
            logger.error(messages.destination_failed(name_of(handler), repr(call), str(exc)))
            signals.transfer_failed.send(app, call=call, exception=exc, stage="destination")
            return self._recover(exc)

    def _choose(
        self, answer: DestinationChain | Destination | str, handler: t.Callable[..., t.Any] | None
    ) -> Response:
        """Send the first destination of ``answer`` free to take the call, keeping the attempt;
        the fallback when none is."""
        app, call, platform, failover = self.app, self.call, self.platform, self.state.failover
        chain = answer if isinstance(answer, DestinationChain) else None
        # Read once: whether the last transfer still waits for word, and which entries were tried.
        records = failover.records(platform.name, call.call_id)
        if records and records[-1]["outcome"] is None and call.call_id:
            pending = records[-1]
            if platform.failover == "deliver" and time.time() < pending["at"] + RING_WINDOW:
                # Its outcome comes as an event, which moves the chain on: a second transfer now
                # would ring two people for one caller. (A dial verb's platform that asks again
                # has ended the dial: that one is routed as asked again.)
                return self._refuse(messages.transfer_in_progress())
            # Asked again while the last transfer waits for its outcome: it did not work.
            outcome, detail = asked_again(call, platform, pending["number"])
            with bookkeeping("settling a call's earlier transfer attempt"):
                failover.settle(platform.name, call.call_id, outcome, detail, records=records)
        choice = failover.choose(
            call,
            answer,
            coerce=self._coerce,
            check=_checker(call, self._remaining),
            skipped=functools.partial(_skipped, app, call),
            # sipgate never says a transfer failed: its chains always start from the first.
            tried={record["key"] for record in records} if platform.failover is not None else (),
        )
        if choice is None:
            logger.warning(messages.chain_exhausted(repr(call)))
            if chain is not None and call.call_id:
                _finished(app, platform.name, call.call_id, "exhausted", None, failover)
            if chain is not None and chain.callback is not None:
                return self._offer_callback(chain.callback)
            return self._fallback()
        destination = choice.destination
        if chain is not None:
            destination = platform.prepare_attempt(destination, chain)
        keep_chain = platform.failover in ("deliver", "reply")
        attempt = failover.record(call, choice, chain, keep_chain=keep_chain) if choice.tracked else None
        try:
            response = self._send(destination, handler, attempt)
        except (InvalidDestination, UnsupportedDestination):
            # Not sent: the place it took is free again.
            if attempt is not None:
                with bookkeeping("settling an attempt that was not sent"):
                    failover.settle(platform.name, t.cast(str, call.call_id), "failed", "not sent")
            raise
        if attempt is not None:
            signals.transfer_attempted.send(app, call=call, destination=destination, attempt=attempt)
        return response

    def _offer_callback(self, offer: Callback) -> Response:
        """Tell the caller when they will be called back, in the platform's "no transfer, say
        this" answer, and keep the call's task (once, whoever asks again)."""
        words = offer_callback(self.app, self.state, self.call, offer)
        self._decided("Transfer %s on %s: a callback was offered.", self.call.call_id, self.call.platform)
        signals.transfer_refused.send(self.app, call=self.call, reason=words)
        return self.platform.render(self.call, TransferRefused(words))

    def _coerce(self, entry: Destination | str) -> Destination:
        return self.state.registry.coerce(entry, self.state.settings.default_region)

    def _recover(self, exc: Exception | HandlerTimeout) -> Response:
        """The failure path: ``on_error``, then the fallback, then the refusal.

        ``on_error`` gets what is left of the deadline, and at least a short grace period when
        the handlers used it all up.
        """
        app, call = self.app, self.call
        error_handler = self.state.registry.error_handler
        if error_handler is not None:
            grace = max(self._remaining(), min(1.0, self.timeout / 4))
            try:
                answer = call_with_deadline(lambda: run_async(app, error_handler, call, exc), grace)
                if answer is not None:
                    destination = self.state.registry.coerce(answer, self.state.settings.default_region)
                    return self._send(destination, error_handler)
            except TransferRefused as refusal:
                return self._refuse(refusal.reason)
            except HandlerTimeout as second:
                logger.error(messages.error_handler_timeout(name_of(error_handler), repr(call), grace))
                signals.transfer_failed.send(app, call=call, exception=second, stage="on_error")
            except Exception as second:
                logger.exception(messages.error_handler_failed(name_of(error_handler), repr(call)))
                signals.transfer_failed.send(app, call=call, exception=second, stage="on_error")
        return self._fallback()

    def _fallback(self) -> Response:
        fallback = self.state.fallback
        if fallback is not None:
            try:
                return self._send(fallback, None)
            except UnsupportedDestination as exc:
                logger.error(messages.fallback_failed(repr(self.call), str(exc)))
                signals.transfer_failed.send(self.app, call=self.call, exception=exc, stage="fallback")
        return self._refuse(self.state.settings.refusal_message)

    def _send(
        self, destination: Destination, handler: t.Callable[..., t.Any] | None, attempt: Attempt | None = None
    ) -> Response:
        """Render (and, for API platforms, deliver) a destination.

        A failed delivery is answered here, in the platform's format: the destination was valid, so
        trying another one would not help. What the platform cannot carry raises
        :class:`UnsupportedDestination` for the caller's failure path.
        """
        app, call, platform = self.app, self.call, self.platform
        if destination.per_call:
            destination = prepared(self.state, platform, call, destination)
        try:
            response = platform.render(call, destination)
        except DeliveryFailed as exc:
            logger.error(str(exc))
            if attempt is not None and call.call_id:
                with bookkeeping("settling an attempt that was not delivered"):
                    self.state.failover.settle(platform.name, call.call_id, "failed", "not delivered")
            signals.transfer_failed.send(app, call=call, exception=exc, stage="deliver")
            return platform.render(call, exc)
        elapsed = _perf_counter() - self.started
        outcomes = signals.transfer_outcome
        # Its receivers first: nearly always none, and has_receivers_for is a call of its own.
        if call.call_id and outcomes.receivers and outcomes.has_receivers_for(app):
            # Remembered so that the end of the call can be reported as this transfer's outcome.
            with bookkeeping("tracking a transfer's outcome"):
                self.state.services.store.set(outcome_key(call.platform, call.call_id), "1", ttl=OUTCOME_TTL)
        if self.state.settings.decision_log != "logger" or logger.isEnabledFor(logging.INFO):
            # Describing the destination masks its number: work a disabled log line need not do.
            self._decided(
                "Transfer %s on %s resolved to %s by %s in %.1f ms.",
                call.call_id,
                call.platform,
                destination.describe(),
                name_of(handler),
                elapsed * 1000,
            )
        if signals.transfer_resolved.receivers:
            signals.transfer_resolved.send(
                app, call=call, destination=destination, handler=handler, elapsed=elapsed
            )
        return response

    def _refuse(self, reason: str) -> Response:
        call = self.call
        self._decided("Transfer %s on %s refused.", call.call_id, call.platform)
        signals.transfer_refused.send(self.app, call=call, reason=reason)
        return self.platform.render(call, TransferRefused(reason))


def resolve(app: Flask, state: State, call: TransferRequest) -> Destination:
    """The destination the handlers choose for ``call``, without HTTP, rendering or signals.

    :raises TransferRefused: if a handler refuses, or nobody answers and there is no fallback.
    """
    answer, _ = state.registry.run(app, call)
    if answer is not None:
        return state.registry.coerce(answer, state.settings.default_region)
    if state.fallback is not None:
        return state.fallback
    raise TransferRefused(state.settings.refusal_message)


def _checker(
    call: TransferRequest, remaining: t.Callable[[], float]
) -> t.Callable[[t.Callable[[], bool], str], bool]:
    """Runs availability checks within what is left of the deadline. A check that raises or runs
    too long counts as available: a busy line beats a caller left without any."""

    def check(predicate: t.Callable[[], bool], what: str) -> bool:
        try:
            return bool(call_with_deadline(predicate, remaining()))
        except HandlerTimeout:
            logger.error(messages.availability_check_timeout(what, repr(call)))
        except Exception:
            logger.exception(messages.availability_check_failed(what, repr(call)))
        return True

    return check


def _skipped(app: Flask, call: TransferRequest, destination: Destination, reason: str) -> None:
    logger.info(messages.destination_skipped(destination.describe(), reason, repr(call)))
    signals.destination_skipped.send(app, call=call, destination=destination, reason=reason)


def _finished(
    app: Flask, platform: str, call_id: str, outcome: str, destination: str | None, failover: Failover
) -> None:
    # Once per call, on whichever worker: a call that asks again after its chain ran out, or news
    # delivered twice, must not count twice in the figures.
    try:
        if failover.store.incr(f"{failover.key(platform, call_id)}:finished", ttl=ATTEMPTS_TTL) != 1:
            return
    except StoreUnavailable as exc:
        logger.warning(messages.store_bookkeeping_skipped("counting a call's end once", str(exc)))
    signals.transfer_finished.send(
        app,
        platform=platform,
        call_id=call_id,
        outcome=outcome,
        destination=destination,
        attempts=failover.attempts(platform, call_id),
    )


def _follow_up(
    app: Flask,
    state: State,
    platform: Platform,
    event: PlatformEvent,
    found: TransferOutcome,
    body: bytes | None,
) -> Response | None:
    """What a reported outcome means for the call's attempts: the latest one settled (once across
    every worker), and after a failure the next destination of its chain sent the platform's way.
    Returns the event's answer when it carries that destination (``"reply"`` failover)."""
    failover, call_id = state.failover, t.cast(str, event.call_id)
    timeout = state.timeouts.get(platform.name) or 5.0
    try:
        attempt = failover.settle(
            platform.name,
            call_id,
            found.outcome,
            found.detail,
            news=body,
            call_over=found.leg_over,
            about=found.attempt,
        )
    except RepeatedNews:
        if platform.failover != "reply" or body is None:
            return None
        # The same callback again: the same next destination, not a hang-up.
        kept = failover.kept_reply(platform.name, call_id, body, wait=max(1.0, timeout * 0.8))
        if kept is None:
            return _fallback_dial(state, platform, event, found)
        return Response(kept[0], mimetype=kept[1])
    if attempt is None:
        return None
    if attempt.outcome == "connected":
        _finished(app, platform.name, call_id, "connected", attempt.destination, failover)
        return None
    if found.ended or not attempt.failed or platform.failover not in ("deliver", "reply"):
        # "request": the platform asks again while the call goes on; None: it never does.
        if found.ended or platform.failover is None:
            _finished(app, platform.name, call_id, found.outcome, None, failover)
        return None
    # A store failure from here on leaves the news heard and the attempt settled: the same news
    # again is answered with the fallback on a dial verb's platform (_fallback_dial), and on
    # VoiceDock the assistant may ask again, which tries the next destination.
    return _next_attempt(app, state, platform, platform.event_call(event), found, body)


def _next_attempt(
    app: Flask,
    state: State,
    platform: Platform,
    call: TransferRequest,
    found: TransferOutcome,
    body: bytes | None,
) -> Response | None:
    """Send the next destination of the call's chain after a failed attempt, the platform's way."""
    failover, call_id = state.failover, t.cast(str, call.call_id)
    timeout = state.timeouts.get(platform.name) or 5.0
    chain = failover.chain(call)
    check = _checker(call, lambda: _time_left(call, timeout))
    tried = {record["key"] for record in failover.records(platform.name, call_id)}
    # Each entry at most once: one that cannot be delivered is settled and the next tried.
    for _ in range(len(chain.destinations) if chain is not None else 0):
        assert chain is not None
        choice = failover.choose(
            call,
            chain,
            coerce=lambda entry: state.registry.coerce(entry, state.settings.default_region),
            check=check,
            skipped=functools.partial(_skipped, app, call),
            tried=tried,
        )
        if choice is None:
            break
        tried.add(choice.key)
        destination = platform.prepare_attempt(choice.destination, chain)
        nxt = failover.record(call, choice, None, keep_chain=False)
        if destination.per_call:
            destination = prepared(state, platform, call, destination)
        try:
            if platform.failover == "deliver":
                carry_out(platform, call, destination)
                response = None
            else:
                response = _kept_reply(failover, platform, call, destination, body)
        except (DeliveryFailed, UnsupportedDestination) as exc:
            logger.error(messages.failover_delivery_failed(platform.name, call_id, str(exc)))
            signals.transfer_failed.send(app, call=call, exception=exc, stage="deliver")
            with bookkeeping("settling an attempt that was not delivered"):
                failover.settle(platform.name, call_id, "failed", "not delivered")
            continue
        if nxt is not None:
            signals.transfer_attempted.send(app, call=call, destination=destination, attempt=nxt)
        return response
    _finished(app, platform.name, call_id, found.outcome, None, failover)
    if chain is not None and chain.callback is not None:
        words = offer_callback(app, state, call, chain.callback)
        if platform.failover != "reply":
            # On VoiceDock the assistant is still on the call: the task is kept, nothing is said.
            return None
        # A dial verb's callback says it, and the same callback delivered again says it again.
        response = platform.render(call, TransferRefused(words))
        if body is not None:
            text = response.get_data(as_text=True)
            failover.keep_reply(platform.name, call_id, body, text, response.mimetype)
        return response
    if platform.failover == "reply" and state.fallback is not None:
        # Nobody left in the chain: the fallback, as a request would get, not the no-op that
        # hangs up. (On VoiceDock the assistant stays on the call and can say so.)
        try:
            return _kept_reply(
                failover, platform, call, prepared(state, platform, call, state.fallback), body
            )
        except UnsupportedDestination as exc:
            logger.error(messages.fallback_failed(repr(call), str(exc)))
    return None


def _kept_reply(
    failover: Failover,
    platform: Platform,
    call: TransferRequest,
    destination: Destination,
    body: bytes | None,
) -> Response:
    """The answer that carries ``destination`` to a dial verb's callback, kept for the same
    callback delivered again."""
    response = platform.render(call, destination)
    if body is not None:
        failover.keep_reply(
            platform.name, t.cast(str, call.call_id), body, response.get_data(as_text=True), response.mimetype
        )
    return response


def offer_callback(app: Flask, state: State, call: TransferRequest, offer: Callback) -> str:
    """Keep ``call``'s callback task (once across workers and repeated deliveries), send
    ``callback-requested`` for a new one, and return what the caller is told."""
    now = datetime.datetime.now(tz=datetime.UTC)
    try:
        with shielded():
            task, new = state.callbacks.request(call, offer, now)
    except StoreUnavailable as exc:
        # The caller is still told: the signal's receivers (a task queue) may keep it.
        logger.error(messages.callback_not_kept(repr(call), str(exc)))
        task, new = None, True
    if new:
        signals.callback_requested.send(app, call=call, task=task, offer=offer)
    return offer.words(now)


def prepared(
    state: State, platform: Platform, call: TransferRequest, destination: Destination
) -> Destination:
    """``destination`` as sent on ``call``: ``caller_id=CALLER`` written the platform's way, and
    its hand-off given an id and the caller's number and attached through the platform's
    channels. Anything else comes back as it is."""
    if not destination.per_call:
        return destination
    caller_id = getattr(destination, "caller_id", None)
    if caller_id == CALLER:
        # The platform's own template where it has one; else the number the webhook gave, or
        # the platform's default caller ID when it gave none.
        written = platform.caller_template or call.caller
        try:
            destination = destination.replaced(caller_id=written)
        except InvalidDestination:
            # Withheld or not a number ("anonymous"): the platform's default caller ID.
            destination = destination.replaced(caller_id=None)
    handoff = destination.handoff
    if handoff is not None and handoff.id is None:
        handoff_id = new_handoff_id()
        sent = handoff.sent(handoff_id, call.caller)
        # Kept first: a link goes out only to a context that is there to be shown.
        url = state.screenpop.keep(sent)
        if url is not None:
            sent = handoff.sent(handoff_id, call.caller, url)
        destination = platform.attach_handoff(destination.with_handoff(sent), sent)
    return destination


def _time_left(call: TransferRequest, timeout: float) -> float:
    """Seconds left of ``timeout`` for ``call``: the deadline counts from the request's arrival, and
    parsing took some of it already."""
    return max(call.received + timeout - _monotonic(), 0.001)


def _fallback_dial(
    state: State, platform: Platform, event: PlatformEvent, found: TransferOutcome
) -> Response | None:
    """With the store unreadable, a dial verb's callback that says the dial failed is answered
    with CALLTRANSFER_FALLBACK, not with the no-op that would hang up: whether a chain had a next
    destination cannot be known, and a caller still reaching someone beats silence."""
    if (
        platform.failover != "reply"
        or state.fallback is None
        or found.ended
        or found.outcome not in NOT_TAKEN
    ):
        return None
    try:
        call = platform.event_call(event)
        return platform.render(call, prepared(state, platform, call, state.fallback))
    except UnsupportedDestination as exc:
        logger.error(messages.fallback_failed(repr(event.call_id), str(exc)))
        return None


def _report_outcome(
    app: Flask, state: State, platform: Platform, event: PlatformEvent, body: bytes | None
) -> Response | None:
    if not event.call_id:
        return None
    found = platform.outcome(event)
    if found is None:
        return None
    reply = None
    try:
        reply = _follow_up(app, state, platform, event, found, body)
    except StoreUnavailable as exc:
        logger.warning(messages.store_bookkeeping_skipped("following up a transfer's outcome", str(exc)))
        reply = _fallback_dial(state, platform, event, found)
    except Exception:
        # A bug of ours, or a part that failed where nothing expected it: the event's own
        # handlers and answer still come.
        logger.exception(messages.follow_up_failed(platform.name, repr(event.call_id)))
        reply = _fallback_dial(state, platform, event, found)
    # Outcomes are tracked only while someone listens: it costs a store write per transfer.
    if not signals.transfer_outcome.has_receivers_for(app):
        return reply
    store = state.services.store
    key = outcome_key(platform.name, event.call_id)
    with bookkeeping("reporting a transfer's outcome"):
        transferred = store.pop(key) is not None
        # Several events may tell of one transfer (Vapi's transfer-update, then the call's end):
        # the first one is reported, on whichever worker it arrives.
        if not (found.definite or transferred) or store.incr(key + ":reported", ttl=OUTCOME_TTL) != 1:
            return reply
    signals.transfer_outcome.send(
        app, platform=platform.name, call_id=event.call_id, outcome=found.outcome, detail=found.detail
    )
    return reply


def answer_event(
    app: Flask, state: State, platform: Platform, event: PlatformEvent, body: bytes | None = None
) -> Response:
    """Answer an event that is not a transfer request: the ``on_event`` handlers' reply, or the
    platform's no-op. Never raises for a handler's failure.

    :param body: the event's raw body, so the same event delivered twice moves a call's
        failover on once.
    """
    signals.event_received.send(app, platform=platform.name, event=event.type, payload=event.payload)
    follow_up = _report_outcome(app, state, platform, event, body)
    if follow_up is not None:
        # The next destination of the call's chain, in the answer to the event that said the
        # last one failed (a dial verb's action callback).
        return follow_up
    owed = platform.owed(event)
    if owed is not None:
        return owed
    reply: dict[str, t.Any] | None = None
    for hook in state.registry.event_hooks:
        if hook.type != event.type:
            continue
        if hook.platforms is not None and platform.name not in hook.platforms:
            continue
        func = hook.func
        try:
            answer = call_with_deadline(
                lambda: run_async(app, func, event),  # noqa: B023 - called at once
                state.timeouts.get(platform.name),
            )
        except HandlerTimeout:
            logger.error(messages.event_handler_timeout(name_of(func), event.type))
            break
        except Exception:
            logger.exception(messages.event_handler_failed(name_of(func), event.type))
            break
        if answer is None:
            continue
        if not isinstance(answer, t.Mapping):
            logger.error(messages.event_reply_invalid(name_of(func), answer))
            break
        reply = dict(answer)
        break
    try:
        return platform.render_event(event, reply)
    except (TypeError, ValueError):
        logger.error(messages.event_reply_invalid("reply", reply))
        return platform.render_event(event, None)
