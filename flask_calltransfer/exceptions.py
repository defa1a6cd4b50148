"""The exception hierarchy of Flask-CallTransfer.

Every exception derives from :class:`CallTransferError`. The ones that map to an HTTP answer also
derive from the matching werkzeug exception, so Flask treats them like any other HTTP error.
"""

from __future__ import annotations

import typing as t

from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.exceptions import RequestTimeout
from werkzeug.exceptions import Unauthorized

from . import messages


class CallTransferError(Exception):
    """Base class of every error raised by Flask-CallTransfer.

    .. versionadded:: 0.1
    """


class ConfigurationError(CallTransferError):
    """A ``CALLTRANSFER_*`` setting is missing or invalid. Raised by ``init_app``.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        #: The configuration key at fault, when there is exactly one.
        self.key = key


class InvalidDestination(CallTransferError, ValueError):
    """A destination could not be built: a bad number, SIP URI, header, extension or mode.

    Raised when the destination object is constructed, so the traceback points at the line that
    built it.

    .. versionadded:: 0.1
    """


class UnsupportedDestination(CallTransferError, TypeError):
    """A platform cannot carry a destination, or one of its attributes.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, platform: str, attribute: str) -> None:
        super().__init__(message)
        #: The platform that cannot carry the destination.
        self.platform = platform
        #: The destination kind or attribute it cannot carry.
        self.attribute = attribute


class TransferRefused(CallTransferError):
    """A deliberate refusal: the platform is told, in its own format, that no transfer happens.

    Raise it with :func:`flask_calltransfer.refuse` from a handler.

    .. versionadded:: 0.1
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        #: The sentence the platform speaks or reports to the caller.
        self.reason = reason


class DeliveryFailed(CallTransferError):
    """A destination was chosen but the platform's API did not carry out the transfer.

    The assistant is told in the tool call's result, so it can tell the caller.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, cause: Exception | None = None) -> None:
        super().__init__(message)
        #: What went wrong underneath, usually a :class:`~flask_calltransfer.clients.ApiError`.
        self.cause = cause


class StoreUnavailable(CallTransferError):
    """A store operation failed because the store is down, locked, full or too slow, or was not
    tried because it failed moments ago (its circuit breaker is open).

    The extension degrades around it: bookkeeping is skipped, and state a transfer needs falls
    back to the safest answer that still transfers. Handlers that use the store directly (a
    :class:`~flask_calltransfer.DestinationPool` does, and degrades too) may catch it.

    .. versionadded:: 0.1
    """


class InvalidPayload(CallTransferError, BadRequest):
    """The request body is not a payload the platform sends. Answered with ``400``.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, errors: t.Mapping[str, t.Any] | None = None) -> None:
        CallTransferError.__init__(self, message)
        BadRequest.__init__(self, message)
        #: Field names mapped to what is wrong with them, as marshmallow reports them.
        self.errors: dict[str, t.Any] = dict(errors or {})


class RequestVerificationFailed(CallTransferError, Unauthorized):
    """The request's secret or signature did not verify. Answered with ``401``.

    The message is for the log only; the response body is fixed so it tells an attacker nothing.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, credential_sent: bool = True) -> None:
        CallTransferError.__init__(self, message)
        Unauthorized.__init__(self, message)
        #: ``False`` when the request carried no credential of the checked kind at all.
        self.credential_sent = credential_sent


class PayloadTooLarge(CallTransferError, RequestEntityTooLarge):
    """The request body is larger than ``CALLTRANSFER_MAX_BODY_BYTES``. Answered with ``413``.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str) -> None:
        CallTransferError.__init__(self, message)
        RequestEntityTooLarge.__init__(self, message)


class BodyTimeout(CallTransferError, RequestTimeout):
    """The request body did not arrive within ``CALLTRANSFER_BODY_TIMEOUT``. Answered with ``408``
    and the connection closed: a client that sends slowly cannot hold a worker.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str) -> None:
        CallTransferError.__init__(self, message)
        RequestTimeout.__init__(self, message)


def refuse(reason: str) -> t.NoReturn:
    """Refuse the transfer on purpose, with a sentence the caller hears or the assistant reads.

    Call it from an ``on_request`` or ``on_error`` handler. The platform gets its own refusal shape
    (Vapi ``{"error": reason}``) and no fallback is tried.

    .. code-block:: python

        office = BusinessHours({"mon-fri": "09:00-17:00"}, timezone="Europe/Amsterdam")

        @transfers.on_request
        def route(call):
            if not office(call):
                refuse("Our office is closed. Please call again tomorrow from nine.")

    :param reason: the sentence to report; it must not be empty.

    .. versionadded:: 0.1
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(messages.refuse_reason_invalid())
    raise TransferRefused(reason)
