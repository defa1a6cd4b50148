"""The two sides of every benchmark: the extension, and hand-written Flask routes doing the same job.

The hand-written routes are what a careful developer writes without the extension: check the
shared secret, read the JSON, unwrap the envelope, pick a destination by keyword, return the
platform's JSON. They validate nothing beyond what they touch.
"""

from __future__ import annotations

import hmac
import typing as t

from flask import Flask
from flask import Response
from flask import abort
from flask import jsonify
from flask import request

from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer.store import MemoryStore

VAPI_SECRET = "bench-vapi-secret"
SIPGATE_TOKEN = "bench-sipgate-token"

DEPARTMENTS = {"sales": "+31207948450", "billing": "+31207948451", "support": "+31207948452"}
RECEPTION = "+31207948400"


def pick(text: str) -> str:
    lowered = text.lower()
    for name, number in DEPARTMENTS.items():
        if name in lowered:
            return number
    return RECEPTION


def extension_app() -> Flask:
    transfers = CallTransfer(store=MemoryStore())
    for name, number in DEPARTMENTS.items():
        transfers.add_destination(name, NumberDestination(number))

    @transfers.on_request
    def route(call: TransferRequest) -> str:
        text = call.text.lower()
        for name in DEPARTMENTS:
            if name in text:
                return name
        return RECEPTION

    app = Flask("extension")
    app.config.update(CALLTRANSFER_VAPI_SECRET=VAPI_SECRET, CALLTRANSFER_SIPGATE_TOKEN=SIPGATE_TOKEN)
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
        sent = request.headers.get("X-Vapi-Secret", "")
        if not hmac.compare_digest(sent.encode(), VAPI_SECRET.encode()):
            abort(401)
        body = request.get_json(force=True)
        message = body.get("message", body)
        if message.get("type") != "transfer-destination-request":
            return jsonify({})
        number = pick(_last_user_text(message))
        return jsonify({"destination": {"type": "number", "number": number, "numberE164CheckEnabled": True}})

    @app.post("/calltransfer/sipgate")
    def sipgate() -> t.Any:
        if not hmac.compare_digest(request.headers.get("X-API-TOKEN", "").encode(), SIPGATE_TOKEN.encode()):
            abort(401)
        event = request.get_json(force=True)
        if event.get("type") != "user_speak":
            return Response(status=204)
        session = event["session"]
        return jsonify(
            {
                "type": "transfer",
                "session_id": session["id"],
                "target_phone_number": pick(event.get("text") or ""),
                "caller_id_name": session["from_phone_number"],
                "caller_id_number": session["from_phone_number"],
            }
        )

    return app
