"""Vapi: ``transfer-destination-request`` server messages answered with a destination or an error.

Vapi posts every server message to one URL, wrapped as ``{"message": {...}}``; its dynamic-transfer
guide shows the same object unwrapped, so both envelopes are accepted. Replies are the bare response
object in camelCase: ``{"destination": {...}}`` or ``{"error": "..."}``.
"""

from __future__ import annotations

import dataclasses
import functools
import typing as t

from flask import Response
from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import post_dump

from .. import config as cfg
from .. import messages
from ..clients import ApiError
from ..clients import HttpClient
from ..clients import VapiApiClient
from ..clients import VapiControlClient
from ..clients.allowlist import HostAllowlist
from ..exceptions import ConfigurationError
from ..exceptions import DeliveryFailed
from ..exceptions import InvalidPayload
from ..exceptions import TransferRefused
from ..handoff import Handoff
from ..models import PLAN_FIELD_MODES
from ..models import AssistantDestination
from ..models import Conversation
from ..models import Destination
from ..models import DestinationChain
from ..models import FallbackPlan
from ..models import NumberDestination
from ..models import PlatformEvent
from ..models import SipDestination
from ..models import SummaryPlan
from ..models import TransferPlan
from ..models import TransferRequest
from ..schemas import FastLoader
from ..security import ALGORITHMS
from ..security import ENCODINGS
from ..security import PAYLOAD_PLACEHOLDERS
from ..security import AnyOf
from ..security import HmacVerifier
from ..security import SharedSecretVerifier
from ..security import Verifier
from ..security import placeholders
from .base import Inbound
from .base import Outcome
from .base import TransferOutcome
from .base import compact_json
from .base import json_response
from .toolcalls import TOOL_CALLS_EVENT
from .toolcalls import ToolCallPlatform
from .toolcalls import find

if t.TYPE_CHECKING:
    from .base import Services

TRANSFER_EVENT = "transfer-destination-request"

#: Vapi's ``endedReason`` values that tell how a transfer went.
_ENDED_REASONS = {
    "assistant-forwarded-call": "connected",
    "call.ringing.hook-executed-transfer": "connected",
    "call.forwarding.operator-busy": "busy",
    "call.forwarding.no-answer": "no-answer",
    "call.in-progress.error-transfer-failed": "failed",
    "customer-ended-call-during-transfer": "caller-hung-up",
}

#: Vapi's ``artifact.transfers[].status`` (the SDK's ``TransferArtifactStatus``, "the terminal
#: status of the transfer") in the shared vocabulary. The SDK does not explain ``completed``; read
#: as a transfer that connected and has since ended, it counts as connected, and the signal's
#: detail keeps Vapi's word.
_TRANSFER_STATUSES = {
    "connected": "connected",
    "completed": "connected",
    "no-answer": "no-answer",
    "busy": "busy",
    "voicemail": "voicemail",
    "failed": "failed",
    "cancelled": "cancelled",
}

#: The messages that carry the call's live ``artifact`` (the SDK's ``ServerMessageTransferUpdate``,
#: ``ServerMessageStatusUpdate`` and ``ServerMessageEndOfCallReport``).
_ARTIFACT_EVENTS = frozenset({"transfer-update", "status-update", "end-of-call-report"})


def _transfer_status(payload: dict[str, t.Any]) -> tuple[str | None, int]:
    """The status of the call's latest transfer in ``artifact.transfers``, if it has one, and how
    many transfers the call has had (which one the status is about).

    The message's ``artifact`` is "a live version of call.artifact"; the call's own is read when
    the message has none. Only the latest transfer counts: an earlier one's status is not this
    transfer's, and a latest one without a status has not ended.
    """
    call = payload.get("call")
    for artifact in (payload.get("artifact"), call.get("artifact") if isinstance(call, dict) else None):
        if not isinstance(artifact, dict):
            continue
        transfers = artifact.get("transfers")
        if isinstance(transfers, list) and transfers:
            latest = transfers[-1]
            status = latest.get("status") if isinstance(latest, dict) else None
            return (status if isinstance(status, str) else None), len(transfers)
    return None, 0


# Request schemas: only the fields a TransferRequest uses are validated. The artifact's message
# lists are checked to be lists but not walked: on a long call they hold thousands of entries.


def _control_hosts(config: t.Mapping[str, t.Any]) -> HostAllowlist:
    value = config.get(cfg.VAPI_CONTROL_HOSTS)
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigurationError(
            messages.config_type(cfg.VAPI_CONTROL_HOSTS, "a list of host names or patterns", value),
            key=cfg.VAPI_CONTROL_HOSTS,
        )
    try:
        return HostAllowlist(value)
    except ValueError as exc:
        raise ConfigurationError(str(exc), key=cfg.VAPI_CONTROL_HOSTS) from None


def transfer_tool(name: str, *, description: str | None = None) -> dict[str, t.Any]:
    """Vapi's ``transferCall`` tool with no destinations, named ``name``; see
    :meth:`~flask_calltransfer.CallTransfer.vapi_transfer_tool`."""
    function: dict[str, t.Any] = {
        "name": name,
        "description": description or messages.vapi_tool_description(),
        "parameters": {"type": "object", "properties": {}},
    }
    return {"type": "transferCall", "destinations": [], "function": function}


class _RawList(fields.Field[list[t.Any]]):
    default_error_messages = {"invalid": "Not a valid list."}

    def _deserialize(self, value: t.Any, attr: str | None, data: t.Any, **kwargs: t.Any) -> list[t.Any]:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return value


class _RawDict(fields.Field[dict[str, t.Any]]):
    default_error_messages = {"invalid": "Not a valid mapping type."}

    def _deserialize(self, value: t.Any, attr: str | None, data: t.Any, **kwargs: t.Any) -> dict[str, t.Any]:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        return value


class _PhoneNumber(fields.Field[str | None]):
    """Vapi's ``phoneNumber``: an object with ``number`` in the schema, a plain string in the guide."""

    default_error_messages = {"invalid": "Not a phone number object or string."}

    def _deserialize(self, value: t.Any, attr: str | None, data: t.Any, **kwargs: t.Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            # A Vapi-provided number has no "number" in the SDK's models, only its SIP URI.
            number = value.get("number") or value.get("sipUri")
            if number is None or isinstance(number, str):
                return number
        raise self.make_error("invalid")


class _Schema(Schema):
    class Meta:
        unknown = EXCLUDE


class _Customer(_Schema):
    number = fields.String(allow_none=True)


class _Monitor(_Schema):
    control_url = fields.String(data_key="controlUrl", allow_none=True)


class _Call(_Schema):
    id = fields.String(allow_none=True)
    monitor = fields.Nested(_Monitor, allow_none=True)
    type = fields.String(allow_none=True)
    assistant_id = fields.String(data_key="assistantId", allow_none=True)
    customer = fields.Nested(_Customer, allow_none=True)
    phone_number = _PhoneNumber(data_key="phoneNumber", allow_none=True)
    metadata = _RawDict(allow_none=True)


class _Assistant(_Schema):
    id = fields.String(allow_none=True)
    metadata = _RawDict(allow_none=True)


class _Artifact(_Schema):
    messages = _RawList(allow_none=True)
    messages_openai = _RawList(data_key="messagesOpenAIFormatted", allow_none=True)
    transcript = fields.String(allow_none=True)


class _FunctionCall(_Schema):
    parameters = _RawDict(allow_none=True)


class _TransferRequestSchema(_Schema):
    type = fields.String(required=True)
    call = fields.Nested(_Call, allow_none=True)
    customer = fields.Nested(_Customer, allow_none=True)
    phone_number = _PhoneNumber(data_key="phoneNumber", allow_none=True)
    assistant = fields.Nested(_Assistant, allow_none=True)
    artifact = fields.Nested(_Artifact, allow_none=True)
    function_call = fields.Nested(_FunctionCall, data_key="functionCall", allow_none=True)


class _ToolCallsSchema(_TransferRequestSchema):
    tool_call_list = _RawList(data_key="toolCallList", allow_none=True)
    tool_with_tool_call_list = _RawList(data_key="toolWithToolCallList", allow_none=True)


class _EventSchema(_Schema):
    type = fields.String(required=True)
    call = fields.Nested(_Call, allow_none=True)


# Reply schemas: Vapi's camelCase wire names; None values are left out.


class _DestinationSchema(Schema):
    @post_dump
    def _drop_none(self, data: dict[str, t.Any], **kwargs: t.Any) -> dict[str, t.Any]:
        return {key: value for key, value in data.items() if value is not None}


def _context_plan(plan: TransferPlan) -> dict[str, t.Any] | None:
    context = plan.context_engineering_plan
    if context is None:
        return None
    # A number is the SDK's ContextEngineeringPlanLastNMessages, {type, maxMessages}.
    if isinstance(context, str):
        return {"type": context}
    return {"type": "lastNMessages", "maxMessages": context}


def _summary_messages(summary: SummaryPlan) -> list[dict[str, t.Any]] | None:
    return [dict(message) for message in summary.messages] if summary.messages is not None else None


class _SummaryPlanSchema(_DestinationSchema):
    enabled = fields.Boolean()
    messages = fields.Function(_summary_messages)
    timeout_seconds = fields.Raw(data_key="timeoutSeconds")


class _FallbackPlanSchema(_DestinationSchema):
    message = fields.String()
    end_call_enabled = fields.Boolean(data_key="endCallEnabled")


class _TransferPlanSchema(_DestinationSchema):
    """Vapi's ``TransferPlan``: every field in its camelCase name, ``None`` left out."""

    mode = fields.String()
    message = fields.String()
    timeout = fields.Raw()
    sip_verb = fields.String(data_key="sipVerb")
    dial_timeout = fields.Raw(data_key="dialTimeout")
    hold_audio_url = fields.String(data_key="holdAudioUrl")
    transfer_complete_audio_url = fields.String(data_key="transferCompleteAudioUrl")
    context_engineering_plan = fields.Function(_context_plan, data_key="contextEngineeringPlan")
    twiml = fields.String()
    summary_plan = fields.Nested(_SummaryPlanSchema, data_key="summaryPlan", allow_none=True)
    sip_headers_in_refer_to_enabled = fields.Boolean(data_key="sipHeadersInReferToEnabled")
    fallback_plan = fields.Nested(_FallbackPlanSchema, data_key="fallbackPlan", allow_none=True)


class _NumberSchema(_DestinationSchema):
    type = fields.Constant("number")
    number = fields.String()
    number_e164_check_enabled = fields.Boolean(attribute="e164", data_key="numberE164CheckEnabled")
    caller_id = fields.String(data_key="callerId")
    extension = fields.String()
    message = fields.String()
    description = fields.String()
    transfer_plan = fields.Nested(_TransferPlanSchema, data_key="transferPlan", allow_none=True)


class _SipSchema(_DestinationSchema):
    type = fields.Constant("sip")
    sip_uri = fields.String(attribute="uri", data_key="sipUri")
    sip_headers = fields.Dict(
        keys=fields.String(), values=fields.String(), attribute="headers", data_key="sipHeaders"
    )
    caller_id = fields.String(data_key="callerId")
    message = fields.String()
    description = fields.String()
    transfer_plan = fields.Nested(_TransferPlanSchema, data_key="transferPlan", allow_none=True)


class _AssistantSchema(_DestinationSchema):
    type = fields.Constant("assistant")
    assistant_name = fields.String(attribute="name", data_key="assistantName")
    message = fields.String()
    description = fields.String()
    transfer_mode = fields.String(attribute="history", data_key="transferMode")


_REQUEST_SCHEMA = FastLoader(_TransferRequestSchema())
_TOOL_CALLS_SCHEMA = FastLoader(_ToolCallsSchema())
_EVENT_SCHEMA = FastLoader(_EventSchema())
_DESTINATION_SCHEMAS: dict[type[Destination], Schema] = {
    NumberDestination: _NumberSchema(),
    SipDestination: _SipSchema(),
    AssistantDestination: _AssistantSchema(),
}

_ROLES = {
    "user": "user",
    "bot": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "tool_calls": "tool",
    "tool_call_result": "tool",
}


def _dump_once(destination: Destination) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], _DESTINATION_SCHEMAS[type(destination)].dump(destination))


# Destinations are immutable and handlers return the same few again and again.
_dump_kept = functools.lru_cache(maxsize=1024)(_dump_once)


def _dump(destination: Destination) -> dict[str, t.Any]:
    # One made for a call (a hand-off) is never seen again, and what it says is not kept.
    return _dump_once(destination) if destination.per_call else _dump_kept(destination)


def _reply_body_once(destination: Destination) -> bytes:
    # NaN is refused: Vapi could not read the reply at all.
    return compact_json({"destination": _dump(destination)}).encode()


_reply_body_kept = functools.lru_cache(maxsize=1024)(_reply_body_once)


def _reply_body(destination: Destination) -> bytes:
    return _reply_body_once(destination) if destination.per_call else _reply_body_kept(destination)


class VapiConversation(Conversation):
    """The conversation in a Vapi payload's ``artifact``, read only when a handler asks.

    Entries of an unexpected shape are skipped rather than failing the handler.
    """

    def __init__(self, artifact: dict[str, t.Any] | None) -> None:
        self._artifact = artifact or {}

    def _entries(self) -> list[t.Any]:
        entries = self._artifact.get("messages")
        if not entries:
            entries = self._artifact.get("messages_openai")
        return entries or []

    @staticmethod
    def _normalise(entry: t.Any) -> dict[str, str] | None:
        if not isinstance(entry, dict):
            return None
        role = _ROLES.get(entry.get("role"))  # type: ignore[arg-type]
        content = entry.get("message")
        if not isinstance(content, str):
            content = entry.get("content")
        if role is None or not isinstance(content, str):
            return None
        return {"role": role, "content": content}

    def text(self) -> str:
        for entry in reversed(self._entries()):
            item = self._normalise(entry)
            if item is not None and item["role"] == "user":
                return item["content"]
        return ""

    def transcript(self) -> str:
        transcript = self._artifact.get("transcript")
        return transcript if isinstance(transcript, str) else ""

    def messages(self) -> list[dict[str, str]]:
        return [item for item in map(self._normalise, self._entries()) if item is not None]


def _load(schema: FastLoader, message: dict[str, t.Any], wrapped: bool) -> dict[str, t.Any]:
    try:
        return schema.load(message)
    except ValidationError as exc:
        errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise InvalidPayload(
            messages.payload_invalid("Vapi"), {"message": errors} if wrapped else errors
        ) from None


def _verifier(config: t.Mapping[str, t.Any]) -> Verifier | None:
    verifiers: list[Verifier] = []
    secrets = cfg.get_secrets(config, cfg.VAPI_SECRET)
    header = cfg.get_str(config, cfg.VAPI_SECRET_HEADER)
    if secrets:
        verifiers.append(SharedSecretVerifier(secrets, header=t.cast(str, header), bearer=True))
    hmac_secrets = cfg.get_secrets(config, cfg.VAPI_HMAC_SECRET)
    payload_format = t.cast(str, cfg.get_str(config, cfg.VAPI_HMAC_PAYLOAD_FORMAT))
    for name in placeholders(payload_format) - PAYLOAD_PLACEHOLDERS:
        raise ConfigurationError(
            messages.config_payload_format(cfg.VAPI_HMAC_PAYLOAD_FORMAT, name, PAYLOAD_PLACEHOLDERS),
            key=cfg.VAPI_HMAC_PAYLOAD_FORMAT,
        )
    algorithm = cfg.get_choice(config, cfg.VAPI_HMAC_ALGORITHM, ALGORITHMS)
    encoding = cfg.get_choice(config, cfg.VAPI_HMAC_ENCODING, ENCODINGS)
    prefix = cfg.get_str(config, cfg.VAPI_HMAC_PREFIX, optional=True) or ""
    signature_header = t.cast(str, cfg.get_str(config, cfg.VAPI_HMAC_SIGNATURE_HEADER))
    timestamp_header = cfg.get_str(config, cfg.VAPI_HMAC_TIMESTAMP_HEADER, optional=True) or None
    max_age = cfg.get_number(config, cfg.VAPI_HMAC_MAX_AGE, optional=True)
    if hmac_secrets and max_age is not None:
        # A window is only as good as the timestamp it reads: it must be there and be signed.
        if timestamp_header is None:
            raise ConfigurationError(
                messages.config_window_without_header(cfg.VAPI_HMAC_TIMESTAMP_HEADER, cfg.VAPI_HMAC_MAX_AGE),
                key=cfg.VAPI_HMAC_TIMESTAMP_HEADER,
            )
        if "timestamp" not in placeholders(payload_format):
            raise ConfigurationError(
                messages.config_window_unsigned(cfg.VAPI_HMAC_PAYLOAD_FORMAT, cfg.VAPI_HMAC_MAX_AGE),
                key=cfg.VAPI_HMAC_PAYLOAD_FORMAT,
            )
    if hmac_secrets:
        verifiers.append(
            HmacVerifier(
                hmac_secrets,
                algorithm=algorithm,
                signature_header=signature_header,
                timestamp_header=timestamp_header,
                payload_format=payload_format,
                encoding=encoding,
                prefix=prefix,
                max_age=max_age if timestamp_header else None,
            )
        )
    if not verifiers:
        return None
    return verifiers[0] if len(verifiers) == 1 else AnyOf(verifiers)


class VapiPlatform(ToolCallPlatform):
    """Vapi server messages at ``POST <prefix>/vapi``.

    ``transfer-destination-request`` runs the handlers; the reply is ``{"destination": {...}}`` with
    a number, SIP or assistant destination, or ``{"error": reason}`` for a refusal. ``tool-calls``
    for a tool in ``CALLTRANSFER_VAPI_TOOLS`` run the handlers too; the destination is sent to the
    call's live control URL and the tool result says whether the transfer started. Every other
    message goes to ``on_event`` handlers and is otherwise answered with ``{}``.

    Verification: ``CALLTRANSFER_VAPI_SECRET`` in ``X-Vapi-Secret`` (or the header named by
    ``CALLTRANSFER_VAPI_SECRET_HEADER``) or as ``Authorization: Bearer``, and/or an HMAC signature
    with ``CALLTRANSFER_VAPI_HMAC_SECRET``.

    .. versionadded:: 0.1
    """

    name = "vapi"
    # The assistant stays on the call when a transfer fails, and asks again.
    failover = "request"
    credential_keys = (cfg.VAPI_SECRET, cfg.VAPI_HMAC_SECRET)
    # Vapi waits 20 s by default (server.timeoutSeconds).
    handler_timeout = 15.0
    reply_budget = 20.0
    # Every server message carries its own "timestamp".
    answers_replays = True
    # SIP headers on SIP destinations (replies and live control), the operator message of the warm
    # message modes, and the Refer-To through the plan's sipHeadersInReferToEnabled.
    handoff_channels = frozenset({"sip-headers", "operator-message", "refer-to"})
    caller_template = "{{customer.number}}"

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any], services: Services) -> VapiPlatform:
        settings = services.settings
        verifier = _verifier(config)
        if settings.verify and verifier is None:
            raise ConfigurationError(
                messages.config_missing_credentials(cls.name, cls.credential_keys),
                key=cfg.VAPI_SECRET,
            )
        return cls(
            services=services,
            verifier=verifier if settings.verify else None,
            tools=cfg.get_names(config, cfg.VAPI_TOOLS),
        )

    def __init__(self, *, tools: frozenset[str] = frozenset(), **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        self.tools = tools

    @classmethod
    def build_clients(cls, config: t.Mapping[str, t.Any], http: HttpClient) -> dict[str, object]:
        """``"vapi"``, the live call-control client; ``"vapi_api"``, the REST API client, with
        ``CALLTRANSFER_VAPI_API_KEY``."""
        clients: dict[str, object] = {
            "vapi": VapiControlClient(
                http,
                public_key=cfg.get_str(config, cfg.VAPI_PUBLIC_KEY, optional=True),
                allowlist=_control_hosts(config),
            )
        }
        api_key = cfg.get_str(config, cfg.VAPI_API_KEY, optional=True)
        if api_key:
            clients["vapi_api"] = VapiApiClient(
                http, api_url=cfg.get_url(config, cfg.VAPI_API_URL), api_key=api_key
            )
        return clients

    @property
    def control(self) -> VapiControlClient:
        """The live call-control client this app's ``"vapi"`` client entry holds."""
        return t.cast(VapiControlClient, self.services.clients["vapi"])

    def parse(self, payload: dict[str, t.Any], inbound: Inbound) -> TransferRequest | PlatformEvent:
        wrapped = "type" not in payload and "message" in payload
        message = payload["message"] if wrapped else payload
        if not isinstance(message, dict):
            raise InvalidPayload(messages.payload_invalid("Vapi"), {"message": ["Not a valid mapping type."]})
        event = message.get("type")
        tool_call = None
        if event == TOOL_CALLS_EVENT and self.tools:
            data = _load(_TOOL_CALLS_SCHEMA, message, wrapped)
            lists = (data.get("tool_call_list"), data.get("tool_with_tool_call_list"))
            found = find(lists, self.tools)
            tool_call = found[0] if found else None
        if event != TRANSFER_EVENT and tool_call is None:
            data = _load(_EVENT_SCHEMA, message, wrapped)
            call = data.get("call") or {}
            return PlatformEvent(self.name, data["type"], call.get("id"), message)
        if tool_call is None:
            data = _load(_REQUEST_SCHEMA, message, wrapped)
        call = data.get("call") or {}
        customer = (data.get("customer") or {}).get("number") or (call.get("customer") or {}).get("number")
        # The message's phoneNumber, else the call's own (which the SDK types with its number).
        our_number = data.get("phone_number") or call.get("phone_number")
        outbound = call.get("type") == "outboundPhoneCall"
        assistant = data.get("assistant") or {}
        metadata = call.get("metadata") or assistant.get("metadata") or {}
        arguments = (data.get("function_call") or {}).get("parameters") or {}
        return TransferRequest(
            platform=self.name,
            event=t.cast(str, event),
            call_id=call.get("id"),
            # On an outbound call the customer is the one who was called.
            caller=our_number if outbound else customer,
            called=customer if outbound else our_number,
            assistant_id=call.get("assistant_id") or assistant.get("id"),
            arguments=tool_call.arguments if tool_call else arguments,
            metadata=metadata,
            raw=message,
            conversation=VapiConversation(data.get("artifact")),
            region=self.settings.default_region,
            tool_call_id=tool_call.id if tool_call else None,
            tool_name=tool_call.name if tool_call else None,
        )

    def render_reply(self, call: TransferRequest, outcome: Outcome) -> Response:
        if isinstance(outcome, TransferRefused):
            return json_response({"error": outcome.reason})
        if isinstance(outcome, DeliveryFailed):
            return json_response({"error": self.settings.refusal_message})
        self.check(outcome)
        return Response(_reply_body(outcome), content_type="application/json")

    def attach_handoff(self, destination: Destination, handoff: Handoff) -> Destination:
        destination = super().attach_handoff(destination, handoff)
        if handoff.refer_to and isinstance(destination, SipDestination):
            # Vapi puts every SIP header into the Refer-To with this switch, User-to-User too.
            plan = destination.transfer_plan or TransferPlan("blind-transfer")
            if plan.sip_verb in (None, "refer") and not plan.sip_headers_in_refer_to_enabled:
                plan = dataclasses.replace(plan, sip_headers_in_refer_to_enabled=True)
                destination = destination.replaced(transfer_plan=plan)
        return destination

    def check_delivery(self, destination: Destination) -> None:
        # Live call control carries number and SIP destinations only; replies also carry assistants.
        if isinstance(destination, AssistantDestination):
            raise self.unsupported("assistant (live call control)", kind=True)
        self.check(destination)

    def deliver(self, call: TransferRequest, destination: Destination) -> None:
        self.check_delivery(destination)
        body = self.dump_destination(destination)
        # Live control speaks its own "content"; a message left in the destination would be said twice.
        content = body.pop("message", None)
        monitor = call.raw.get("call", {}).get("monitor") if isinstance(call.raw.get("call"), dict) else None
        control_url = monitor.get("controlUrl") if isinstance(monitor, dict) else None
        if not isinstance(control_url, str) or not control_url:
            raise DeliveryFailed(messages.control_url_missing())
        if not control_url.startswith(("https://", "http://")):
            raise DeliveryFailed(messages.control_url_invalid())
        try:
            self.control.transfer(control_url, body, content=content, deadline=self.deadline(call))
        except ApiError as exc:
            raise DeliveryFailed(
                messages.delivery_failed(self.name, repr(call), str(exc)), cause=exc
            ) from exc

    def tool_result(self, call: TransferRequest, *, error: str | None = None) -> Response:
        result: dict[str, t.Any] = {"toolCallId": call.tool_call_id, "name": call.tool_name}
        if error is None:
            result["result"] = messages.tool_result_transferring()
        else:
            result["error"] = error
        return json_response({"results": [result]})

    def render_failure(self) -> Response:
        return json_response({"error": self.settings.refusal_message})

    def outcome(self, event: PlatformEvent) -> TransferOutcome | None:
        ended = event.type == "end-of-call-report" or (
            event.type == "status-update" and event.payload.get("status") == "ended"
        )
        if event.type in _ARTIFACT_EVENTS:
            status, count = _transfer_status(event.payload)
            # A status the vocabulary does not know yet is left to the call's end to report.
            if status is not None and status in _TRANSFER_STATUSES:
                return TransferOutcome(_TRANSFER_STATUSES[status], status, True, ended, count)
        if event.type == "transfer-update":
            # Without a final status: Vapi sends transfer-update "whenever a transfer happens",
            # which for a warm transfer is before anyone answered. The call's end reports it.
            return None
        if event.type != "status-update" or event.payload.get("status") != "ended":
            return None
        reason = event.payload.get("endedReason")
        if not isinstance(reason, str):
            return TransferOutcome("unknown", "ended", False, True)
        if reason in _ENDED_REASONS:
            return TransferOutcome(_ENDED_REASONS[reason], reason, True, True)
        if "forward" in reason or "transfer" in reason:
            return TransferOutcome("failed", reason, True, True)
        if reason == "customer-ended-call":
            return TransferOutcome("caller-hung-up", reason, False, True)
        return TransferOutcome("unknown", reason, False, True)

    def earlier_outcome(self, call: TransferRequest) -> TransferOutcome | None:
        # A request that asks again carries the call's artifact, whose latest transfer record
        # says how the last one ended.
        status, count = _transfer_status(call.raw)
        if status is not None and status in _TRANSFER_STATUSES:
            return TransferOutcome(_TRANSFER_STATUSES[status], status, True, attempt=count)
        return None

    def prepare_attempt(self, destination: Destination, chain: DestinationChain) -> Destination:
        # Vapi ends the call when a transfer fails unless the plan's fallback says otherwise:
        # the assistant stays on, says the chain's message, and asks for the next destination.
        if not isinstance(destination, (NumberDestination, SipDestination)):
            return destination
        fallback = FallbackPlan(chain.message, end_call_enabled=False)
        plan = destination.transfer_plan
        if plan is None:
            return destination.replaced(transfer_plan=TransferPlan(fallback_plan=fallback))
        if plan.fallback_plan is None and plan.mode in PLAN_FIELD_MODES["fallback_plan"]:
            return dataclasses.replace(
                destination, transfer_plan=dataclasses.replace(plan, fallback_plan=fallback)
            )
        # A fallback of the app's own, or a mode Vapi gives none: sent as it is.
        return destination

    def check(self, destination: Destination) -> None:
        """Raise :class:`UnsupportedDestination` if Vapi cannot carry ``destination``."""
        if type(destination) not in _DESTINATION_SCHEMAS:
            raise self.unsupported(destination.kind, kind=True)
        if isinstance(destination, NumberDestination) and destination.caller_id_name is not None:
            raise self.unsupported("caller_id_name")

    def dump_destination(self, destination: Destination) -> dict[str, t.Any]:
        """Vapi's JSON for a destination (a new dict), or :class:`UnsupportedDestination`."""
        self.check(destination)
        return dict(_dump(destination))

    def render_event(self, event: PlatformEvent, reply: dict[str, t.Any] | None) -> Response:
        return json_response(reply if reply is not None else {})

    def describe_verification(self) -> str:
        if self.verifier is None:
            return "off"
        if isinstance(self.verifier, AnyOf):
            return "shared secret or HMAC signature"
        if isinstance(self.verifier, HmacVerifier):
            return "HMAC signature"
        return "shared secret"
