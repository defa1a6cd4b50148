"""Blinker signals for observing transfers: logging, metrics, analytics and tests.

Signals observe; they never decide. Routing decisions go through ``on_request`` and ``on_error``
handlers. A receiver that raises is logged with its traceback (numbers masked) and skipped: the
other receivers still run, and what the platform hears does not change. Every signal is sent with
the real application object as sender, and receivers must accept ``**extra`` so new keyword
arguments can be added later. The docs' signals page has a receiver for each.
"""

from __future__ import annotations

import inspect
import typing as t

from blinker import NamedSignal
from blinker import Namespace

from . import messages
from .logs import logger


class ObserverSignal(NamedSignal):
    """A blinker signal whose receivers cannot change the request that sends it.

    :meth:`send` calls every receiver even when one raises: the exception is logged and that
    receiver's result left out. Exceptions that are not :class:`Exception` (a deadline, an
    interpreter exit) still propagate.
    """

    def send(
        self,
        sender: t.Any | None = None,
        /,
        *,
        _async_wrapper: t.Callable[[t.Callable[..., t.Any]], t.Callable[..., t.Any]] | None = None,
        **kwargs: t.Any,
    ) -> list[tuple[t.Callable[..., t.Any], t.Any]]:
        # Most apps listen to few signals: the common case is nobody, and costs one lookup.
        if not self.receivers or self.is_muted:
            return []
        results = []
        for receiver in self.receivers_for(sender):
            try:
                if inspect.iscoroutinefunction(receiver):
                    if _async_wrapper is None:
                        raise RuntimeError(messages.signal_receiver_async(self.name, receiver))
                    result = _async_wrapper(receiver)(sender, **kwargs)
                else:
                    result = receiver(sender, **kwargs)
            except Exception:
                logger.exception(messages.signal_receiver_failed(self.name, receiver))
                continue
            results.append((receiver, result))
        return results


class _Namespace(Namespace):
    def signal(self, name: str, doc: str | None = None) -> NamedSignal:
        if name not in self:
            self[name] = ObserverSignal(name, doc)
        return self[name]


# This namespace is only for the signals Flask-CallTransfer itself sends.
_signals = _Namespace()

#: Sent when a verified, parsed transfer request is about to be routed, before any handler runs.
#: Sender: the app. Keyword arguments: ``call`` (:class:`~flask_calltransfer.TransferRequest`).
transfer_requested = _signals.signal("transfer-requested")

#: Sent once per request when a destination was chosen and will be sent to the platform.
#: Sender: the app. Keyword arguments: ``call``; ``destination`` (the destination object);
#: ``handler`` (the function that chose it, ``None`` for the configured fallback); ``elapsed``
#: (seconds spent routing, a float).
transfer_resolved = _signals.signal("transfer-resolved")

#: Sent once per request when the transfer is refused: by ``refuse()``, or because nobody answered
#: and no fallback is configured. Sender: the app. Keyword arguments: ``call``; ``reason`` (the
#: sentence sent to the platform).
transfer_refused = _signals.signal("transfer-refused")

#: Sent once per request when nobody answered and the platform's answer is "no transfer now"
#: (sipgate's ``204`` to an utterance: the conversation goes on, and a later utterance may be
#: transferred). Sender: the app. Keyword arguments: ``call``.
transfer_deferred = _signals.signal("transfer-deferred")

#: Sent when a step of routing failed and the failure path took over. Sender: the app. Keyword
#: arguments: ``call``; ``exception`` (the exception); ``stage`` (``"handler"``, ``"destination"``,
#: ``"on_error"``, ``"fallback"``, ``"timeout"``, ``"deliver"`` or ``"internal"``).
transfer_failed = _signals.signal("transfer-failed")

#: Sent when a webhook request is turned away. Never carries the payload or a secret. Sender: the
#: app. Keyword arguments: ``platform`` (name); ``reason`` (a short sentence); ``status`` (the HTTP
#: status answered: 400, 401, 408 or 413).
request_rejected = _signals.signal("request-rejected")

#: Sent once per transferred call when the platform reports how the transfer ended. Sender: the
#: app. Keyword arguments: ``platform`` (name); ``call_id``; ``outcome``, one of ``"connected"``,
#: ``"busy"``, ``"no-answer"``, ``"voicemail"``, ``"failed"``, ``"cancelled"``, ``"caller-hung-up"``
#: or ``"unknown"``; ``detail`` (the platform's own word for it, such as Vapi's ``endedReason`` or
#: a transfer record's ``status``).
transfer_outcome = _signals.signal("transfer-outcome")

#: Sent for every verified event that is not a transfer request (status updates, reports, ...).
#: Sender: the app. Keyword arguments: ``platform`` (name); ``event`` (the event type);
#: ``payload`` (the unwrapped payload dict).
event_received = _signals.signal("event-received")

#: Sent for every try of a transfer that is kept as an attempt of its call: each destination a
#: :class:`~flask_calltransfer.DestinationChain` sends, and each destination holding a place of its
#: ``max_concurrent``. Sender: the app. Keyword arguments: ``call``; ``destination`` (the object
#: sent); ``attempt`` (the :class:`~flask_calltransfer.Attempt`, ``number`` 1 for the first try).
transfer_attempted = _signals.signal("transfer-attempted")

#: Sent when a destination is passed over. Sender: the app. Keyword arguments: ``call``;
#: ``destination``; ``reason``: ``"full"`` (its ``max_concurrent`` calls are in progress) or
#: ``"unavailable"`` (its ``available`` predicate or the app's availability check said no).
destination_skipped = _signals.signal("destination-skipped")

#: Sent once per call whose attempts are kept, when they come to an end: one connected, or none is
#: left to try. Sender: the app. Keyword arguments: ``platform``; ``call_id``; ``outcome``
#: (``"connected"``, the last attempt's failure such as ``"busy"``, or ``"exhausted"`` when no
#: destination was free); ``destination`` (the name or description of the one that took the call,
#: else ``None``); ``attempts`` (every :class:`~flask_calltransfer.Attempt` of the call).
transfer_finished = _signals.signal("transfer-finished")

#: Sent once per call when a callback is offered (a handler's or a chain's
#: :class:`~flask_calltransfer.Callback`), after its task is kept. Sender: the app. Keyword
#: arguments: ``call``; ``task`` (the task as kept: a dict with ``id``, ``platform``, ``call_id``,
#: ``caller``, ``reason``, ``handoff``, ``slot``, ``requested_at`` and ``status``; ``None`` when the
#: store could not keep it, so that a receiver handing tasks to a queue still gets the call);
#: ``offer`` (the :class:`~flask_calltransfer.Callback`).
callback_requested = _signals.signal("callback-requested")
