"""sipgate AI Flow: every call event posted to one URL, answered with one action or ``204``.

Handlers run on ``session_start``, ``user_speak`` and ``user_input_timeout``. A number destination
becomes a ``transfer`` action; a refusal becomes a ``speak`` action. A reply carries one action, so
a destination with a ``message`` is announced first (``speak``) and the transfer is kept in the
store until the announcement ends (``assistant_speech_ended``), whichever worker receives it.
"""

from __future__ import annotations

import json
import typing as t

from flask import Response
from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate

from .. import config as cfg
from .. import messages
from ..exceptions import ConfigurationError
from ..exceptions import DeliveryFailed
from ..exceptions import InvalidPayload
from ..exceptions import StoreUnavailable
from ..exceptions import TransferRefused
from ..exceptions import UnsupportedDestination
from ..logs import logger
from ..models import Conversation
from ..models import Destination
from ..models import NumberDestination
from ..models import PlatformEvent
from ..models import TransferRequest
from ..schemas import FastDumper
from ..schemas import FastLoader
from ..security import SharedSecretVerifier
from ..store.base import bookkeeping
from .base import Inbound
from .base import Outcome
from .base import Platform
from .base import TransferOutcome
from .base import json_response

if t.TYPE_CHECKING:
    from .base import Services


#: Events whose reply may be a transfer: the handlers run on these.
HANDLER_EVENTS: t.Final[frozenset[str]] = frozenset({"session_start", "user_speak", "user_input_timeout"})
#: Every event AI Flow documents for HTTP webhooks.
KNOWN_EVENTS: t.Final[frozenset[str]] = HANDLER_EVENTS | {
    "assistant_speak",
    "assistant_speech_ended",
    "session_end",
    "user_barge_in",
}
#: Events at which an announced transfer is handed over: the announcement ended, or the caller
#: spoke over it (then no ``assistant_speech_ended`` may follow).
DELIVERY_EVENTS: t.Final[frozenset[str]] = frozenset(
    {"assistant_speech_ended", "user_speak", "user_input_timeout"}
)


class _Schema(Schema):
    class Meta:
        unknown = EXCLUDE


class _Session(_Schema):
    # Every action echoes the id as session_id, which AI Flow requires to be non-empty.
    id = fields.String(required=True, validate=validate.Length(min=1))
    account_id = fields.String(allow_none=True)
    phone_number = fields.String(allow_none=True)
    direction = fields.String(allow_none=True)
    from_phone_number = fields.String(allow_none=True)
    to_phone_number = fields.String(allow_none=True)


class _LooseSession(_Session):
    id = fields.String(allow_none=True, validate=validate.Length(min=1))


class _KnownEvent(_Schema):
    type = fields.String(required=True)
    session = fields.Nested(_Session, required=True)
    text = fields.String(allow_none=True)
    barged_in = fields.Boolean(allow_none=True)


class _UnknownEvent(_Schema):
    type = fields.String(required=True)
    session = fields.Nested(_LooseSession, allow_none=True)


class _TransferAction(Schema):
    type = fields.Constant("transfer")
    session_id = fields.String()
    target_phone_number = fields.String()
    caller_id_name = fields.String()
    caller_id_number = fields.String()


class _SpeakAction(Schema):
    type = fields.Constant("speak")
    session_id = fields.String()
    text = fields.String()


_KNOWN = FastLoader(_KnownEvent())
_UNKNOWN = FastLoader(_UnknownEvent())
_TRANSFER = FastDumper(_TransferAction())
_SPEAK = FastDumper(_SpeakAction())


class SipgateConversation(Conversation):
    """AI Flow sends the latest utterance only, no history."""

    def __init__(self, text: str | None) -> None:
        self._text = text or ""

    def text(self) -> str:
        return self._text

    def transcript(self) -> str:
        return self._text

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self._text}] if self._text else []


def no_content() -> Response:
    """AI Flow's "no action" answer: ``204`` with an empty body."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def _is_e164(number: str | None) -> bool:
    return number is not None and number.startswith("+") and number[1:].isdigit()


#: Stands for the session's caller in a transfer kept for after the announcement: the caller's
#: number is put back from the event that hands the transfer over, so the store never holds it.
_CALLER = "\u0000caller"
_CALLER_IN_JSON = json.dumps(_CALLER)


def _session(item: TransferRequest | PlatformEvent) -> dict[str, t.Any]:
    session = (item.raw if isinstance(item, TransferRequest) else item.payload).get("session")
    return session if isinstance(session, dict) else {}


def _session_caller(item: TransferRequest | PlatformEvent) -> str | None:
    number = item.caller if isinstance(item, TransferRequest) else _session(item).get("from_phone_number")
    return number if isinstance(number, str) and _is_e164(number) else None


def _replaced(action: dict[str, t.Any], old: str, new: str) -> dict[str, t.Any]:
    return {
        name: value.replace(old, new) if isinstance(value, str) else value for name, value in action.items()
    }


class SipgatePlatform(Platform):
    """sipgate AI Flow events at ``POST <prefix>/sipgate``.

    Replies are one action object or ``204``. Verification: ``CALLTRANSFER_SIPGATE_TOKEN`` in the
    ``X-API-TOKEN`` header (or the one named by ``CALLTRANSFER_SIPGATE_TOKEN_HEADER``).

    .. versionadded:: 0.1
    """

    name = "sipgate"
    credential_keys = (cfg.SIPGATE_TOKEN,)
    # sipgate asks for answers in under a second.
    handler_timeout = 0.8
    reply_budget = 1.0

    def __init__(
        self,
        *,
        caller_id_name: str | None = None,
        announce: bool = True,
        pending_ttl: float = 120,
        **kwargs: t.Any,
    ) -> None:
        super().__init__(**kwargs)
        self.caller_id_name = caller_id_name
        self.announce = announce
        self.pending_ttl = pending_ttl

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any], services: Services) -> SipgatePlatform:
        settings = services.settings
        tokens = cfg.get_secrets(config, cfg.SIPGATE_TOKEN)
        header = t.cast(str, cfg.get_str(config, cfg.SIPGATE_TOKEN_HEADER))
        if settings.verify and not tokens:
            raise ConfigurationError(
                messages.config_missing_credentials(cls.name, cls.credential_keys), key=cfg.SIPGATE_TOKEN
            )
        verifier = SharedSecretVerifier(tokens, header=header) if settings.verify else None
        return cls(
            services=services,
            verifier=verifier,
            caller_id_name=cfg.get_str(config, cfg.SIPGATE_CALLER_ID_NAME, optional=True),
            announce=cfg.get_bool(config, cfg.SIPGATE_ANNOUNCE),
            pending_ttl=t.cast(float, cfg.get_number(config, cfg.SIPGATE_PENDING_TTL)),
        )

    def parse(self, payload: dict[str, t.Any], inbound: Inbound) -> TransferRequest | PlatformEvent:
        event = payload.get("type")
        # A type that is not a string (a list, an object) is not hashable: the unknown schema
        # names it as the bad field.
        schema = _KNOWN if isinstance(event, str) and event in KNOWN_EVENTS else _UNKNOWN
        try:
            data = schema.load(payload)
        except ValidationError as exc:
            errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            raise InvalidPayload(messages.payload_invalid("sipgate"), errors) from None
        session = data.get("session") or {}
        if data["type"] not in HANDLER_EVENTS:
            return PlatformEvent(self.name, data["type"], session.get("id"), payload)
        return TransferRequest(
            platform=self.name,
            event=data["type"],
            call_id=session["id"],
            caller=session.get("from_phone_number"),
            called=session.get("to_phone_number"),
            raw=payload,
            conversation=SipgateConversation(data.get("text")),
            region=self.settings.default_region,
        )

    # Replies ---------------------------------------------------------------------------------------

    def _pending_key(self, session_id: str) -> str:
        return f"sipgate:pending:{session_id}"

    def owed(self, item: TransferRequest | PlatformEvent) -> Response | None:
        call_id = item.call_id
        event = item.event if isinstance(item, TransferRequest) else item.type
        if call_id is None:
            return None
        if event == "session_end":
            with bookkeeping("clearing a sipgate session's pending transfer"):
                self.store.delete(self._pending_key(call_id))
            return None
        if event in DELIVERY_EVENTS:
            key = self._pending_key(call_id)
            store = self.store
            try:
                # A read first: most utterances owe nothing, and a pop is a write transaction.
                with store.trying():
                    action = store.pop(key) if store.get(key) is not None else None
            except StoreUnavailable as exc:
                logger.warning(messages.pending_not_read(call_id, str(exc)))
                return None
            if action is not None:
                logger.info("Handing over the announced transfer of sipgate session %s.", call_id)
                return self._handed_over(action, item)
        return None

    def _handed_over(self, kept: str, item: TransferRequest | PlatformEvent) -> Response:
        if _CALLER_IN_JSON not in kept:
            return Response(kept, mimetype="application/json")
        ours = _session(item).get("phone_number")
        # The event lost its caller (it never does in AI Flow): our own number still transfers.
        number = _session_caller(item) or (ours if isinstance(ours, str) else "")
        return json_response(_replaced(json.loads(kept), _CALLER, number))

    def check(self, destination: Destination) -> None:
        if not isinstance(destination, NumberDestination):
            raise self.unsupported(destination.kind, kind=True)
        if destination.extension is not None:
            raise self.unsupported("extension")
        if destination.transfer_plan is not None:
            self.check_blind_only(destination)
        if destination.caller_id is not None and not _is_e164(destination.caller_id):
            raise self.unsupported("caller_id template")

    def transfer_action(self, call: TransferRequest, destination: NumberDestination) -> dict[str, t.Any]:
        """The ``transfer`` action for ``destination``, with the caller ID filled in."""
        self.check(destination)
        session = call.raw.get("session") or {}
        our_number = session.get("phone_number")
        number = (
            destination.caller_id
            or (call.caller if _is_e164(call.caller) else None)
            or (our_number if isinstance(our_number, str) and our_number else None)
        )
        if number is None:
            raise UnsupportedDestination(
                messages.sipgate_caller_id_missing(), platform=self.name, attribute="caller_id"
            )
        name = destination.caller_id_name or self.caller_id_name or number
        return _TRANSFER.dump(
            {
                "session_id": call.call_id,
                "target_phone_number": destination.number,
                "caller_id_name": name,
                "caller_id_number": number,
            }
        )

    def speak(self, call: TransferRequest, text: str) -> Response:
        return json_response(_SPEAK.dump({"session_id": call.call_id, "text": text}))

    def render(self, call: TransferRequest, outcome: Outcome) -> Response:
        if isinstance(outcome, TransferRefused):
            return self.speak(call, outcome.reason)
        if isinstance(outcome, DeliveryFailed):
            return self.speak(call, self.settings.refusal_message)
        # transfer_action checks first what sipgate can carry (a number), so no typing.cast here.
        action = self.transfer_action(call, outcome)  # type: ignore[arg-type]
        if self.announce and outcome.message:
            caller = _session_caller(call)
            # Wherever the caller's number appears (caller ID, its name, a transfer back to the
            # caller), the sentinel stands in for it.
            kept = _replaced(action, caller, _CALLER) if caller else action
            encoded = json.dumps(kept, separators=(",", ":"), ensure_ascii=False)
            try:
                self.store.set(self._pending_key(t.cast(str, call.call_id)), encoded, ttl=self.pending_ttl)
            except StoreUnavailable as exc:
                # The hand-over after the announcement needs the store: transfer now instead.
                logger.warning(messages.pending_not_kept(t.cast(str, call.call_id), str(exc)))
                return json_response(action)
            return self.speak(call, outcome.message)
        return json_response(action)

    def render_event(self, event: PlatformEvent, reply: dict[str, t.Any] | None) -> Response:
        # session_end accepts no action: whatever a handler returned, the answer is 204.
        if reply is None or event.type == "session_end":
            return no_content()
        return json_response(reply)

    def outcome(self, event: PlatformEvent) -> TransferOutcome | None:
        # AI Flow reports nothing about a transfer; the session simply ends once the call has left.
        if event.type == "session_end":
            return TransferOutcome("unknown", "session_end", False, True)
        return None

    def render_failure(self) -> Response:
        return no_content()

    def no_answer(self, call: TransferRequest) -> Response | None:
        return no_content()

    def describe_verification(self) -> str:
        return "off" if self.verifier is None else "token header"
