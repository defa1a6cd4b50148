"""Blinker signals for observing transfers: logging, metrics, analytics and tests.

Signals observe; they never decide. Routing decisions go through ``on_request`` and ``on_error``
handlers. Every signal is sent with the real application object as sender, and receivers must
accept ``**extra`` so new keyword arguments can be added later.

.. code-block:: python

    from flask_calltransfer import signals

    @signals.transfer_resolved.connect_via(app)
    def log_transfer(sender, call, destination, handler, elapsed, **extra):
        metrics.timing("transfer.resolve", elapsed)
"""

from __future__ import annotations

from blinker import Namespace

# This namespace is only for the signals Flask-CallTransfer itself sends.
_signals = Namespace()

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

#: Sent when a step of routing failed and the failure path took over. Sender: the app. Keyword
#: arguments: ``call``; ``exception`` (the exception); ``stage`` (``"handler"``, ``"destination"``,
#: ``"on_error"`` or ``"fallback"``).
transfer_failed = _signals.signal("transfer-failed")

#: Sent when a webhook request is turned away. Never carries the payload or a secret. Sender: the
#: app. Keyword arguments: ``platform`` (name); ``reason`` (a short sentence); ``status`` (the HTTP
#: status answered: 400, 401 or 413).
request_rejected = _signals.signal("request-rejected")

#: Sent once per transferred call when the platform reports how the transfer ended. Sender: the
#: app. Keyword arguments: ``platform`` (name); ``call_id``; ``outcome``, one of ``"connected"``,
#: ``"busy"``, ``"no-answer"``, ``"failed"``, ``"caller-hung-up"`` or ``"unknown"``; ``detail``
#: (the platform's own word for it, such as Vapi's ``endedReason``).
transfer_outcome = _signals.signal("transfer-outcome")

#: Sent for every verified event that is not a transfer request (status updates, reports, ...).
#: Sender: the app. Keyword arguments: ``platform`` (name); ``event`` (the event type);
#: ``payload`` (the unwrapped payload dict).
event_received = _signals.signal("event-received")
