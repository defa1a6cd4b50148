"""Payload builders and request signers for the built-in platforms, and a signal recorder.

:mod:`flask_calltransfer.testing` is where apps find them; this module holds them apart from the
contract kit there, so the CLI can use them without importing the extension.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import time
import typing as t
import uuid

from blinker import ANY
from blinker import NamedSignal

from . import signals as _signals


def dumps(payload: t.Any) -> bytes:
    """Encode a payload the way platforms send it: compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def vapi_messages(*turns: tuple[str, str]) -> list[dict[str, t.Any]]:
    """Vapi ``artifact.messages`` entries from ``(role, text)`` pairs; roles ``"user"``/``"bot"``."""
    now = time.time() * 1000
    return [
        {"role": role, "message": text, "time": now + i * 1000, "secondsFromStart": float(i)}
        for i, (role, text) in enumerate(turns)
    ]


def vapi_transfer_request(
    *,
    text: str | None = "I'd like to talk to someone.",
    caller: str | None = "+14155550100",
    called: str | None = "+14155550199",
    call_id: str | None = None,
    assistant_id: str | None = "assistant-123",
    messages: list[dict[str, t.Any]] | None = None,
    control_url: str | None = None,
    outbound: bool = False,
    wrapped: bool = True,
    **fields: t.Any,
) -> dict[str, t.Any]:
    """A realistic Vapi ``transfer-destination-request``.

    :param text: the caller's latest utterance, added as the last user message.
    :param caller: who placed the call: ``customer.number`` (``phoneNumber`` when ``outbound``).
    :param called: the number called: ``phoneNumber.number`` (``customer`` when ``outbound``).
    :param messages: the whole ``artifact.messages`` list, instead of one built from ``text``.
    :param control_url: ``call.monitor.controlUrl``.
    :param outbound: build an outbound call (the customer is then the called party).
    :param wrapped: wrap in ``{"message": ...}`` as Vapi sends it; ``False`` gives the bare form
        of Vapi's dynamic-transfer guide.
    :param fields: extra or replaced top-level fields of the message.
    """
    call_id = call_id if call_id is not None else str(uuid.uuid4())
    if messages is None:
        turns = [("bot", "Hello, how can I help you today?")]
        if text is not None:
            turns.append(("user", text))
        messages = vapi_messages(*turns)
    # On an outbound call the assistant's number places the call and the customer is called.
    customer = {"number": called if outbound else caller}
    our_number = caller if outbound else called
    transcript = "\n".join(
        f"{'User' if m.get('role') == 'user' else 'AI'}: {m.get('message', '')}"
        for m in messages
        if isinstance(m, dict)
    )
    call: dict[str, t.Any] = {
        "id": call_id,
        "orgId": "org-123",
        "type": "outboundPhoneCall" if outbound else "inboundPhoneCall",
        "status": "in-progress",
        "assistantId": assistant_id,
        "phoneNumberId": "pn-123",
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:05.000Z",
        "customer": customer,
        "monitor": {
            "listenUrl": "wss://example.invalid/listen",
            "controlUrl": control_url or "https://example.invalid/control",
        },
    }
    message: dict[str, t.Any] = {
        "type": "transfer-destination-request",
        "timestamp": int(time.time() * 1000),
        "call": call,
        "customer": customer,
        "phoneNumber": {"number": our_number, "provider": "vapi"},
        "assistant": {"id": assistant_id, "name": "Support"},
        "artifact": {
            "messages": messages,
            "messagesOpenAIFormatted": [
                {"role": "assistant" if m["role"] == "bot" else m["role"], "content": m["message"]}
                for m in messages
                if isinstance(m, dict) and "message" in m and "role" in m
            ],
            "transcript": transcript,
        },
        "assistantVersion": None,
    }
    message.update(fields)
    return {"message": message} if wrapped else message


def vapi_event(event_type: str, *, call_id: str | None = None, **fields: t.Any) -> dict[str, t.Any]:
    """Any other Vapi server message, wrapped, such as ``status-update``."""
    message: dict[str, t.Any] = {
        "type": event_type,
        "timestamp": int(time.time() * 1000),
        "call": {"id": call_id if call_id is not None else str(uuid.uuid4()), "type": "inboundPhoneCall"},
    }
    message.update(fields)
    return {"message": message}


def vapi_tool_calls(
    name: str = "transfer_call",
    arguments: dict[str, t.Any] | str | None = None,
    *,
    tool_call_id: str | None = None,
    shape: str = "function",
    **fields: t.Any,
) -> dict[str, t.Any]:
    """A Vapi ``tool-calls`` message calling one function tool, wrapped.

    :param arguments: an object, or a JSON string as Vapi's schema types it.
    :param shape: ``"function"`` (``toolCallList`` with ``function.arguments``), ``"with_tool"``
        (only ``toolWithToolCallList`` with ``function.parameters``) or ``"flat"``
        (``toolCallList`` items ``{"id", "name", "parameters"}``).
    :param fields: passed to :func:`vapi_transfer_request` (``control_url``, ``caller``, ...).
    """
    tool_call_id = tool_call_id if tool_call_id is not None else f"call_{uuid.uuid4().hex[:24]}"
    arguments = {} if arguments is None else arguments
    body = vapi_transfer_request(**fields)
    message = body["message"]
    message["type"] = "tool-calls"
    function_call = {
        "id": tool_call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    with_tool = {
        "type": "function",
        "name": name,
        "toolCall": {
            "id": tool_call_id,
            "type": "function",
            "function": {"name": name, "parameters": arguments},
        },
    }
    if shape == "function":
        message["toolCallList"] = [function_call]
        message["toolWithToolCallList"] = [with_tool]
    elif shape == "with_tool":
        message["toolCallList"] = []
        message["toolWithToolCallList"] = [with_tool]
    elif shape == "flat":
        message["toolCallList"] = [{"id": tool_call_id, "name": name, "parameters": arguments}]
    else:
        raise ValueError(f"Unknown tool-call shape {shape!r}: use 'function', 'with_tool' or 'flat'.")
    return body


def voicedock_event(
    event_type: str,
    *,
    call_id: str | None = None,
    caller: str | None = "+31612345678",
    called: str | None = "+31850835037",
    outbound: bool = False,
    metadata: dict[str, t.Any] | None = None,
    **fields: t.Any,
) -> dict[str, t.Any]:
    """A VoiceDock webhook body such as ``status-update``: ``{"message": {...}}`` in snake_case.

    :param caller: who placed the call (``customer.number``, or ``phone_number`` when ``outbound``).
    :param called: the number called (``phone_number.number``, or ``customer`` when ``outbound``).
    """
    customer = called if outbound else caller
    our_number = caller if outbound else called
    message: dict[str, t.Any] = {
        "type": event_type,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "call": {
            "id": call_id if call_id is not None else str(uuid.uuid4()),
            "type": "outbound_phone_call" if outbound else "inbound_phone_call",
            "status": "in-progress",
        },
        "phone_number": {"number": our_number, "name": "Main line"},
        "customer": {"number": customer},
        "assistant": {"metadata": metadata or {}},
    }
    message.update(fields)
    return {"message": message}


def voicedock_tool_calls(
    name: str = "transfer_call",
    arguments: dict[str, t.Any] | str | None = None,
    *,
    tool_call_id: str | None = None,
    key: str = "arguments",
    **fields: t.Any,
) -> dict[str, t.Any]:
    """A VoiceDock ``tool-calls`` webhook calling one function tool.

    :param arguments: an object (VoiceDock's documented form) or a JSON string.
    :param key: ``"arguments"`` or ``"parameters"``, the key that holds them.
    :param fields: passed to :func:`voicedock_event` (``call_id``, ``caller``, ...).
    """
    tool_call = {
        "id": tool_call_id if tool_call_id is not None else f"tool_{uuid.uuid4().hex[:12]}",
        "type": "function",
        "function": {"name": name, key: {} if arguments is None else arguments},
    }
    return voicedock_event("tool-calls", tool_call_list=[tool_call], **fields)


def voicedock_headers(body: bytes, secret: str, *, timestamp: float | str | None = None) -> dict[str, str]:
    """Signed VoiceDock webhook headers for ``body``: ``X-Webhook-Signature: sha256=<hex>`` of
    ``"{timestamp}.{body}"``, ``X-Webhook-Timestamp`` (now unless given) and ``X-Webhook-Event``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    try:
        event = json.loads(body)["message"]["type"]
    except (ValueError, KeyError, TypeError, RecursionError):
        event = ""
    return {
        "Content-Type": "application/json",
        "User-Agent": "HMS-Sovereign/1.0",
        "X-Webhook-Event": str(event),
        "X-Webhook-Timestamp": stamp,
        "X-Webhook-Signature": hmac_signature(body, secret, timestamp=stamp, prefix="sha256="),
    }


def vapi_secret_headers(secret: str, *, header: str = "X-Vapi-Secret") -> dict[str, str]:
    """Headers carrying a Vapi shared secret (the legacy ``X-Vapi-Secret`` form by default)."""
    return {"Content-Type": "application/json", header: secret}


def vapi_bearer_headers(secret: str) -> dict[str, str]:
    """Headers carrying a Vapi Bearer credential."""
    return {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}


def hmac_signature(
    body: bytes,
    secret: str,
    *,
    timestamp: str = "",
    algorithm: str = "sha256",
    payload_format: str = "{timestamp}.{body}",
    encoding: str = "hex",
    prefix: str = "",
    method: str = "POST",
    url: str = "",
) -> str:
    """The signature a platform sends for ``body``: HMAC of the formatted payload."""
    head, _, tail = payload_format.partition("{body}")
    values = {"timestamp": timestamp, "method": method, "url": url, "body": ""}
    signed = head.format(**values).encode()
    if "{body}" in payload_format:
        signed += body + tail.format(**values).encode()
    digest = hmac.new(secret.encode(), signed, getattr(hashlib, algorithm)).digest()
    encoded = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    return prefix + encoded


def vapi_hmac_headers(
    body: bytes,
    secret: str,
    *,
    timestamp: float | str | None = None,
    algorithm: str = "sha256",
    signature_header: str = "x-signature",
    timestamp_header: str = "x-timestamp",
    payload_format: str = "{timestamp}.{body}",
    encoding: str = "hex",
    prefix: str = "",
    url: str = "",
) -> dict[str, str]:
    """Headers of a Vapi HMAC credential for ``body``, signed now unless ``timestamp`` is given."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac_signature(
        body,
        secret,
        timestamp=stamp,
        algorithm=algorithm,
        payload_format=payload_format,
        encoding=encoding,
        prefix=prefix,
        url=url,
    )
    return {"Content-Type": "application/json", timestamp_header: stamp, signature_header: signature}


def sipgate_event(
    event_type: str,
    *,
    session_id: str | None = None,
    text: str | None = None,
    caller: str = "+4915799912345",
    called: str = "+4921112345678",
    direction: str = "inbound",
    account_id: str = "account-123",
    barged_in: bool | None = None,
    **fields: t.Any,
) -> dict[str, t.Any]:
    """A sipgate AI Flow event such as ``user_speak``, with its ``session`` object.

    :param caller: ``session.from_phone_number``.
    :param called: ``session.to_phone_number``; the flow's own number (``session.phone_number``)
        is the called number on inbound calls and the caller on outbound ones.
    :param text: for ``user_speak``, what the caller said.
    :param fields: extra or replaced top-level fields.
    """
    flow_number = called if direction == "inbound" else caller
    event: dict[str, t.Any] = {
        "type": event_type,
        "session": {
            "id": session_id if session_id is not None else str(uuid.uuid4()),
            "account_id": account_id,
            "phone_number": flow_number,
            "direction": direction,
            "from_phone_number": caller,
            "to_phone_number": called,
        },
    }
    if text is not None:
        event["text"] = text
    if barged_in is not None:
        event["barged_in"] = barged_in
    event.update(fields)
    return event


def sipgate_headers(token: str, *, header: str = "X-API-TOKEN") -> dict[str, str]:
    """Headers of a sipgate AI Flow webhook carrying the shared token."""
    return {"Content-Type": "application/json", header: token}


def _first(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return value[0]
    return None


def signed_headers(
    config: t.Mapping[str, t.Any], platform: str, body: bytes, *, url: str = ""
) -> dict[str, str]:
    """Headers that an app with ``config`` accepts for ``body`` on ``platform``.

    Signs with the first configured secret of the platform's credential, the way the platform
    would: Vapi's shared secret (else its HMAC credential), sipgate's token header, VoiceDock's
    HMAC. With no credential configured, only the content type is sent.
    """
    if platform == "vapi":
        secret = _first(config.get("CALLTRANSFER_VAPI_SECRET"))
        if secret:
            return vapi_secret_headers(
                secret, header=config.get("CALLTRANSFER_VAPI_SECRET_HEADER") or "X-Vapi-Secret"
            )
        hmac_secret = _first(config.get("CALLTRANSFER_VAPI_HMAC_SECRET"))
        if hmac_secret:
            return vapi_hmac_headers(
                body,
                hmac_secret,
                algorithm=config.get("CALLTRANSFER_VAPI_HMAC_ALGORITHM") or "sha256",
                signature_header=config.get("CALLTRANSFER_VAPI_HMAC_SIGNATURE_HEADER") or "x-signature",
                timestamp_header=config.get("CALLTRANSFER_VAPI_HMAC_TIMESTAMP_HEADER") or "x-timestamp",
                payload_format=config.get("CALLTRANSFER_VAPI_HMAC_PAYLOAD_FORMAT") or "{timestamp}.{body}",
                encoding=config.get("CALLTRANSFER_VAPI_HMAC_ENCODING") or "hex",
                prefix=config.get("CALLTRANSFER_VAPI_HMAC_PREFIX") or "",
                url=url,
            )
    elif platform == "sipgate":
        token = _first(config.get("CALLTRANSFER_SIPGATE_TOKEN"))
        if token:
            return sipgate_headers(
                token, header=config.get("CALLTRANSFER_SIPGATE_TOKEN_HEADER") or "X-API-TOKEN"
            )
    elif platform == "voicedock":
        secret = _first(config.get("CALLTRANSFER_VOICEDOCK_SECRET"))
        if secret:
            return voicedock_headers(body, secret)
    return {"Content-Type": "application/json"}


def reply_problems(platform: str, status: int, body: bytes) -> list[str]:
    """Why ``platform`` would not accept this answer to a webhook; empty when it would.

    Checks the status and the reply's shape: Vapi's destination, error, tool results or ``{}``;
    sipgate's single action or ``204``; VoiceDock's tool results, error or ``{}``.
    """
    if platform == "sipgate" and status == 204:
        return [] if not body else ["A 204 answer must have an empty body."]
    if status != 200:
        return [
            f"The answer has HTTP status {status}; the platform needs 200"
            + (" or 204." if platform == "sipgate" else ".")
        ]
    try:
        reply = json.loads(body)
    except ValueError:
        return ["The answer is not JSON."]
    if not isinstance(reply, dict):
        return ["The answer is not a JSON object."]
    problems: list[str] = []
    if platform == "vapi":
        if "destination" in reply:
            destination = reply["destination"]
            required = {"number": "number", "sip": "sipUri", "assistant": "assistantName"}
            kind = destination.get("type") if isinstance(destination, dict) else None
            if kind not in required:
                problems.append("The destination's type must be number, sip or assistant.")
            elif not isinstance(destination.get(required[kind]), str) or not destination[required[kind]]:
                problems.append(f"The {kind} destination has no {required[kind]}.")
        elif "error" in reply:
            if not isinstance(reply["error"], str) or not reply["error"]:
                problems.append("The error must be a non-empty sentence.")
        elif "results" in reply:
            for result in reply["results"] if isinstance(reply["results"], list) else [None]:
                if not isinstance(result, dict) or not result.get("toolCallId"):
                    problems.append("Every tool result needs its toolCallId.")
                elif not isinstance(result.get("result", result.get("error")), str):
                    problems.append("Every tool result needs a result or an error string.")
    elif platform == "sipgate":
        kind = reply.get("type")
        if kind not in ("transfer", "speak", "audio", "hangup", "barge_in"):
            problems.append("The action's type is not one AI Flow knows.")
        if not isinstance(reply.get("session_id"), str) or not reply.get("session_id"):
            problems.append("The action has no session_id.")
        if kind == "transfer":
            for field in ("target_phone_number", "caller_id_name", "caller_id_number"):
                if not isinstance(reply.get(field), str) or not reply.get(field):
                    problems.append(f"The transfer action has no {field}.")
        if kind == "speak" and not (reply.get("text") or reply.get("ssml")):
            problems.append("The speak action has no text.")
    elif platform == "voicedock" and "results" in reply:
        for result in reply["results"] if isinstance(reply["results"], list) else [None]:
            if not isinstance(result, dict) or not result.get("tool_call_id") or "result" not in result:
                problems.append("Every tool result needs its tool_call_id and a result.")
    return problems


@dataclasses.dataclass
class SignalRecorder:
    """What a :func:`record_signals` block heard: ``(signal name, sender, kwargs)`` triples."""

    events: list[tuple[str, t.Any, dict[str, t.Any]]] = dataclasses.field(default_factory=list)

    def named(self, name: str) -> list[dict[str, t.Any]]:
        """The keyword arguments of every send of the signal called ``name``: its wire name
        (``"transfer-resolved"``) or its Python name (``"transfer_resolved"``)."""
        wire = name.replace("_", "-")
        if wire not in _SIGNAL_NAMES:
            raise ValueError(
                f"There is no signal called {name!r}. The signals are: {', '.join(sorted(_SIGNAL_NAMES))}"
                " (or the same with underscores)."
            )
        return [kwargs for signal, _, kwargs in self.events if signal == wire]

    def names(self) -> list[str]:
        """The names of the signals heard, in order."""
        return [signal for signal, _, _ in self.events]

    def one(self, name: str) -> dict[str, t.Any]:
        """The keyword arguments of the only send of ``name``; fails if it was not sent exactly once."""
        sent = self.named(name)
        assert len(sent) == 1, f"{name} was sent {len(sent)} times, expected once: {self.names()}"
        return sent[0]


ALL_SIGNALS: tuple[NamedSignal, ...] = (
    _signals.transfer_requested,
    _signals.transfer_resolved,
    _signals.transfer_refused,
    _signals.transfer_deferred,
    _signals.transfer_failed,
    _signals.request_rejected,
    _signals.event_received,
    _signals.transfer_outcome,
    _signals.transfer_attempted,
    _signals.destination_skipped,
    _signals.transfer_finished,
    _signals.callback_requested,
)
_SIGNAL_NAMES = frozenset(signal.name for signal in ALL_SIGNALS)


@contextlib.contextmanager
def record_signals(sender: t.Any = None) -> t.Iterator[SignalRecorder]:
    """Record every Flask-CallTransfer signal sent inside the block, optionally from one sender
    (the module's introduction shows it in use)."""
    recorder = SignalRecorder()
    with contextlib.ExitStack() as stack:
        for signal in ALL_SIGNALS:

            def receiver(sent_by: t.Any, _name: str = signal.name, **kwargs: t.Any) -> None:
                recorder.events.append((_name, sent_by, kwargs))

            stack.enter_context(signal.connected_to(receiver, sender=sender if sender is not None else ANY))
        yield recorder
