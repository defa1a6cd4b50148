"""VoiceDock: transfer tool calls carried out through the Call Control API.

VoiceDock has no webhook that asks for a destination. A custom function tool named in
``CALLTRANSFER_VOICEDOCK_TOOLS`` lets the assistant ask instead: its ``tool-calls`` webhook runs the
handlers, the destination is sent with ``POST /calls/{id}/control``, and the tool result tells the
assistant whether the transfer started.
"""

from __future__ import annotations

import typing as t

from flask import Response
from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields

from .. import config as cfg
from .. import messages
from ..clients import ApiError
from ..clients import HttpClient
from ..clients import VoiceDockClient
from ..exceptions import ConfigurationError
from ..exceptions import DeliveryFailed
from ..exceptions import InvalidPayload
from ..logs import logger
from ..models import Destination
from ..models import NumberDestination
from ..models import PlatformEvent
from ..models import SipDestination
from ..models import TransferRequest
from ..schemas import FastLoader
from ..security import HmacVerifier
from .base import Inbound
from .base import TransferOutcome
from .base import json_response
from .toolcalls import TOOL_CALLS_EVENT
from .toolcalls import ToolCallPlatform
from .toolcalls import find

if t.TYPE_CHECKING:
    from .base import Services


class _Schema(Schema):
    class Meta:
        unknown = EXCLUDE


class _Number(_Schema):
    number = fields.String(allow_none=True)


class _Call(_Schema):
    id = fields.String(allow_none=True)
    type = fields.String(allow_none=True)


class _Assistant(_Schema):
    id = fields.String(allow_none=True)
    metadata = fields.Dict(allow_none=True)


class _Message(_Schema):
    type = fields.String(required=True)
    call = fields.Nested(_Call, allow_none=True)
    phone_number = fields.Nested(_Number, allow_none=True)
    customer = fields.Nested(_Number, allow_none=True)
    assistant = fields.Nested(_Assistant, allow_none=True)
    tool_call_list = fields.List(fields.Raw(), allow_none=True)


class _Envelope(_Schema):
    message = fields.Nested(_Message, required=True)


_ENVELOPE = FastLoader(_Envelope())


def number_attributes_not_carried(destination: NumberDestination) -> list[str]:
    """What a number destination sets that VoiceDock carries neither through its Call Control
    API nor in its ``transfer_call`` tool: a caller ID, its name, an extension, and a transfer
    plan beyond a blind transfer (named as :meth:`~flask_calltransfer.TransferPlan.beyond_blind` names it)."""
    plan = destination.transfer_plan
    names = ("caller_id", "caller_id_name", "extension")
    found = [name for name in names if getattr(destination, name) is not None]
    return found + list(plan.beyond_blind() if plan is not None else ())


def transfer_tool(directory: t.Mapping[str, Destination]) -> dict[str, t.Any]:
    """VoiceDock's static ``transfer_call`` tool built from a directory; see
    :meth:`~flask_calltransfer.CallTransfer.voicedock_transfer_tool`."""
    destinations = []
    for name, destination in directory.items():
        if not isinstance(destination, NumberDestination):
            logger.info(messages.tool_destination_skipped(name, destination.kind))
            continue
        unsupported = number_attributes_not_carried(destination)
        if unsupported:
            logger.warning(messages.tool_destination_cannot_carry(name, unsupported))
            continue
        entry = {
            "type": "number",
            "number": destination.number,
            "description": destination.description or name,
        }
        if destination.message:
            entry["message"] = destination.message
        destinations.append(entry)
    return {"type": "transfer_call", "destinations": destinations}


def _camel_case(message: t.Mapping[str, t.Any]) -> bool:
    """Whether a tool-calls message has the older (Flireo) pages' camelCase shape."""
    return message.get("tool_call_list") is None and isinstance(message.get("toolCallList"), list)


class VoiceDockPlatform(ToolCallPlatform):
    """VoiceDock (formerly HMS Sovereign) webhooks at ``POST <prefix>/voicedock``.

    ``tool-calls`` for a tool in ``CALLTRANSFER_VOICEDOCK_TOOLS`` run the handlers; the destination
    is delivered through the Call Control API with ``CALLTRANSFER_VOICEDOCK_API_KEY``. Every other
    event goes to ``on_event`` handlers and is otherwise answered with ``{}``.

    Verification: ``X-Webhook-Signature: sha256=<hex>``, an HMAC-SHA256 of
    ``"{X-Webhook-Timestamp}.{raw body}"`` with ``CALLTRANSFER_VOICEDOCK_SECRET``, within
    ``CALLTRANSFER_VOICEDOCK_MAX_AGE`` seconds of now.

    .. versionadded:: 0.1
    """

    name = "voicedock"
    # A status update that says the transfer failed sends the next one through the API.
    failover = "deliver"
    credential_keys = (cfg.VOICEDOCK_SECRET,)
    # VoiceDock waits 10 s for a tool result, and the control request comes after the handlers.
    handler_timeout = 6.0
    # Synchronous tool calls wait 10 s.
    reply_budget = 10.0
    answers_replays = True

    def __init__(self, *, tools: frozenset[str], client: VoiceDockClient | None, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        self.tools = tools
        #: The API client, or ``None`` without ``CALLTRANSFER_VOICEDOCK_API_KEY``.
        self.client = client

    @classmethod
    def build_clients(cls, config: t.Mapping[str, t.Any], http: HttpClient) -> dict[str, object]:
        """``"voicedock"``, the REST and Call Control API client, with
        ``CALLTRANSFER_VOICEDOCK_API_KEY``."""
        api_key = cfg.get_str(config, cfg.VOICEDOCK_API_KEY, optional=True)
        if not api_key:
            return {}
        return {
            "voicedock": VoiceDockClient(
                http, api_url=cfg.get_url(config, cfg.VOICEDOCK_API_URL), api_key=api_key
            )
        }

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any], services: Services) -> VoiceDockPlatform:
        settings = services.settings
        secrets = cfg.get_secrets(config, cfg.VOICEDOCK_SECRET)
        max_age = cfg.get_number(config, cfg.VOICEDOCK_MAX_AGE)
        if settings.verify and not secrets:
            raise ConfigurationError(
                messages.config_missing_credentials(cls.name, cls.credential_keys), key=cfg.VOICEDOCK_SECRET
            )
        tools = cfg.get_names(config, cfg.VOICEDOCK_TOOLS)
        client = t.cast("VoiceDockClient | None", services.clients.get("voicedock"))
        if tools and client is None:
            raise ConfigurationError(
                messages.config_tools_need_api_key(cfg.VOICEDOCK_TOOLS, cfg.VOICEDOCK_API_KEY),
                key=cfg.VOICEDOCK_API_KEY,
            )
        verifier = (
            HmacVerifier(
                secrets,
                signature_header="X-Webhook-Signature",
                timestamp_header="X-Webhook-Timestamp",
                payload_format="{timestamp}.{body}",
                prefix="sha256=",
                max_age=max_age,
            )
            if settings.verify
            else None
        )
        return cls(services=services, verifier=verifier, tools=tools, client=client)

    def parse(self, payload: dict[str, t.Any], inbound: Inbound) -> TransferRequest | PlatformEvent:
        event_header = inbound.headers.get("X-Webhook-Event")
        envelope = payload.get("message")
        if isinstance(envelope, dict) and "type" not in envelope and event_header:
            # The event type travels in a header too; it stands in when the body leaves it out.
            payload = {**payload, "message": {**envelope, "type": event_header}}
        try:
            data: dict[str, t.Any] = _ENVELOPE.load(payload)["message"]
        except ValidationError as exc:
            errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            raise InvalidPayload(messages.payload_invalid("VoiceDock"), errors) from None
        message = payload["message"]
        call = data.get("call") or {}
        listed = data.get("tool_call_list")
        # The older (Flireo) pages send camelCase: toolCallList, phoneNumber, and expect toolCallId.
        camel = _camel_case(message)
        if camel:
            listed = message["toolCallList"]
        tool_calls = find([listed], self.tools) if data["type"] == TOOL_CALLS_EVENT else []
        if data["type"] == TOOL_CALLS_EVENT and listed is None:
            logger.warning(messages.voicedock_no_tool_call_list(call.get("id")))
        if not tool_calls:
            return PlatformEvent(self.name, data["type"], call.get("id"), message)
        if len(tool_calls) > 1:
            logger.warning(
                "A VoiceDock message carries %d transfer tool calls; answering the first.", len(tool_calls)
            )
        customer = (data.get("customer") or {}).get("number")
        ours = data.get("phone_number") or (message.get("phoneNumber") if camel else None) or {}
        our_number = ours.get("number") if isinstance(ours, dict) else None
        outbound = call.get("type") in ("outbound_phone_call", "outboundPhoneCall")
        assistant = data.get("assistant") or {}
        first = tool_calls[0]
        return TransferRequest(
            platform=self.name,
            event=TOOL_CALLS_EVENT,
            call_id=call.get("id"),
            caller=our_number if outbound else customer,
            called=customer if outbound else our_number,
            assistant_id=assistant.get("id"),
            arguments=first.arguments,
            metadata=assistant.get("metadata") or {},
            raw=message,
            region=self.settings.default_region,
            tool_call_id=first.id,
            tool_name=first.name,
        )

    def control_destination(self, destination: Destination) -> str:
        """The Call Control API's ``destination`` string, or UnsupportedDestination."""
        if isinstance(destination, NumberDestination):
            if (
                destination.e164
                and destination.caller_id is None
                and destination.caller_id_name is None
                and destination.extension is None
                and destination.transfer_plan is None
            ):
                # A plain number, as nearly every one is: nothing else to look at.
                return destination.number
            if not destination.e164:
                raise self.unsupported("non-E.164 number")
            found = number_attributes_not_carried(destination)
            if found:
                raise self.unsupported(found[0])
            return destination.number
        if isinstance(destination, SipDestination):
            if destination.headers:
                raise self.unsupported("SIP headers")
            if destination.caller_id is not None:
                raise self.unsupported("caller_id")
            self.check_blind_only(destination)
            return destination.uri
        raise self.unsupported(destination.kind, kind=True)

    def check(self, destination: Destination) -> None:
        self.control_destination(destination)

    def deliver(self, call: TransferRequest, destination: Destination) -> None:
        target = self.control_destination(destination)
        if self.client is None or not call.call_id:
            raise DeliveryFailed(messages.delivery_failed(self.name, repr(call), "no call id or API key"))
        try:
            self.client.transfer(
                call.call_id, target, message=destination.message, deadline=self.deadline(call)
            )
        except ApiError as exc:
            raise DeliveryFailed(
                messages.delivery_failed(self.name, repr(call), str(exc)), cause=exc
            ) from exc

    def tool_result(self, call: TransferRequest, *, error: str | None = None) -> Response:
        result: dict[str, t.Any] = (
            {"status": "transferring"} if error is None else {"status": "failed", "error": error}
        )
        # Answered in the style it was asked in: the older camelCase pages name it toolCallId.
        key = "toolCallId" if _camel_case(call.raw) else "tool_call_id"
        return json_response({"results": [{key: call.tool_call_id, "result": result}]})

    def render_event(self, event: PlatformEvent, reply: dict[str, t.Any] | None) -> Response:
        return json_response(reply if reply is not None else {})

    def event_call(self, event: PlatformEvent) -> TransferRequest:
        # The caller's number too: a chain's caller ID may be the caller's own.
        payload = event.payload

        def number(field: str) -> str | None:
            holder = payload.get(field)
            found = holder.get("number") if isinstance(holder, dict) else None
            return found if isinstance(found, str) else None

        call = payload.get("call")
        outbound = isinstance(call, dict) and call.get("type") in ("outbound_phone_call", "outboundPhoneCall")
        customer, ours = number("customer"), number("phone_number")
        return TransferRequest(
            platform=self.name,
            event=event.type,
            call_id=event.call_id,
            caller=ours if outbound else customer,
            called=customer if outbound else ours,
            raw=payload,
            region=self.settings.default_region,
        )

    def outcome(self, event: PlatformEvent) -> TransferOutcome | None:
        # The SDK's StatusUpdatePayload and the status-update page put the status in
        # message.call.status; earlier pages showed it as message.status. Both are read.
        call = event.payload.get("call")
        status = event.payload.get("status")
        if not isinstance(status, str) and isinstance(call, dict):
            status = call.get("status")
        if event.type == "status-update" and status == "transferred":
            # In the SDK's CallStatus of earlier versions only (docs: in-progress, ended, ended-with-error).
            return TransferOutcome("connected", status, True)
        if event.type == "status-update" and status in ("failed", "rejected", "ended-with-error"):
            # failed and rejected (the SDK's CallStatus) leave the call with the assistant, which
            # can still transfer it elsewhere; ended-with-error ends it.
            error = event.payload.get("error")
            detail = error if isinstance(error, str) and error else status
            return TransferOutcome("failed", detail, False, status == "ended-with-error")
        if event.type == "status-update" and status == "ended":
            return TransferOutcome("unknown", status, False, True)
        if event.type == "end-of-call-report":
            reason = event.payload.get("end_reason")
            reason = reason if isinstance(reason, str) else "ended"
            outcome = "caller-hung-up" if reason == "user_hangup" else "unknown"
            return TransferOutcome(outcome, reason, False, True)
        return None

    def render_failure(self) -> Response:
        return json_response({"error": self.settings.refusal_message})

    def describe_verification(self) -> str:
        return "off" if self.verifier is None else "HMAC signature with timestamp"
