"""jambonz webhooks for Flask-CallTransfer: every hook posted to ``POST <prefix>/jambonz``, answered
with a JSON array of verbs.

The application's call_hook and a gather verb's actionHook ask for a destination; a number or SIP
destination becomes a ``dial`` verb (or ``sip:refer``, with ``TransferPlan(sip_verb="refer")``),
announced by a ``say`` verb when it has a message. The ``dial`` and ``sip:refer`` verbs report back
to the same URL, which is how transfer outcomes are read. Requests are verified with the account's
webhook secret (the ``Jambonz-Signature`` header).

Written against the public platform contract (:mod:`flask_calltransfer.platforms.base`) only.
"""

from __future__ import annotations

import math
import typing as t
import urllib.parse

from flask import Response
from flask import has_request_context
from flask import request

from flask_calltransfer import ConfigurationError
from flask_calltransfer import Conversation
from flask_calltransfer import DeliveryFailed
from flask_calltransfer import InvalidPayload
from flask_calltransfer import NumberDestination
from flask_calltransfer import PlatformEvent
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRefused
from flask_calltransfer import TransferRequest
from flask_calltransfer import UnsupportedDestination
from flask_calltransfer.logs import logger
from flask_calltransfer.phone import mask
from flask_calltransfer.platforms.base import Inbound
from flask_calltransfer.platforms.base import Outcome
from flask_calltransfer.platforms.base import Platform
from flask_calltransfer.platforms.base import TransferOutcome
from flask_calltransfer.platforms.base import json_response

from . import _messages as msg
from ._signature import HEADER
from ._signature import JambonzSignatureVerifier
from ._signature import parse_header

if t.TYPE_CHECKING:
    from flask_calltransfer import Destination
    from flask_calltransfer.platforms.base import Services

__version__ = "0.1.0"

SECRET: t.Final = "CALLTRANSFER_JAMBONZ_SECRET"
MAX_AGE: t.Final = "CALLTRANSFER_JAMBONZ_MAX_AGE"
CALLER_ID: t.Final = "CALLTRANSFER_JAMBONZ_CALLER_ID"
CALLER_NAME: t.Final = "CALLTRANSFER_JAMBONZ_CALLER_NAME"
DIAL_TIMEOUT: t.Final = "CALLTRANSFER_JAMBONZ_DIAL_TIMEOUT"

#: The ``reason`` values of a gather verb's actionHook (jambonz-feature-server
#: ``lib/tasks/gather.js`` ``_resolve``; the Python SDK's ``callbacks/gather.schema.json``).
GATHER_REASONS: t.Final[frozenset[str]] = frozenset(
    {"speechDetected", "dtmfDetected", "timeout", "error", "stt-low-confidence"}
)

#: The dial actionHook's ``dial_call_status`` in the shared outcome vocabulary. ``completed`` is
#: set when the bridge happens and stays, however long the call then lasts (``lib/tasks/dial.js``).
DIAL_OUTCOMES: t.Final[t.Mapping[str, str]] = {
    "completed": "connected",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
}

# The plan fields jambonz carries: the SIP verb picks dial or sip:refer, and a dial's ring
# timeout is the dial verb's own. Everything else TransferPlan.beyond_blind() names is Vapi's.
_CARRIED_PLAN_FIELDS = frozenset({"transfer_plan.sip_verb", "transfer_plan.dial_timeout"})


class JambonzConversation(Conversation):
    """jambonz sends the latest utterance (a gather's transcript or digits) only, no history."""

    def __init__(self, text: str) -> None:
        self._text = text

    def text(self) -> str:
        return self._text

    def transcript(self) -> str:
        return self._text

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self._text}] if self._text else []


class _Fields:
    """Reads a payload's fields by type, collecting what is wrong with them, as marshmallow would
    report it: a field of the wrong type is a 400 naming it, never a TypeError."""

    def __init__(self, payload: t.Mapping[str, t.Any]) -> None:
        self.payload = payload
        self.errors: dict[str, list[str]] = {}

    def wrong(self, name: str, problem: str) -> None:
        self.errors.setdefault(name, []).append(problem)

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.payload.get(name)
        if value is None:
            if required:
                self.wrong(name, "Missing data for required field.")
            return None
        if not isinstance(value, str):
            self.wrong(name, "Not a valid string.")
            return None
        return value

    def code(self, name: str) -> int | None:
        # SIP status codes: integers in the code and the SDK's schemas; the docs show "180", so a
        # string of digits is read too.
        value = self.payload.get(name)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) == 3:
            return int(value)
        self.wrong(name, "Not a valid SIP status code.")
        return None

    def mapping(self, name: str) -> dict[str, t.Any] | None:
        value = self.payload.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.wrong(name, "Not a valid object.")
            return None
        return value

    def check(self) -> None:
        if self.errors:
            raise InvalidPayload(msg.payload_invalid(), self.errors)


def _gather_text(fields: _Fields) -> str:
    """The transcript of a gather's best alternative, else the digits, else ``""``."""
    speech = fields.mapping("speech")
    if speech is not None:
        alternatives = speech.get("alternatives")
        if alternatives is not None and not isinstance(alternatives, list):
            fields.wrong("speech", "alternatives: Not a valid list.")
        elif alternatives:
            best = alternatives[0]
            transcript = best.get("transcript") if isinstance(best, dict) else None
            if not isinstance(best, dict) or not isinstance(transcript, str | None):
                fields.wrong("speech", "alternatives.0.transcript: Not a valid string.")
            elif transcript:
                return transcript.strip()
    return fields.text("digits") or ""


def _sip_outcome(code: int) -> str:
    if 200 <= code < 300:
        return "connected"
    if code in (486, 600):
        return "busy"
    # 480 Temporarily Unavailable, 408 Request Timeout, 487 Request Terminated (the ring timeout
    # CANCELs the INVITE).
    if code in (480, 408, 487):
        return "no-answer"
    return "failed"


def _is_template(caller_id: str) -> bool:
    return "{{" in caller_id


def _say(text: str) -> dict[str, t.Any]:
    return {"verb": "say", "text": text}


def _config_text(config: t.Mapping[str, t.Any], key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\r" in value or "\n" in value:
        raise ConfigurationError(msg.text_invalid(key, value), key=key)
    return value.strip()


def _config_seconds(config: t.Mapping[str, t.Any], key: str, *, optional: bool) -> float | None:
    value = config.get(key)
    if value is None and optional:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(t.cast(float, value)) or t.cast(float, value) <= 0:
        raise ConfigurationError(msg.seconds_invalid(key, value, optional=optional), key=key)
    return t.cast(float, value)


def _config_secrets(config: t.Mapping[str, t.Any]) -> list[str]:
    value = config.get(SECRET)
    if value is None or value == "":
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) and v for v in values):
        raise ConfigurationError(msg.secret_invalid(SECRET, value), key=SECRET)
    return list(values)


class JambonzPlatform(Platform):
    """jambonz webhooks at ``POST <prefix>/jambonz``.

    Verification: HMAC-SHA256 in the ``Jambonz-Signature`` header under
    ``CALLTRANSFER_JAMBONZ_SECRET`` (a string, or a list while rotating), with a timestamp inside
    ``CALLTRANSFER_JAMBONZ_MAX_AGE`` seconds either way.

    .. versionadded:: 0.1
    """

    # dial's and sip:refer's action hooks say how they ended, and their answer is the call's next
    # verbs: the next destination of a chain.
    failover = "reply"
    name = "jambonz"
    # dial and sip:refer take SIP headers for any target, and a refer's URI may carry UUI.
    handoff_channels = frozenset({"sip-headers", "number-headers", "refer-to"})
    credential_keys = (SECRET,)
    config_defaults: t.ClassVar[t.Mapping[str, t.Any]] = {
        SECRET: None,
        MAX_AGE: 300,
        CALLER_ID: None,
        CALLER_NAME: None,
        DIAL_TIMEOUT: None,
    }
    # jambonz waits JAMBONES_HTTP_TIMEOUT for the response headers, 10 s by default
    # (jambonz-feature-server lib/config.js); the handlers stop 2 s before, leaving time to render
    # and send the answer.
    reply_budget = 10.0
    handler_timeout = 8.0
    # Signed over the body with a timestamp, like VoiceDock: equal bytes inside the window are the
    # same hook again (jambonz's own retry carries the first attempt's header) or a captured one
    # replayed, and both get the first answer without routing again. Two different hooks of one
    # call can only have equal bodies when they carry the same thing (the same digits twice); they
    # get the same answer too, which docs/jambonz.rst says.
    answers_replays = True

    def __init__(
        self,
        *,
        caller_id: str | None = None,
        caller_name: str | None = None,
        dial_timeout: float | None = None,
        **kwargs: t.Any,
    ) -> None:
        super().__init__(**kwargs)
        #: The dial verb's ``callerId`` when the destination sets none.
        self.caller_id = caller_id
        #: The dial verb's ``callerName`` when the destination sets none.
        self.caller_name = caller_name
        #: The dial verb's ring ``timeout``, or ``None`` for jambonz's 60 s.
        self.dial_timeout = dial_timeout

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any], services: Services) -> JambonzPlatform:
        secrets = _config_secrets(config)
        max_age = t.cast(float, _config_seconds(config, MAX_AGE, optional=False))
        caller_id = _config_text(config, CALLER_ID)
        caller_name = _config_text(config, CALLER_NAME)
        if caller_name is not None and ('"' in caller_name or "\\" in caller_name):
            raise ConfigurationError(msg.caller_name_quoted(CALLER_NAME), key=CALLER_NAME)
        dial_timeout = _config_seconds(config, DIAL_TIMEOUT, optional=True)
        verify = services.settings.verify
        if verify and not secrets:
            raise ConfigurationError(msg.secret_missing(SECRET), key=SECRET)
        return cls(
            services=services,
            verifier=JambonzSignatureVerifier(secrets, max_age=max_age) if verify else None,
            caller_id=caller_id,
            caller_name=caller_name,
            dial_timeout=dial_timeout,
        )

    # Hooks in ---------------------------------------------------------------------------------------

    def parse(self, payload: dict[str, t.Any], inbound: Inbound) -> TransferRequest | PlatformEvent:
        # No header says which hook this is (the feature server's hook types never reach the
        # wire over HTTP): the fields do. sip:refer's eventHook body is {event, call_status}
        # alone, without call fields, and its call_status is a number.
        if payload.get("event") == "transfer-status":
            sid = payload.get("call_sid")
            return PlatformEvent(
                self.name, "transfer-status", sid if isinstance(sid, str) and sid else None, payload
            )
        fields = _Fields(payload)
        call_sid = fields.text("call_sid", required=True)
        if not call_sid:
            raise InvalidPayload(msg.no_call_sid(), {"call_sid": ["Missing data for required field."]})
        kind = self._kind(fields)
        if kind not in ("call", "gather"):
            fields.check()
            logger.debug("jambonz %s hook for call %s.", kind, call_sid)
            return PlatformEvent(self.name, kind, call_sid, payload)
        caller = fields.text("from")
        called = fields.text("to")
        application = fields.text("application_sid")
        # customerData is the call's own data (the tag verb, or tag on REST-created calls); the
        # application's env_vars are configuration, and stay in call.raw.
        metadata = fields.mapping("customerData")
        text = _gather_text(fields) if kind == "gather" else ""
        fields.check()
        logger.debug("jambonz %s hook for call %s from %s.", kind, call_sid, mask(caller))
        return TransferRequest(
            platform=self.name,
            event=kind,
            call_id=call_sid,
            caller=caller,
            called=called,
            assistant_id=application,
            metadata=dict(metadata) if metadata is not None else None,
            raw=payload,
            conversation=JambonzConversation(text),
            region=self.settings.default_region,
        )

    def event_call(self, event: PlatformEvent) -> TransferRequest:
        # The caller's number too: a chain's caller ID may be the caller's own.
        caller, called = event.payload.get("from"), event.payload.get("to")
        return TransferRequest(
            platform=self.name,
            event=event.type,
            call_id=event.call_id,
            caller=caller if isinstance(caller, str) else None,
            called=called if isinstance(called, str) else None,
            raw=event.payload,
            region=self.settings.default_region,
        )

    def _kind(self, fields: _Fields) -> str:
        payload = fields.payload
        if "dial_call_status" in payload:
            fields.text("dial_call_status", required=True)
            return "dial-status"
        if "refer_status" in payload:
            if fields.code("refer_status") is None and "refer_status" not in fields.errors:
                fields.wrong("refer_status", "Missing data for required field.")
            fields.code("final_referred_call_status")
            return "refer-status"
        reason = fields.text("reason")
        if reason in GATHER_REASONS:
            return "gather"
        if "completion_reason" in payload:
            return "llm"
        if "speech" in payload and reason is None:
            # A gather's partialResultHook: interim transcripts, not an answer to route on.
            return "partial-result"
        if "sip" in payload:
            # Only the call_hook carries the INVITE (POST call_hooks; lib/middleware.js).
            if fields.mapping("sip") is not None or "sip" in fields.errors:
                return "call"
        fields.text("call_status", required=True)
        return "call-status"

    def outcome(self, event: PlatformEvent) -> TransferOutcome | None:
        payload = event.payload
        if event.type == "dial-status":
            status = payload.get("dial_call_status")
            if not isinstance(status, str):
                return None
            # The hook comes when the dial is over: whoever it rang is free again. A REFER's
            # final status comes when the far end answered, and the call goes on there.
            return TransferOutcome(DIAL_OUTCOMES.get(status, "unknown"), status, True, leg_over=True)
        if event.type == "refer-status":
            fields = _Fields(payload)
            final = fields.code("final_referred_call_status")
            refer = fields.code("refer_status")
            if final is not None:
                return TransferOutcome(_sip_outcome(final), str(final), True)
            if refer is None:
                return None
            if 200 <= refer < 300:
                # Accepted (202), but no final NOTIFY came within jambonz's 15 s: the far end took
                # the call over and jambonz will not hear how it went. Not definite, so it counts
                # only for a call this app transferred, as a transfer that ended without word.
                return TransferOutcome("unknown", str(refer), False)
            # The REFER itself was refused (403, 405, 501, ...): nobody was rung, so busy and
            # no-answer, which describe the party rung, do not apply.
            return TransferOutcome("failed", str(refer), True)
        return None

    # Verbs out -------------------------------------------------------------------------------------

    def _plan_verb(self, destination: NumberDestination | SipDestination) -> str:
        plan = destination.transfer_plan
        if plan is None:
            return "dial"
        if plan.sip_verb == "bye":
            raise UnsupportedDestination(
                msg.sip_verb_bye(), platform=self.name, attribute="transfer_plan.sip_verb"
            )
        # The same check as Platform.check_blind_only, less the two fields jambonz does carry.
        extras = [extra for extra in plan.beyond_blind() if extra not in _CARRIED_PLAN_FIELDS]
        if extras:
            raise self.unsupported(extras[0])
        return "refer" if plan.sip_verb == "refer" else "dial"

    def check(self, destination: Destination) -> None:
        if isinstance(destination, NumberDestination):
            if destination.extension is not None:
                # dial has no digits to send after answer; a confirmHook would have to serve them.
                raise self.unsupported("extension")
        elif not isinstance(destination, SipDestination):
            raise self.unsupported(destination.kind, kind=True)
        if destination.caller_id is not None and _is_template(destination.caller_id):
            raise self.unsupported("caller_id template")
        name = getattr(destination, "caller_id_name", None)
        if name is not None and ('"' in name or "\\" in name):
            # The feature server puts callerName inside the From header's quoted display name
            # unescaped: a quote would end it there and let the rest of the name into the header.
            raise UnsupportedDestination(
                msg.caller_name_quoted("caller_id_name"), platform=self.name, attribute="caller_id_name"
            )
        if self._plan_verb(destination) == "refer":
            # A REFER hands the caller's own leg over: the caller ID is the caller's, not ours to set.
            if destination.caller_id is not None:
                raise self.unsupported("caller_id")
            if isinstance(destination, NumberDestination) and destination.caller_id_name is not None:
                raise self.unsupported("caller_id_name")

    def verbs(self, call: TransferRequest, destination: Destination) -> list[dict[str, t.Any]]:
        """The verbs that transfer ``call`` to ``destination``, or
        :class:`~flask_calltransfer.UnsupportedDestination`."""
        self.check(destination)
        target = t.cast(NumberDestination | SipDestination, destination)
        verbs: list[dict[str, t.Any]] = []
        if target.message:
            verbs.append(_say(target.message))
        # Where the verb's outcome comes back: this same webhook. request.url is what the app
        # sees; behind a proxy, werkzeug's ProxyFix makes it the URL jambonz called.
        hook = request.url if has_request_context() else None
        headers = dict(target.headers) if isinstance(target, SipDestination) and target.headers else None
        handoff = target.handoff
        if handoff is not None and isinstance(target, NumberDestination) and handoff.id is not None:
            # dial's and sip:refer's headers go on the INVITE or REFER whatever the target.
            headers = handoff.headers()
        if self._plan_verb(target) == "refer":
            if not verbs and call.event == "call":
                # sip:refer needs an answered call (StableCall); on the call_hook it is not answered
                # yet, and a refer there is skipped. say answers it when there is a message.
                verbs.append({"verb": "answer"})
            refer_to = target.uri if isinstance(target, SipDestination) else target.number
            if handoff is not None and handoff.refer_to and handoff.id and refer_to.startswith("sip"):
                # Some contact-centre PBXs read User-to-User only inside the Refer-To URI.
                mark = "&" if "?" in refer_to else "?"
                refer_to += f"{mark}User-to-User={urllib.parse.quote(handoff.uui(), safe='')}"
            refer: dict[str, t.Any] = {
                "verb": "sip:refer",
                "referTo": refer_to,
                "headers": headers,
                "actionHook": hook,
            }
            verbs.append({key: value for key, value in refer.items() if value is not None})
            return verbs
        if isinstance(target, SipDestination):
            dial_target: dict[str, t.Any] = {"type": "sip", "sipUri": target.uri}
            caller_name = self.caller_name
        else:
            dial_target = {"type": "phone", "number": target.number}
            caller_name = target.caller_id_name or self.caller_name
        plan = target.transfer_plan
        timeout = (
            plan.dial_timeout if plan is not None and plan.dial_timeout is not None else self.dial_timeout
        )
        dial: dict[str, t.Any] = {
            "verb": "dial",
            "target": [dial_target],
            "callerId": target.caller_id or self.caller_id,
            "callerName": caller_name,
            "timeout": int(timeout) if timeout is not None and timeout == int(timeout) else timeout,
            "headers": headers,
            "actionHook": hook,
        }
        verbs.append({key: value for key, value in dial.items() if value is not None})
        return verbs

    def render(self, call: TransferRequest, outcome: Outcome) -> Response:
        if isinstance(outcome, TransferRefused):
            reason = outcome.reason if outcome.reason and outcome.reason.strip() else None
            # say requires text; an empty reason would make jambonz reject the whole answer.
            return json_response([_say(reason or self.settings.refusal_message)])
        if isinstance(outcome, DeliveryFailed):
            # Nothing is delivered through an API here; the message would be for developers anyway.
            return json_response([_say(self.settings.refusal_message)])
        # No hangup after say: when an answer's verbs run out jambonz ends the call itself, and a
        # hangup on a call not yet answered is skipped with an error (StableCall precondition).
        return json_response(self.verbs(call, outcome))

    def render_event(self, event: PlatformEvent, reply: dict[str, t.Any] | None) -> Response:
        # [] on an actionHook: the app goes on with its next verb; status hooks' answers are ignored.
        if reply is None:
            return json_response([])
        if isinstance(reply.get("verb"), str):
            return json_response([reply])
        verbs = reply.get("verbs")
        if (
            set(reply) == {"verbs"}
            and isinstance(verbs, list)
            and all(isinstance(verb, dict) and isinstance(verb.get("verb"), str) for verb in verbs)
        ):
            return json_response(verbs)
        raise ValueError(msg.event_reply_invalid(reply))

    def describe_verification(self) -> str:
        return "off" if self.verifier is None else f"{HEADER} HMAC with timestamp"


__all__ = [
    "DIAL_OUTCOMES",
    "GATHER_REASONS",
    "HEADER",
    "JambonzConversation",
    "JambonzPlatform",
    "JambonzSignatureVerifier",
    "parse_header",
]
