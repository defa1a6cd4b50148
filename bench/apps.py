"""The two sides of every benchmark: the extension, and hand-written Flask routes doing the same job.

The hand-written routes are the smallest a careful developer writes without the extension: check
the credential with ``hmac.compare_digest`` (VoiceDock: its HMAC and timestamp window), read the
JSON with ``request.get_json()``, find the caller's last utterance or the tool call, pick a
destination by keyword and return the platform's JSON. They validate nothing beyond what they touch.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import typing as t

from flask import Flask
from flask import Response
from flask import abort
from flask import request

from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer.store import MemoryStore

VAPI_SECRET = "bench-vapi-secret"
SIPGATE_TOKEN = "bench-sipgate-token"
VOICEDOCK_SECRET = "bench-voicedock-secret"
VOICEDOCK_TOOL = "transfer_call"

DEPARTMENTS = {"sales": "+31207948450", "billing": "+31207948451", "support": "+31207948452"}
RECEPTION = "+31207948400"


def pick(text: str) -> str:
    lowered = text.lower()
    for name, number in DEPARTMENTS.items():
        if name in lowered:
            return number
    return RECEPTION


def extension_app() -> Flask:
    """The extension; with ``BENCH_STORE_URL`` set, on that store as a deployment would be
    (``bench/load.py`` uses the SQLite default of ``make run``), else on a memory store."""
    store_url = os.environ.get("BENCH_STORE_URL")
    transfers = CallTransfer(store=None if store_url else MemoryStore())
    for name, number in DEPARTMENTS.items():
        transfers.add_destination(name, NumberDestination(number))

    @transfers.on_request
    def route(call: TransferRequest) -> str:
        text = str(call.arguments.get("department") or call.text).lower()
        for name in DEPARTMENTS:
            if name in text:
                return name
        return RECEPTION

    app = Flask("extension")
    app.config.update(
        CALLTRANSFER_VAPI_SECRET=VAPI_SECRET,
        CALLTRANSFER_SIPGATE_TOKEN=SIPGATE_TOKEN,
        CALLTRANSFER_VOICEDOCK_SECRET=VOICEDOCK_SECRET,
        CALLTRANSFER_VOICEDOCK_API_KEY="bench-api-key",
        CALLTRANSFER_VOICEDOCK_TOOLS=[VOICEDOCK_TOOL],
    )
    if store_url:
        app.config["CALLTRANSFER_STORE_URL"] = store_url
    # Settings the deployment gives through the environment, as the example app reads them (the
    # shipped gunicorn config sets CALLTRANSFER_DECISION_LOG).
    app.config.update({key: value for key, value in os.environ.items() if key == "CALLTRANSFER_DECISION_LOG"})
    transfers.init_app(app)
    return app


def _last_user_text(message: dict[str, t.Any]) -> str:
    artifact = message.get("artifact") or {}
    for entry in reversed(artifact.get("messages") or []):
        if isinstance(entry, dict) and entry.get("role") == "user" and isinstance(entry.get("message"), str):
            return t.cast(str, entry["message"])
    return ""


def handwritten_app() -> Flask:
    app = Flask("handwritten")

    @app.post("/calltransfer/vapi")
    def vapi() -> t.Any:
        if not hmac.compare_digest(request.headers.get("X-Vapi-Secret", "").encode(), VAPI_SECRET.encode()):
            abort(401)
        message = request.get_json()["message"]
        number = pick(_last_user_text(message))
        return {"destination": {"type": "number", "number": number, "numberE164CheckEnabled": True}}

    @app.post("/calltransfer/sipgate")
    def sipgate() -> t.Any:
        if not hmac.compare_digest(request.headers.get("X-API-TOKEN", "").encode(), SIPGATE_TOKEN.encode()):
            abort(401)
        event = request.get_json()
        if event.get("type") != "user_speak":
            return Response(status=204)
        session = event["session"]
        return {
            "type": "transfer",
            "session_id": session["id"],
            "target_phone_number": pick(event.get("text") or ""),
            "caller_id_name": session["from_phone_number"],
            "caller_id_number": session["from_phone_number"],
        }

    @app.post("/calltransfer/voicedock")
    def voicedock() -> t.Any:
        stamp = request.headers.get("X-Webhook-Timestamp", "")
        body = request.get_data()
        signed = stamp.encode() + b"." + body
        expected = hmac.new(VOICEDOCK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
        sent = request.headers.get("X-Webhook-Signature", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            abort(401)
        if not hmac.compare_digest(sent.encode(), f"sha256={expected}".encode()):
            abort(401)
        results = []
        for tool_call in request.get_json()["message"].get("tool_call_list") or []:
            function = tool_call["function"]
            if function["name"] == VOICEDOCK_TOOL:
                pick(str(function.get("arguments", {}).get("department", "")))
                # The call-control request is left out here, as the extension's is in the benchmark.
                results.append({"tool_call_id": tool_call["id"], "result": {"status": "transferring"}})
        return {"results": results}

    return app
