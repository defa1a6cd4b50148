"""The contract every platform adapter fulfils.

A platform translates at the edge: it verifies the raw request, turns the platform's payload into a
neutral :class:`~flask_calltransfer.TransferRequest` (or a :class:`~flask_calltransfer.PlatformEvent`),
and renders a destination or a refusal in the platform's own wire format. Everything between (the
handlers, the fallback, the signals) is the same for every platform.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import json
import typing as t

from flask import Response

from .. import messages
from ..bodies import decode_json
from ..exceptions import DeliveryFailed
from ..exceptions import RequestVerificationFailed
from ..exceptions import TransferRefused
from ..exceptions import UnsupportedDestination
from ..handoff import Handoff
from ..models import PLAN_FIELD_MODES
from ..models import SIP_HEADER_SUMMARY
from ..models import Destination
from ..models import DestinationChain
from ..models import PlatformEvent
from ..models import SipDestination
from ..models import TransferPlan
from ..models import TransferRequest
from ..security import SharedSecretVerifier

if t.TYPE_CHECKING:
    from ..clients import HttpClient
    from ..config import Settings
    from ..security import Verifier
    from ..store import Store

#: What a platform renders: a destination to send, a refusal to report, or a failed delivery.
Outcome = Destination | TransferRefused | DeliveryFailed


class TransferOutcome(t.NamedTuple):
    """How a transfer ended, read from a platform's event.

    .. versionadded:: 0.1
    """

    #: One of :data:`OUTCOMES`.
    outcome: str
    #: The platform's own word for it.
    detail: str
    #: Whether the event is about a transfer for sure (else it counts only for calls this app
    #: transferred).
    definite: bool
    #: Whether the call itself is over, so no later destination can be tried.
    ended: bool = False
    #: Which transfer of the call it is about (1 for the first), when the platform says.
    attempt: int | None = None
    #: Whether the transferred call is over, so the destination is free again even though it
    #: connected (a dial verb's action callback comes when the dialled call ends).
    leg_over: bool = False


#: The outcome vocabulary shared by every platform. ``voicemail`` and ``cancelled`` come from
#: Vapi's transfer records (``artifact.transfers[].status``).
OUTCOMES: t.Final[frozenset[str]] = frozenset(
    {"connected", "busy", "no-answer", "voicemail", "failed", "cancelled", "caller-hung-up", "unknown"}
)


class Inbound:
    """The parts of an HTTP request a platform may look at. Built by the view.

    :param url: the full URL, or a function that returns it: building it is not free, and only
        signatures over the URL need it.

    .. versionadded:: 0.1
    """

    __slots__ = ("headers", "body", "method", "_url")

    def __init__(
        self, *, headers: t.Mapping[str, str], body: bytes, method: str, url: str | t.Callable[[], str]
    ) -> None:
        #: Request headers, looked up case-insensitively.
        self.headers = headers
        #: The raw body bytes, exactly as received.
        self.body = body
        #: The HTTP method.
        self.method = method
        self._url = url

    @property
    def url(self) -> str:
        """The full URL the request was sent to."""
        if callable(self._url):
            self._url = self._url()
        return self._url


@dataclasses.dataclass(frozen=True)
class Services:
    """What one app gives its platforms: settings, the store, the outbound HTTP client, and the
    API clients the platforms on offer built.

    .. versionadded:: 0.1
    """

    #: The app's platform-independent settings.
    settings: Settings
    #: The app's store, for state that outlives one request.
    store: Store
    #: Outbound HTTP with the app's timeouts and retries.
    http: HttpClient
    #: Every client :meth:`Platform.build_clients` built, by name.
    clients: t.Mapping[str, object] = dataclasses.field(default_factory=dict)


# NaN and infinities are not JSON: a platform could not read the answer at all. One encoder for
# every answer: json.dumps with options builds a new one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _not_serializable(value: object) -> t.NoReturn:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _c_encoder() -> t.Callable[[t.Any], str] | None:
    # JSONEncoder.encode builds its C encoder anew for every call, half the cost of encoding a
    # small answer. This is that C encoder, built once with _COMPACT's options. Without circular
    # reference checks: replies the adapters build hold no cycles, and a cycle still fails, with
    # RecursionError instead of ValueError. Private to json; where it differs, _COMPACT serves.
    from json import encoder

    try:
        make = encoder.c_make_encoder  # type: ignore[attr-defined]
        iterencode = make(
            None, _not_serializable, encoder.encode_basestring, None, ":", ",", False, False, False
        )
        if "".join(iterencode({"a": [1, 2.5, None, True, "é"]}, 0)) != _COMPACT.encode(
            {"a": [1, 2.5, None, True, "é"]}
        ):
            return None
    except (AttributeError, TypeError):  # pragma: no cover - other Pythons or versions
        return None

    def encode(body: t.Any) -> str:
        try:
            return "".join(iterencode(body, 0))
        except RecursionError:
            # A cycle (in an on_event reply): the checked encoder says so with its ValueError.
            return _COMPACT.encode(body)

    return encode


_ENCODE = _c_encoder() or _COMPACT.encode


def compact_json(body: t.Any) -> str:
    """``body`` in the compact JSON platforms expect; NaN and infinities raise ValueError.

    :meta private:
    """
    return _ENCODE(body)


def json_response(body: t.Any, status: int = 200) -> Response:
    """A JSON response with the compact encoding platforms expect."""
    try:
        data = _ENCODE(body).encode()
    except UnicodeEncodeError:
        # A lone surrogate (from a caller's text, say) has no UTF-8 form; escaped, it is valid JSON.
        data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return Response(data, status, content_type="application/json")


_FAILED_CALL = TransferRequest(platform="-", event="-")


class Platform(abc.ABC):
    """Base class of the platform adapters. One instance serves one app.

    A subclass must:

    - set :attr:`name`, the URL segment and config namespace (``"vapi"`` serves
      ``POST <prefix>/vapi`` and reads ``CALLTRANSFER_VAPI_*``);
    - set :attr:`credential_keys`, the config keys any of which enables the platform when
      ``CALLTRANSFER_PLATFORMS`` is ``None``;
    - implement :meth:`from_config`, validating its own keys and raising
      :class:`~flask_calltransfer.ConfigurationError` naming the key at fault;
    - implement :meth:`parse`, returning a :class:`~flask_calltransfer.TransferRequest` for events
      that ask for a destination and a :class:`~flask_calltransfer.PlatformEvent` for any other,
      and raising :class:`~flask_calltransfer.InvalidPayload` for payloads of the wrong shape;
    - implement :meth:`render`, answering a destination or a refusal in the platform's format and
      raising :class:`~flask_calltransfer.UnsupportedDestination` for a destination, or an
      attribute of one, it cannot carry; rendering a refusal must never fail;
    - implement :meth:`render_event`, answering any other event.

    It may override :meth:`verify` (the default uses the verifier built by :meth:`from_config`) and
    :meth:`no_answer`, for platforms where "no handler answered" means "no transfer now" rather
    than a refusal.

    .. versionadded:: 0.1
    """

    #: The URL segment and config namespace.
    name: t.ClassVar[str]
    #: Config keys that hold this platform's credentials.
    credential_keys: t.ClassVar[tuple[str, ...]]
    #: Seconds handlers may take when ``CALLTRANSFER_HANDLER_TIMEOUT`` does not say: safely
    #: inside the time the platform waits for a webhook reply.
    handler_timeout: t.ClassVar[float] = 10.0
    #: Defaults of the platform's own config keys, written at ``init_app`` where the app set none.
    #: The built-in platforms' keys are in :mod:`flask_calltransfer.config`; a platform from
    #: another distribution declares its own here (``CALLTRANSFER_<NAME>_*``).
    config_defaults: t.ClassVar[t.Mapping[str, t.Any]] = {}
    #: Seconds the platform waits for a webhook reply before it gives up on it. After the longest
    #: of these no platform is waiting, which bounds gunicorn's worker ``timeout``
    #: (:func:`~flask_calltransfer.platforms.worker_timeout`).
    reply_budget: t.ClassVar[float] = 10.0

    def __init__(self, *, services: Services, verifier: Verifier | None) -> None:
        #: The app's settings, store and HTTP client.
        self.services = services
        #: The request verifier, or ``None`` when verification is turned off.
        self.verifier = verifier
        #: The app's platform-independent settings (``services.settings``).
        self.settings: Settings = services.settings
        #: The app's store (``services.store``).
        self.store: Store = services.store

    @classmethod
    def has_credentials(cls, config: t.Mapping[str, t.Any]) -> bool:
        """Whether any of :attr:`credential_keys` is set."""
        return any(config.get(key) for key in cls.credential_keys)

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: t.Mapping[str, t.Any], services: Services) -> Platform:
        """Validate this platform's keys and build the adapter for one app."""

    @classmethod
    def build_clients(cls, config: t.Mapping[str, t.Any], http: HttpClient) -> dict[str, object]:
        """The outbound API clients this platform brings, by name, built on ``http`` (the app's
        timeouts, retries and size cap).

        Called at ``init_app`` for every platform the extension offers, enabled or not: the app's
        code reaches them as ``transfers.clients[name]``, and :meth:`from_config` finds them in
        ``services.clients``. Validate the keys they need here, raising
        :class:`~flask_calltransfer.ConfigurationError` naming the key. The default builds none.

        .. versionadded:: 0.1
        """
        return {}

    #: Whether a request repeated byte for byte inside ``CALLTRANSFER_REPLAY_WINDOW`` gets the
    #: first answer again instead of being routed again. Right for platforms whose requests carry
    #: a timestamp or unique id (so equal bytes mean the same request); wrong for sipgate, where a
    #: caller may well say the same thing twice.
    answers_replays: t.ClassVar[bool] = False

    @functools.cached_property
    def verifies_headers_only(self) -> bool:
        """Whether :meth:`verify` reads nothing but the headers (a shared secret or token), so the
        view can check them before it reads, and waits for, the body."""
        return isinstance(self.verifier, SharedSecretVerifier)

    @functools.cached_property
    def remembers_answers(self) -> bool:
        """Whether this app keeps answers for replays (:attr:`answers_replays`): only when requests
        are signed over their body. A shared secret travels in the clear, so whoever captured a
        request holds it and can send new ones; keeping answers would cost two store writes per
        request and protect nothing. Without verification there is nothing to protect either.

        Both are worked out once (a platform's verifier is set when it is built) and read on every
        webhook.

        .. versionadded:: 0.1
        """
        return self.answers_replays and self.verifier is not None and not self.verifies_headers_only

    def verify(self, inbound: Inbound) -> None:
        """Raise :class:`~flask_calltransfer.RequestVerificationFailed` unless the request is authentic."""
        if self.verifier is None:
            return
        self.verifier.verify(inbound)

    def decode(self, body: bytes, inbound: Inbound, max_values: int | None) -> dict[str, t.Any]:
        """Decode the verified raw body into the object :meth:`parse` reads.

        The default decodes a JSON object. A platform that posts HTML forms returns
        :func:`~flask_calltransfer.bodies.decode_form`'s fields. Either way at most ``max_values``
        values (``CALLTRANSFER_MAX_JSON_VALUES``) are built, and a body that does not decode raises
        :class:`~flask_calltransfer.InvalidPayload`, answered ``400``.

        .. versionadded:: 0.1
        """
        return decode_json(body, max_values)

    @abc.abstractmethod
    def parse(self, payload: dict[str, t.Any], inbound: Inbound) -> TransferRequest | PlatformEvent:
        """Turn the decoded body (:meth:`decode`) into a transfer request or another event."""

    @abc.abstractmethod
    def render(self, call: TransferRequest, outcome: Outcome) -> Response:
        """Answer a transfer request with a destination or a refusal."""

    @abc.abstractmethod
    def render_event(self, event: PlatformEvent, reply: dict[str, t.Any] | None) -> Response:
        """Answer another event: ``reply`` from an ``on_event`` handler, or ``None`` for the no-op."""

    def check(self, destination: Destination) -> None:  # noqa: B027 - accepting all is a real default
        """Raise :class:`~flask_calltransfer.UnsupportedDestination` if this platform cannot carry
        ``destination`` or one of its attributes. The default accepts everything."""

    def check_blind_only(self, destination: Destination) -> None:
        """Raise :class:`~flask_calltransfer.UnsupportedDestination` if ``destination`` asks for
        more than a plain blind transfer: a warm mode, or any transfer-plan field. For platforms
        that transfer blind only; the error names the mode or the plan's field.

        .. versionadded:: 0.1
        """
        plan: TransferPlan | None = getattr(destination, "transfer_plan", None)
        extras = plan.beyond_blind() if plan is not None else ()
        if extras:
            raise self.unsupported(extras[0])

    def render_failure(self) -> Response:
        """The answer when something unexpected broke: valid for any event of this platform."""
        return self.render(_FAILED_CALL, TransferRefused(self.settings.refusal_message))

    def outcome(self, event: PlatformEvent) -> TransferOutcome | None:
        """How a transfer ended, if ``event`` reports it: ``(outcome, detail, definite)``.

        ``definite`` outcomes are reported for any call; the others (a call that simply ended)
        only for calls this app transferred. The default reads nothing.
        """
        return None

    #: How the next destination of a :class:`~flask_calltransfer.DestinationChain` follows a
    #: failed transfer: ``"request"`` (the platform asks again for the same call, and the next
    #: request gets the next destination: Vapi), ``"deliver"`` (the event that reports the failure
    #: makes the extension send the next transfer through the platform's API, once across every
    #: worker: VoiceDock), ``"reply"`` (the answer to that event carries the next destination, as
    #: a dial verb's action callback does), or ``None`` when the platform never says that a
    #: transfer failed: only the first free destination is used (sipgate).
    #:
    #: .. versionadded:: 0.1
    failover: t.ClassVar[str | None] = None

    def deliver(self, call: TransferRequest, destination: Destination) -> None:
        """Carry out a transfer through the platform's API (``"deliver"`` failover, and the
        tool-call platforms). The default has no API to carry it.

        :raises DeliveryFailed: if the API did not accept the transfer.
        """
        raise NotImplementedError(f"{self.name} does not carry out transfers through an API.")

    def prepare_attempt(self, destination: Destination, chain: DestinationChain) -> Destination:
        """The destination as sent when it comes from ``chain``: a platform whose failover needs a
        setting on the transfer itself adds it here (Vapi keeps the assistant on the call when
        the transfer fails). The default sends it as it is.

        .. versionadded:: 0.1
        """
        return destination

    #: How a hand-off context travels on this platform (see :class:`~flask_calltransfer.Handoff`):
    #: ``"sip-headers"`` (a SIP destination carries ``X-Handoff-*`` and ``User-to-User``),
    #: ``"number-headers"`` (a number's dial carries them too), ``"operator-message"`` (Vapi's
    #: warm message modes say the hand-off to the person who answers), ``"refer-to"``
    #: (``User-to-User`` may go inside the REFER's Refer-To). Empty: the hand-off is kept for the
    #: screen-pop page only, as nothing on the platform can carry it (sipgate, VoiceDock).
    #:
    #: .. versionadded:: 0.1
    handoff_channels: t.ClassVar[frozenset[str]] = frozenset()
    #: How this platform itself writes "the caller's own number" as a caller ID (Vapi:
    #: ``"{{customer.number}}"``), or ``None``: ``caller_id=CALLER`` is then sent as the number the
    #: webhook gave for the caller.
    #:
    #: .. versionadded:: 0.1
    caller_template: t.ClassVar[str | None] = None

    def attach_handoff(self, destination: Destination, handoff: Handoff) -> Destination:
        """``destination`` carrying ``handoff`` (sent already: with its id, the caller's number
        and its screen-pop link) the way :attr:`handoff_channels` says.

        The default puts the headers on a SIP destination ahead of its own (a header the app
        set itself wins), and says the hand-off to the person who answers in a warm mode that
        says a message, when the plan has no message of its own.

        .. versionadded:: 0.1
        """
        channels = self.handoff_channels
        if "sip-headers" in channels and isinstance(destination, SipDestination):
            headers = {**handoff.headers(), **(destination.headers or {})}
            destination = destination.replaced(headers=headers)
        plan = getattr(destination, "transfer_plan", None)
        if "operator-message" in channels and plan is not None and plan.message is None:
            spoken = handoff.spoken()
            says = plan.mode in PLAN_FIELD_MODES["message"] and plan.mode != SIP_HEADER_SUMMARY
            if spoken is not None and says:
                destination = destination.replaced(transfer_plan=dataclasses.replace(plan, message=spoken))
        return destination

    def earlier_outcome(self, call: TransferRequest) -> TransferOutcome | None:
        """How the call's previous transfer ended, if this request says (``"request"``
        failover). ``None`` counts it as failed: the platform would not ask again otherwise.

        .. versionadded:: 0.1
        """
        return None

    def event_call(self, event: PlatformEvent) -> TransferRequest:
        """The call an event is about, as a transfer request for the next attempt of a chain
        (``"deliver"`` and ``"reply"`` failover).

        .. versionadded:: 0.1
        """
        return TransferRequest(
            platform=self.name,
            event=event.type,
            call_id=event.call_id,
            raw=event.payload,
            region=self.settings.default_region,
        )

    def owed(self, item: TransferRequest | PlatformEvent) -> Response | None:
        """An answer an earlier request left for this call, to send instead of routing again.

        sipgate uses it to hand over an announced transfer, the tool-call platforms to repeat the
        reply to a tool call delivered twice. The default owes nothing.
        """
        return None

    def no_answer(self, call: TransferRequest) -> Response | None:
        """The answer when no handler had an opinion, or ``None`` to use the fallback and refusal."""
        return None

    def unsupported(self, attribute: str, *, kind: bool = False) -> UnsupportedDestination:
        """Build the error for a destination kind or attribute this platform cannot carry."""
        text = (messages.unsupported_kind if kind else messages.unsupported_attribute)(self.name, attribute)
        return UnsupportedDestination(text, platform=self.name, attribute=attribute)

    def describe_verification(self) -> str:
        """A short, secret-free description of how requests are verified."""
        return "off" if self.verifier is None else type(self.verifier).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


__all__ = [
    "Inbound",
    "Outcome",
    "Platform",
    "RequestVerificationFailed",
    "json_response",
]
