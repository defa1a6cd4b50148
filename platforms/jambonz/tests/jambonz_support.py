"""jambonz hooks as jambonz-feature-server 0.9.8 posts them, and an independent signer.

The payloads follow the fields the feature server builds (``lib/middleware.js`` for the call_hook,
``CallInfo.toJSON()`` for the others, each verb's ``performAction`` for the actionHooks), and are
encoded as ``JSON.stringify`` would: no spaces, non-ASCII as is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import typing as t

SECRET = "wh_secret_5ZbJ9bDbSWTKvTxxxhmU4b"
OLD_SECRET = "wh_secret_oldoldoldoldoldoldoldo"
JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": "jambonz"}
CALL_SID = "b6c3a6d6-6f0e-4c55-9b1c-1a9d3a0c2f11"
CALLER = "+31612345678"
CALLED = "+31207948400"
NUMBER = "+31207948450"

#: Every verb name in jambonz's verb specifications (jambonz/verb-specifications specs.json).
VERBS = frozenset(
    {
        "alert", "answer", "conference", "config", "dequeue", "dial", "dialogflow", "dtmf", "dub",
        "enqueue", "gather", "hangup", "leave", "lex", "listen", "llm", "message", "pause", "play",
        "rasa", "redirect", "rest:dial", "say", "sip:decline", "sip:refer", "sip:request", "tag",
        "transcribe",
    }
)  # fmt: skip


def encode(payload: t.Mapping[str, t.Any]) -> bytes:
    """The body as jambonz sends it: ``JSON.stringify(payload)``."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signature(body: bytes, secret: str = SECRET, *, timestamp: int | None = None) -> str:
    """A ``Jambonz-Signature`` value as jambonz-feature-server's ``_generateSigHeader`` builds it."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def signed(body: bytes, secret: str = SECRET, **kwargs: t.Any) -> dict[str, str]:
    return {**JSON_HEADERS, "Jambonz-Signature": signature(body, secret, **kwargs)}


def call_info(**fields: t.Any) -> dict[str, t.Any]:
    """``CallInfo.toJSON()`` of an answered inbound call: what every later hook carries."""
    info: dict[str, t.Any] = {
        "call_sid": CALL_SID,
        "direction": "inbound",
        "from": CALLER,
        "to": CALLED,
        "call_id": "7f1b9c1e-0a7e-123d-5e2a-0242ac120003",
        "sbc_callid": "2c5a3b9c-4e0f-4d2b-9f7a-5d0e3a1b2c4d",
        "sip_status": 200,
        "sip_reason": "OK",
        "call_status": "in-progress",
        "account_sid": "9351f46a-678c-43f5-b8a6-d4eb58d131af",
        "trace_id": "4f2b7a9e1c3d5e6f7a8b9c0d1e2f3a4b",
        "application_sid": "0dddaabf-0a30-43e3-84e8-426873b1a78b",
        "fs_sip_address": "10.0.1.5:5070",
        "originating_sip_ip": "203.0.113.7",
        "originating_sip_trunk_name": "carrier-one",
        "api_base_url": "http://10.0.1.5:3000/v1",
    }
    info.update(fields)
    return {name: value for name, value in info.items() if value is not None}


def call_hook(**fields: t.Any) -> dict[str, t.Any]:
    """The application's call_hook for a new inbound call (``session:new``)."""
    payload: dict[str, t.Any] = {
        "sip": {
            "headers": {
                "via": "SIP/2.0/UDP 10.0.1.2;branch=z9hG4bK-524287-1",
                "from": f"<sip:{CALLER}@203.0.113.7>;tag=as5f3a",
                "to": f"<sip:{CALLED}@10.0.1.5>",
                "call-id": "7f1b9c1e-0a7e-123d-5e2a-0242ac120003",
                "X-Originating-Carrier": "carrier-one",
            },
            "body": "v=0\r\no=- 1 1 IN IP4 203.0.113.7\r\n",
            "method": "INVITE",
            "version": "2.0",
            "uri": f"sip:{CALLED}@10.0.1.5:5070",
            "payload": [{"type": "application/sdp", "content": "v=0\r\n"}],
        },
        **call_info(sip_status=100, sip_reason="Trying", call_status="trying"),
        "caller_name": "",
        "local_sip_address": "10.0.1.5:5070",
        "has_recording": False,
        "service_provider_sid": "2708b1b3-2736-40ea-b502-c53d8396247f",
        "defaults": {
            "synthesizer": {"vendor": "google", "language": "en-US", "voice": "en-US-Standard-C"},
            "recognizer": {"vendor": "google", "language": "en-US"},
        },
        "env_vars": {"DESK": "sales"},
    }
    for name in ("api_base_url", "fs_sip_address"):
        payload.pop(name)
    payload.update(fields)
    return {name: value for name, value in payload.items() if value is not None}


def gather(text: str | None = "I would like to talk to sales.", **fields: t.Any) -> dict[str, t.Any]:
    """A gather verb's actionHook with a final transcript (``reason: speechDetected``)."""
    payload = call_info()
    payload.update(
        {
            "speech": {
                "language_code": "en-US",
                "channel_tag": 1,
                "is_final": True,
                "alternatives": [{"confidence": 0.92, "transcript": text}],
                "vendor": {"name": "deepgram", "evt": {"type": "Results", "is_final": True}},
            },
            "reason": "speechDetected",
            "stt_latency_ms": 312,
            "stt_talkspurts": [[1700000000100, 1700000001200]],
        }
    )
    payload.update(fields)
    return {name: value for name, value in payload.items() if value is not None}


def digits(buffer: str, **fields: t.Any) -> dict[str, t.Any]:
    return {**call_info(), "digits": buffer, "reason": "dtmfDetected", **fields}


def status(call_status: str = "in-progress", **fields: t.Any) -> dict[str, t.Any]:
    """A call_status_hook event."""
    return call_info(call_status=call_status, **fields)


def dial_result(dial_call_status: str, sip: int, **fields: t.Any) -> dict[str, t.Any]:
    """The dial verb's actionHook: the parent call's fields and how the dial went."""
    return {
        **call_info(),
        "dial_call_status": dial_call_status,
        "dial_sip_status": sip,
        "dial_call_sid": "5f0b6a77-1e34-4d3b-8f1b-7e1d6c2b9a10",
        "dial_sbc_callid": "0d2c9a34-77b1-4b2a-a1d3-3f9e2b6c8d45",
        **fields,
    }


def refer_result(refer_status: int, final: int | None = None, **fields: t.Any) -> dict[str, t.Any]:
    """The sip:refer verb's actionHook."""
    result: dict[str, t.Any] = {**call_info(), "refer_status": refer_status}
    if final is not None:
        result["final_referred_call_status"] = final
    return {**result, **fields}


def verb_problems(verbs: t.Any) -> list[str]:
    """Why jambonz would not run ``verbs`` as a webhook's answer; empty when it would."""
    if not isinstance(verbs, list):
        return ["jambonz needs a JSON array of verbs (malformed jambonz payload: must be array)."]
    problems = []
    for verb in verbs:
        if not isinstance(verb, dict) or verb.get("verb") not in VERBS:
            problems.append(f"{verb!r} is not a jambonz verb object.")
        elif verb["verb"] == "say" and not (isinstance(verb.get("text"), str) and verb["text"]):
            problems.append("say needs a text.")
        elif verb["verb"] == "dial" and not (isinstance(verb.get("target"), list) and verb["target"]):
            problems.append("dial needs a target list.")
        elif verb["verb"] == "sip:refer" and not isinstance(verb.get("referTo"), str):
            problems.append("sip:refer needs referTo.")
    return problems
