"""Twilio voice webhooks for Flask-CallTransfer, answered with TwiML.

A call's voice URL, a ConversationRelay session's ``<Connect action>`` hand-off, and the
``<Dial action>`` callback that says how a transfer ended all arrive form-encoded on
``POST <prefix>/twilio``, signed with ``X-Twilio-Signature``. Installed, this distribution offers
the ``twilio`` platform through the ``flask_calltransfer.platforms`` entry point; the app enables
it by setting ``CALLTRANSFER_TWILIO_AUTH_TOKEN``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import typing as t
import urllib.parse
import xml.etree.ElementTree as ET

from flask import Response
from flask import request

from flask_calltransfer import AssistantDestination
from flask_calltransfer import ConfigurationError
from flask_calltransfer import Destination
from flask_calltransfer import Handoff
from flask_calltransfer import InvalidPayload
from flask_calltransfer import NumberDestination
from flask_calltransfer import PayloadTooLarge
from flask_calltransfer import PlatformEvent
from flask_calltransfer import RequestVerificationFailed
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRefused
from flask_calltransfer import TransferRequest
from flask_calltransfer import UnsupportedDestination
from flask_calltransfer.bodies import decode_form
from flask_calltransfer.bodies import decode_json
from flask_calltransfer.platforms import Platform
from flask_calltransfer.platforms.base import Inbound
from flask_calltransfer.platforms.base import Outcome
from flask_calltransfer.platforms.base import Services
from flask_calltransfer.platforms.base import TransferOutcome

__version__ = "0.1.0"

AUTH_TOKEN = "CALLTRANSFER_TWILIO_AUTH_TOKEN"
PUBLIC_URL = "CALLTRANSFER_TWILIO_PUBLIC_URL"
CALLER_ID = "CALLTRANSFER_TWILIO_CALLER_ID"
DIAL_TIMEOUT = "CALLTRANSFER_TWILIO_DIAL_TIMEOUT"
VOICE = "CALLTRANSFER_TWILIO_VOICE"
LANGUAGE = "CALLTRANSFER_TWILIO_LANGUAGE"

SIGNATURE_HEADER = "X-Twilio-Signature"

#: SIP headers ``<Sip>`` carries without the ``x-`` prefix (Twilio's ``<Sip>`` page).
PLAIN_SIP_HEADERS: t.Final = frozenset(
    {"user-to-user", "remote-party-id", "p-preferred-identity", "p-called-party-id"}
)
#: Twilio refuses a header part of this many characters or more (error 21227).
MAX_SIP_HEADER_PART = 1024
#: ... and a SIP URI of this many characters or more.
MAX_SIP_URI = 255

#: ``DialCallStatus`` in the shared outcome vocabulary. ``answered`` is a conference's word for
#: what a number or SIP dial calls ``completed``.
DIAL_OUTCOMES: t.Final = {
    "completed": "connected",
    "answered": "connected",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "cancelled",
}
#: ``CallStatus`` values of a live call: a voice URL request asks what to do with it.
LIVE_CALL = frozenset({"queued", "initiated", "ringing", "in-progress"})

_CONTENT_TYPE = "text/xml; charset=utf-8"


def _signed_data(url: str, params: t.Mapping[str, str | list[str]]) -> bytes:
    # The URL, then every field's name and value: names sorted, a repeated field's distinct
    # values sorted (as twilio-python's RequestValidator builds it).
    data = [url]
    for name in sorted(params):
        values = params[name]
        for value in sorted(set(values if isinstance(values, list) else [values])):
            data.append(name)
            data.append(value)
    return "".join(data).encode()


def _sign(token: str, data: bytes) -> bytes:
    return base64.b64encode(hmac.new(token.encode(), data, hashlib.sha1).digest())


def compute_signature(token: str, url: str, params: t.Mapping[str, str | list[str]]) -> str:
    """``X-Twilio-Signature`` for a request to ``url`` with form fields ``params``: base64 of the
    HMAC-SHA1, keyed with the auth token, of the URL followed by every field's name and value,
    names sorted, a repeated field's distinct values sorted."""
    return _sign(token, _signed_data(url, params)).decode("ascii")


_PORT = re.compile(r":\d*$")


def _port_variants(url: str) -> tuple[str, ...]:
    # Twilio signs the URL as it was configured, with or without the default port; its own
    # validator accepts both, so a proxy that adds or drops ":443" does not break verification.
    # The host keeps its case: Twilio signs it as written.
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    host = _PORT.sub("", netloc) if not netloc.endswith("]") else netloc
    bare = parts._replace(netloc=host).geturl()
    port = parts.port if parts.port is not None else {"https": 443, "http": 80}.get(parts.scheme)
    with_port = parts._replace(netloc=f"{host}:{port}").geturl() if port is not None else bare
    return (bare, with_port) if bare != with_port else (bare,)


class TwilioSignature:
    """Accepts a request whose ``X-Twilio-Signature`` one of ``tokens`` computed for the URL Twilio
    requested.

    :param tokens: the account's auth tokens (several while one is rotated out).
    :param public_url: the scheme, host, port and path prefix Twilio uses to reach the app, when
        a proxy or tunnel in between changes them; ``None`` takes them from the request.
    :param max_values: at most this many form fields are decoded (``CALLTRANSFER_MAX_JSON_VALUES``):
        verification runs before anything else, so it must not cost more than a request may.
    """

    def __init__(
        self, tokens: t.Sequence[str], *, public_url: str | None, max_values: int | None = None
    ) -> None:
        self._tokens = tuple(tokens)
        self.public_url = public_url.rstrip("/") if public_url else None
        self.max_values = max_values

    def signed_url(self) -> str:
        """The URL Twilio requested and signed: the public base, this path, the raw query."""
        environ = request.environ
        base = self.public_url or request.root_url.rstrip("/")
        path = urllib.parse.quote(environ.get("PATH_INFO", "").encode("latin-1"), safe="/:@!$&'()*+,;=-._~")
        query = environ.get("QUERY_STRING", "")
        return f"{base}{path}?{query}" if query else f"{base}{path}"

    def verify(self, inbound: t.Any) -> None:
        signature = inbound.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise RequestVerificationFailed(
                f"The request has no {SIGNATURE_HEADER} header. Point the number's voice URL at this"
                " webhook, or send the header as Twilio would."
            )
        url = self.signed_url()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        params: t.Mapping[str, str | list[str]]
        if "bodySHA256" in query:
            # A JSON body is signed through its hash in the URL; the fields are then none.
            expected = hashlib.sha256(inbound.body).hexdigest().encode()
            if not hmac.compare_digest(expected, query["bodySHA256"][0].encode("utf-8", "surrogateescape")):
                raise RequestVerificationFailed("The body's SHA-256 is not the bodySHA256 Twilio signed.")
            params = {}
        else:
            try:
                params = decode_form(inbound.body, self.max_values)
            except InvalidPayload:
                # Not form data at all: signed as a request without fields, it is then turned
                # away as the bad body it is, with 400; unsigned, with 401 like any other.
                params = {}
        given = signature.encode("utf-8", "surrogateescape")
        matched = False
        for variant in _port_variants(url):
            data = _signed_data(variant, params)
            for token in self._tokens:
                # Every comparison runs: how long it takes says nothing of which one matched.
                matched |= hmac.compare_digest(_sign(token, data), given)
        if not matched:
            raise RequestVerificationFailed(
                f"The {SIGNATURE_HEADER} header does not match the URL and form fields with any"
                f" configured auth token. Set {AUTH_TOKEN} to the account's auth token and, behind a"
                f" proxy or tunnel, {PUBLIC_URL} to the base URL Twilio calls."
            )


def read_handoff(data: str, max_values: int | None = None) -> tuple[str, dict[str, t.Any]]:
    """What a ConversationRelay session handed over in ``HandoffData``: its text, and its fields
    when it is a JSON object (as apps usually send it). The text is the first of ``text``,
    ``reason``, ``summary`` and ``reasonCode`` that is set, or the whole string when it is not
    JSON."""
    try:
        # The core's decoder: bounded in depth and size, no NaN; anything but an object is text.
        decoded = decode_json(data.encode("utf-8", "surrogatepass"), max_values)
    except (InvalidPayload, PayloadTooLarge):
        return data, {}
    for key in ("text", "reason", "summary", "reasonCode"):
        value = decoded.get(key)
        if isinstance(value, str) and value:
            return value, decoded
    return "", decoded


# What XML 1.0 cannot hold: control characters but tab and line breaks, lone surrogates, U+FFFE
# and U+FFFF. ElementTree writes them as they are, and Twilio then cannot read the TwiML at all.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (a caller's words repeated in a
    refusal may hold any)."""
    return _NOT_XML.sub("", text)


# Twilio's ids: two letters for the kind, 32 hex digits.
_SIDS = {"CallSid": "CA", "AccountSid": "AC", "DialCallSid": "CA", "ParentCallSid": "CA", "SessionId": "VX"}
_SID = re.compile(r"[0-9a-fA-F]{32}")
# The fields that say which request this is. The signature joins names and values without a
# separator, so "CallbackSource=x&Called=y" and "CallbackSourcexCalled=y" sign alike: a captured
# status callback could be re-cut into a field that hides what it is. No field of Twilio's
# extends one of these names, and ids are checked for their form, so neither cut gets through.
_ROUTING = ("CallbackSource", "DialCallStatus", "SessionStatus", "HandoffData", "CallStatus", "CallSid")


def _check_form(payload: t.Mapping[str, t.Any]) -> None:
    for name in payload:
        for routing in _ROUTING:
            if name != routing and name.startswith(routing):
                raise InvalidPayload(
                    f"{name} is not a field Twilio sends. Send Twilio's own webhook fields.",
                    {name: ["Unknown field."]},
                )
    for name, kind in _SIDS.items():
        value = payload.get(name)
        if value is not None and not (
            isinstance(value, str) and value[:2] == kind and _SID.fullmatch(value, 2) is not None
        ):
            raise InvalidPayload(
                f"{name} is not a Twilio id ({kind} and 32 hexadecimal digits). Send Twilio's own"
                " webhook fields.",
                {name: ["Not a valid Twilio id."]},
            )


def _field(payload: t.Mapping[str, t.Any], name: str, *, required: bool = False) -> str | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise InvalidPayload(
                f"A Twilio webhook carries {name}; this request has none. Point the voice URL at"
                " this webhook with Twilio's standard parameters.",
                {name: ["Missing."]},
            )
        return None
    if not isinstance(value, str):
        raise InvalidPayload(
            f"Twilio sends {name} once; this request sends it {len(value)} times.",
            {name: ["Sent more than once."]},
        )
    return value


class TwilioPlatform(Platform):
    """Twilio Programmable Voice: TwiML ``<Dial>`` answers to voice webhooks and ConversationRelay
    hand-offs.

    Transfer requests (:attr:`TransferRequest.event <flask_calltransfer.TransferRequest.event>`):

    - ``"call"``: the number's voice URL, for a live call (``CallStatus`` ringing or in progress);
    - ``"handoff"``: ConversationRelay's ``<Connect action>`` after the session ended with
      ``handoffData`` (its text, and its fields as ``call.arguments`` when it is a JSON object);
    - ``"session-failed"``: the same callback after the session failed, so the caller still
      reaches someone.

    Other events: ``"dial-status"`` (the ``<Dial action>`` callback, whose ``DialCallStatus``
    becomes the transfer's outcome), ``"session-ended"``, ``"session-completed"`` and
    ``"call-status"``. Their no-op is an empty ``<Response/>``; an ``on_event`` handler may answer
    ``{"twiml": "<Response>...</Response>"}``.

    .. versionadded:: 0.1
    """

    name = "twilio"
    credential_keys = (AUTH_TOKEN,)
    config_defaults: t.ClassVar[t.Mapping[str, t.Any]] = {
        AUTH_TOKEN: None,
        PUBLIC_URL: None,
        CALLER_ID: None,
        DIAL_TIMEOUT: None,
        VOICE: None,
        LANGUAGE: None,
    }
    # The <Dial action> callback says how a dial ended, once the dialled call is over, and its
    # answer is the call's next TwiML: the next destination of a chain.
    failover = "reply"
    # <Sip> passes X- headers and User-to-User as URI parameters; <Number> carries none.
    handoff_channels = frozenset({"sip-headers"})
    # Twilio waits 15 seconds for a webhook's answer; handlers get 10 of them.
    reply_budget = 15.0
    handler_timeout = 10.0

    def __init__(
        self,
        *,
        services: Services,
        verifier: TwilioSignature | None,
        public_url: str | None = None,
        caller_id: str | None = None,
        dial_timeout: int | None = None,
        voice: str | None = None,
        language: str | None = None,
    ) -> None:
        super().__init__(services=services, verifier=verifier)
        self.public_url = public_url
        self.caller_id = caller_id
        self.dial_timeout = dial_timeout
        self.say_attributes = {k: v for k, v in (("voice", voice), ("language", language)) if v}
        self._urls = verifier or TwilioSignature((), public_url=public_url)

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any], services: Services) -> Platform:
        tokens = config.get(AUTH_TOKEN)
        if isinstance(tokens, str):
            tokens = [tokens]
        if tokens is not None and (
            not isinstance(tokens, (list, tuple)) or not all(isinstance(x, str) and x for x in tokens)
        ):
            raise ConfigurationError(
                f"{AUTH_TOKEN} must be the account's auth token, or a list of them while one is rotated out.",
                key=AUTH_TOKEN,
            )
        if services.settings.verify and not tokens:
            raise ConfigurationError(
                f"Set {AUTH_TOKEN} to the Twilio account's auth token (Console, Account info), so"
                " webhooks can be verified.",
                key=AUTH_TOKEN,
            )
        public_url = config.get(PUBLIC_URL)
        if public_url is not None:
            parts = urllib.parse.urlsplit(public_url) if isinstance(public_url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise ConfigurationError(
                    f"{PUBLIC_URL} must be the base URL Twilio calls, such as https://calls.example.com"
                    " (with the path prefix a proxy strips, if any), without a query.",
                    key=PUBLIC_URL,
                )
        dial_timeout = config.get(DIAL_TIMEOUT)
        if dial_timeout is not None and (
            isinstance(dial_timeout, bool)
            or not isinstance(dial_timeout, int)
            or not 5 <= dial_timeout <= 600
        ):
            raise ConfigurationError(
                f"{DIAL_TIMEOUT} must be the seconds a transfer rings, a whole number from 5 to 600.",
                key=DIAL_TIMEOUT,
            )
        caller_id = config.get(CALLER_ID)
        if caller_id is not None:
            try:
                caller_id = NumberDestination(caller_id).number
            except (ValueError, TypeError):
                raise ConfigurationError(
                    f"{CALLER_ID} must be a Twilio number or verified caller ID, in E.164.", key=CALLER_ID
                ) from None
        for key in (VOICE, LANGUAGE):
            if config.get(key) is not None and not isinstance(config.get(key), str):
                raise ConfigurationError(f"{key} must be a string, as <Say> takes it.", key=key)
        verifier = (
            TwilioSignature(tokens or (), public_url=public_url, max_values=services.settings.max_json_values)
            if services.settings.verify
            else None
        )
        return cls(
            services=services,
            verifier=verifier,
            public_url=public_url,
            caller_id=caller_id,
            dial_timeout=dial_timeout,
            voice=config.get(VOICE),
            language=config.get(LANGUAGE),
        )

    # Requests --------------------------------------------------------------------------------------

    def decode(self, body: bytes, inbound: Inbound, max_values: int | None) -> dict[str, t.Any]:
        return decode_form(body, max_values)

    def parse(self, payload: dict[str, t.Any], inbound: Inbound) -> TransferRequest | PlatformEvent:
        call_sid = t.cast(str, _field(payload, "CallSid", required=True))
        _check_form(payload)
        caller = _field(payload, "From")
        called = _field(payload, "To")
        if payload.get("DialCallStatus") is not None:
            _field(payload, "DialCallStatus")
            return PlatformEvent(self.name, "dial-status", call_sid, payload)
        session_status = _field(payload, "SessionStatus")
        if session_status is not None:
            handoff = _field(payload, "HandoffData")
            if session_status == "ended" and handoff:
                text, arguments = read_handoff(handoff, self.settings.max_json_values)
                return self._request("handoff", call_sid, caller, called, payload, text, arguments)
            if session_status == "failed":
                return self._request("session-failed", call_sid, caller, called, payload, "", {})
            return PlatformEvent(self.name, f"session-{session_status or 'ended'}", call_sid, payload)
        status = _field(payload, "CallStatus")
        if payload.get("CallbackSource") is not None or status not in LIVE_CALL:
            return PlatformEvent(self.name, "call-status", call_sid, payload)
        return self._request("call", call_sid, caller, called, payload, "", {})

    def _request(
        self,
        event: str,
        call_sid: str,
        caller: str | None,
        called: str | None,
        payload: dict[str, t.Any],
        text: str,
        arguments: dict[str, t.Any],
    ) -> TransferRequest:
        return TransferRequest(
            platform=self.name,
            event=event,
            call_id=call_sid,
            caller=caller,
            called=called,
            raw=payload,
            text=text,
            arguments=arguments,
            region=self.settings.default_region,
        )

    def event_call(self, event: PlatformEvent) -> TransferRequest:
        # The caller's number too, read as parse() reads it: a chain's caller ID may be theirs.
        payload = event.payload
        caller, called = payload.get("From"), payload.get("To")
        return self._request(
            event.type,
            str(event.call_id),
            caller if isinstance(caller, str) and caller else None,
            called if isinstance(called, str) and called else None,
            payload,
            "",
            {},
        )

    def outcome(self, event: PlatformEvent) -> TransferOutcome | None:
        if event.type != "dial-status":
            return None
        status = str(event.payload.get("DialCallStatus"))
        # canceled: the caller hung up while the dial rang, so nothing can follow.
        # The callback comes when the dial is over: whoever it rang is free again.
        return TransferOutcome(
            DIAL_OUTCOMES.get(status, "unknown"), status, True, ended=status == "canceled", leg_over=True
        )

    # Answers ---------------------------------------------------------------------------------------

    def check(self, destination: Destination) -> None:
        if isinstance(destination, AssistantDestination) or not isinstance(
            destination, (NumberDestination, SipDestination)
        ):
            raise self.unsupported(destination.kind, kind=True)
        if destination.transfer_plan is not None:
            self.check_blind_only(destination)
        if isinstance(destination, NumberDestination):
            if destination.caller_id_name is not None:
                raise self.unsupported("caller_id_name")
            return
        if destination.uri.lower().startswith("sips:"):
            raise UnsupportedDestination(
                "Twilio's <Sip> dials sip: URIs only. Write the URI as sip:...;transport=tls for TLS"
                " signalling, or ;secure=true for TLS and SRTP.",
                platform=self.name,
                attribute="uri",
            )
        self.sip_uri(destination)

    def attach_handoff(self, destination: Destination, handoff: Handoff) -> Destination:
        # <Sip> carries headers inside its URI: the hand-off takes what fits Twilio's limits next
        # to the app's own headers, so that it never turns a transfer into a refusal.
        if not isinstance(destination, SipDestination):
            return destination
        own = dict(destination.headers or {})

        def fits(headers: dict[str, str]) -> bool:
            merged = {**headers, **own}
            part = "&".join(f"{name}={urllib.parse.quote(value, safe='')}" for name, value in merged.items())
            full = f"{destination.uri}{'&' if '?' in destination.uri else '?'}{part}"
            return len(part) < MAX_SIP_HEADER_PART and len(full) < MAX_SIP_URI

        return destination.replaced(headers={**handoff.headers(fits), **own})

    def sip_uri(self, destination: SipDestination) -> str:
        """The ``<Sip>`` URI: the destination's, with its headers as URI parameters."""
        uri = destination.uri
        headers = destination.headers or {}
        if not headers:
            return uri
        for name in headers:
            lowered = name.lower()
            if lowered.startswith("x-twilio"):
                raise self._headers_refused(
                    f"Twilio reserves SIP headers starting with X-Twilio; rename {name}."
                )
            if not lowered.startswith("x-") and lowered not in PLAIN_SIP_HEADERS:
                raise self._headers_refused(
                    f"Twilio's <Sip> passes only X- headers and {', '.join(sorted(PLAIN_SIP_HEADERS))};"
                    f" rename {name} to X-{name}."
                )
        part = "&".join(f"{name}={urllib.parse.quote(value, safe='')}" for name, value in headers.items())
        if len(part) >= MAX_SIP_HEADER_PART:
            raise self._headers_refused(
                f"Twilio takes under {MAX_SIP_HEADER_PART} characters of SIP headers; these take"
                f" {len(part)}. Send fewer or shorter headers."
            )
        full = f"{uri}{'&' if '?' in uri else '?'}{part}"
        if len(full) >= MAX_SIP_URI:
            raise self._headers_refused(
                f"Twilio dials SIP URIs under {MAX_SIP_URI} characters; with its headers this one has"
                f" {len(full)}. Send fewer or shorter headers."
            )
        return full

    def _headers_refused(self, sentence: str) -> UnsupportedDestination:
        return UnsupportedDestination(sentence, platform=self.name, attribute="headers")

    def render(self, call: TransferRequest, outcome: Outcome) -> Response:
        if isinstance(outcome, TransferRefused):
            return self.say(outcome.reason)
        if not isinstance(outcome, (NumberDestination, SipDestination)):
            if isinstance(outcome, Destination):
                raise self.unsupported(outcome.kind, kind=True)
            return self.say(self.settings.refusal_message)
        self.check(outcome)
        root = ET.Element("Response")
        if outcome.message:
            self._say(root, outcome.message)
        dial = ET.SubElement(root, "Dial", self._dial_attributes(outcome))
        if isinstance(outcome, NumberDestination):
            noun = ET.SubElement(dial, "Number")
            noun.text = outcome.number
            if outcome.extension:
                noun.set("sendDigits", outcome.extension)
        else:
            ET.SubElement(dial, "Sip").text = self.sip_uri(outcome)
        return self._twiml(root)

    def _dial_attributes(self, destination: NumberDestination | SipDestination) -> dict[str, str]:
        # The outcome comes back to this same webhook, signed for the same URL.
        attributes = {"action": xml_text(self._urls.signed_url()), "method": "POST"}
        caller_id = destination.caller_id or self.caller_id
        if caller_id:
            attributes["callerId"] = caller_id
        if self.dial_timeout is not None:
            attributes["timeout"] = str(self.dial_timeout)
        return attributes

    def say(self, text: str) -> Response:
        """``<Say>`` the sentence, then hang up: the answer to a refusal."""
        root = ET.Element("Response")
        self._say(root, text)
        ET.SubElement(root, "Hangup")
        return self._twiml(root)

    def _say(self, root: ET.Element, text: str) -> None:
        ET.SubElement(root, "Say", self.say_attributes).text = xml_text(text)

    @staticmethod
    def _twiml(root: ET.Element) -> Response:
        body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
        return Response('<?xml version="1.0" encoding="UTF-8"?>' + body, 200, content_type=_CONTENT_TYPE)

    def render_event(self, event: PlatformEvent, reply: dict[str, t.Any] | None) -> Response:
        if reply is None:
            return self._twiml(ET.Element("Response"))
        twiml = reply.get("twiml")
        if set(reply) != {"twiml"} or not isinstance(twiml, str):
            raise TypeError('An on_event handler for Twilio answers {"twiml": "<Response>...</Response>"}.')
        try:
            parsed = ET.fromstring(twiml)
        except ET.ParseError as exc:
            raise ValueError(f"The on_event handler's TwiML is not well-formed XML: {exc}.") from None
        if parsed.tag != "Response":
            raise ValueError("The on_event handler's TwiML must be one <Response> element.")
        return self._twiml(parsed)

    def describe_verification(self) -> str:
        if self.verifier is None:
            return "off"
        where = f"signed for {self.public_url}" if self.public_url else "signed for the request's own URL"
        return f"X-Twilio-Signature, {where}"


__all__ = [
    "DIAL_OUTCOMES",
    "TwilioPlatform",
    "TwilioSignature",
    "compute_signature",
    "read_handoff",
]
