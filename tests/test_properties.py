"""Property-based tests of every platform route: whatever arrives, the answer is well-formed.

Random and mutated payloads (fields removed, retyped, emptied, enlarged; invalid UTF-8; truncated
JSON; deep nesting; duplicated keys; huge strings; wrong content types) and random headers.
Invariants: never a 5xx; every response is a 400/401/413 JSON error or a reply valid for the
platform; handlers never run for unverified requests.

``make test`` runs a few hundred examples per route; ``make fuzz`` runs many more.
"""

from __future__ import annotations

import json
import os
import time
import typing as t
import zlib

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from flask_calltransfer import AssistantDestination
from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse
from flask_calltransfer import testing
from tests.recorder import Recorder

settings.register_profile(
    "default", max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

VAPI_SECRET = "prop-vapi-secret"
SIPGATE_TOKEN = "prop-sipgate-token"
VOICEDOCK_SECRET = "prop-voicedock-secret"
MAX_BODY = 65536

# Handler calls, so a test can tell whether handlers ran for a request.
CALLS: list[TransferRequest] = []


def route(call: TransferRequest) -> t.Any:
    """Answers with every kind of outcome, chosen by the request, so every path is exercised."""
    CALLS.append(call)
    choice = zlib.crc32(repr((call.text, call.arguments, call.caller)).encode()) % 8
    if choice == 0:
        return None
    if choice == 1:
        refuse("Closed right now.")
    if choice == 2:
        raise RuntimeError("a handler bug")
    if choice == 3:
        return SipDestination("sip:desk@pbx.example.com", headers={"X-A": "1"})
    if choice == 4:
        return AssistantDestination("Billing")
    if choice == 5:
        return "no-such-name"
    if choice == 6:
        return NumberDestination("+31612345678", message="Connecting you.")
    return "+31612345678"


_recorder = Recorder()


def _app() -> Flask:
    transfers = CallTransfer()
    transfers.on_request(route)
    app = Flask(__name__)
    app.config.update(
        CALLTRANSFER_VAPI_SECRET=VAPI_SECRET,
        CALLTRANSFER_VAPI_TOOLS=["transferToHuman"],
        CALLTRANSFER_VAPI_CONTROL_HOSTS=[_recorder.url],
        CALLTRANSFER_SIPGATE_TOKEN=SIPGATE_TOKEN,
        CALLTRANSFER_VOICEDOCK_SECRET=VOICEDOCK_SECRET,
        CALLTRANSFER_VOICEDOCK_TOOLS=["transfer_call"],
        CALLTRANSFER_VOICEDOCK_API_KEY="k",
        CALLTRANSFER_VOICEDOCK_API_URL=f"{_recorder.url}/api/v1",
        CALLTRANSFER_STORE_URL="memory://",
        CALLTRANSFER_MAX_BODY_BYTES=MAX_BODY,
        CALLTRANSFER_HANDLER_TIMEOUT=2,
        CALLTRANSFER_HTTP_RETRIES=0,
    )
    transfers.init_app(app)
    return app


CLIENT: FlaskClient = _app().test_client()

# Payload strategies --------------------------------------------------------------------------------

texts = st.text(max_size=40)
numbers = st.one_of(st.none(), st.sampled_from(["+31612345678", "06 12345678", "anonymous", ""]), texts)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


_CLOCK_KEYS = {"time", "timestamp", "endTime", "secondsFromStart"}


def _steady(value: t.Any) -> t.Any:
    """Replace clock readings, so a payload drawn twice from the same choices is the same."""
    if isinstance(value, dict):
        return {k: 1735689600000 if k in _CLOCK_KEYS else _steady(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


@st.composite
def vapi_payloads(draw: st.DrawFn) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], _steady(draw(_vapi_payloads())))


@st.composite
def _vapi_payloads(draw: st.DrawFn) -> dict[str, t.Any]:
    if draw(st.booleans()):
        return testing.vapi_transfer_request(
            call_id="call-1",
            text=draw(texts),
            caller=draw(numbers),
            called=draw(numbers),
            wrapped=draw(st.booleans()),
            outbound=draw(st.booleans()),
        )
    if draw(st.booleans()):
        return testing.vapi_tool_calls(
            draw(st.sampled_from(["transferToHuman", "other"])),
            draw(st.one_of(st.dictionaries(st.text(max_size=5), texts, max_size=3), texts)),
            shape=draw(st.sampled_from(["function", "with_tool", "flat"])),
            control_url=f"{_recorder.url}/control",
            text=draw(texts),
            call_id="call-1",
            tool_call_id=draw(st.sampled_from(["tc-1", "tc-2", "tc-3"])),
        )
    return testing.vapi_event(
        draw(st.sampled_from(["status-update", "end-of-call-report", "hang", "x"])), call_id="call-1"
    )


@st.composite
def sipgate_payloads(draw: st.DrawFn) -> dict[str, t.Any]:
    event = draw(
        st.sampled_from(
            [
                "session_start",
                "user_speak",
                "user_input_timeout",
                "assistant_speak",
                "assistant_speech_ended",
                "session_end",
                "unknown_event",
            ]
        )
    )
    return testing.sipgate_event(
        event,
        session_id=draw(st.sampled_from(["s1", "s2", "s3"])),
        text=draw(st.one_of(st.none(), texts)),
        caller=draw(st.sampled_from(["+4915799912345", "anonymous", ""])),
        direction=draw(st.sampled_from(["inbound", "outbound"])),
    )


@st.composite
def voicedock_payloads(draw: st.DrawFn) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], _steady(draw(_voicedock_payloads())))


@st.composite
def _voicedock_payloads(draw: st.DrawFn) -> dict[str, t.Any]:
    if draw(st.booleans()):
        return testing.voicedock_tool_calls(
            draw(st.sampled_from(["transfer_call", "lookup"])),
            draw(st.one_of(st.dictionaries(st.text(max_size=5), texts, max_size=3), texts)),
            call_id="call-1",
            tool_call_id=draw(st.sampled_from(["tc-1", "tc-2", "tc-3"])),
            key=draw(st.sampled_from(["arguments", "parameters"])),
            caller=draw(numbers),
            outbound=draw(st.booleans()),
        )
    return testing.voicedock_event(
        draw(st.sampled_from(["status-update", "end-of-call-report", "assistant-request"])), call_id="call-1"
    )


def _paths(value: t.Any, prefix: tuple[t.Any, ...] = ()) -> list[tuple[t.Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _parent(root: t.Any, path: tuple[t.Any, ...]) -> t.Any:
    for key in path[:-1]:
        root = root[key]
    return root


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, t.Any]]) -> dict[str, t.Any]:
    payload = draw(base)
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(payload)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(payload, path), path[-1]
        operation = draw(st.sampled_from(["remove", "retype", "empty", "enlarge"]))
        if operation == "remove":
            del parent[key]
        elif operation == "retype":
            parent[key] = draw(json_values)
        elif operation == "empty":
            parent[key] = draw(st.sampled_from(["", {}, [], None, 0]))
        else:
            parent[key] = "x" * draw(st.integers(1000, 20000))
    return payload


@st.composite
def bodies(draw: st.DrawFn, base: st.SearchStrategy[dict[str, t.Any]]) -> bytes:
    data = json.dumps(draw(mutated(base))).encode()
    damage = draw(
        st.sampled_from(["none", "none", "none", "truncate", "utf8", "nest", "duplicate", "huge", "junk"])
    )
    if damage == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if damage == "utf8":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"])) + data[at:]
    if damage == "nest":
        depth = draw(st.integers(1, 50000))
        return b'{"a":' * depth + data + b"}" * depth
    if damage == "duplicate" and data.startswith(b"{"):
        return b'{"type": 5, "message": [],' + data[1:]
    if damage == "huge":
        return (
            data[:-1] + b', "pad": "' + b"y" * draw(st.integers(MAX_BODY - len(data), MAX_BODY * 2)) + b'"}'
        )
    if damage == "junk":
        return draw(st.binary(max_size=200))
    return data


header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
content_types = st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
)


def _post(path: str, body: bytes, headers: dict[str, str]) -> t.Any:
    CALLS.clear()
    return CLIENT.post(path, data=body, headers=headers)


def _check_errors(response: t.Any) -> bool:
    """Common invariants; returns True when the response is an error answer."""
    assert response.status_code < 500, response.data[:300]
    if response.status_code in (400, 401, 413):
        assert response.mimetype == "application/json"
        assert response.json["code"] == response.status_code
        assert isinstance(response.json["message"], str)
        return True
    assert response.status_code in (200, 204), response.status_code
    return False


def _signed_or_not(
    draw: st.DrawFn, signed: dict[str, str], credentials: tuple[str, ...]
) -> tuple[dict[str, str], bool]:
    """Headers that are signed, tampered with, or random; and whether the credentials still hold."""
    choice = draw(st.sampled_from(["signed", "signed", "signed", "random", "tampered"]))
    content_type = draw(content_types)
    noise = draw(
        st.dictionaries(st.sampled_from([*signed, "X-Other", "Authorization"]), header_values, max_size=4)
    )
    if choice == "signed":
        headers = {**signed, "Content-Type": content_type}
    elif choice == "tampered":
        headers = {**signed, **noise, "Content-Type": content_type}
    else:
        headers = {**noise, "Content-Type": content_type}
    return headers, all(headers.get(name) == signed[name] for name in credentials)


# Vapi ---------------------------------------------------------------------------------------------


@given(st.data())
def test_vapi_route(data: st.DataObject) -> None:
    body = data.draw(bodies(vapi_payloads()))
    headers, authentic = _signed_or_not(data.draw, {"X-Vapi-Secret": VAPI_SECRET}, ("X-Vapi-Secret",))
    if authentic and data.draw(st.booleans()):
        headers = {"Authorization": f"Bearer {VAPI_SECRET}", "Content-Type": headers["Content-Type"]}
    response = _post("/calltransfer/vapi", body, headers)
    if not authentic:
        assert CALLS == []
    if _check_errors(response):
        return
    assert authentic and response.status_code == 200
    assert testing.reply_problems("vapi", response.status_code, response.data) == []


# sipgate ------------------------------------------------------------------------------------------


@given(st.data())
def test_sipgate_route(data: st.DataObject) -> None:
    body = data.draw(bodies(sipgate_payloads()))
    headers, authentic = _signed_or_not(data.draw, {"X-API-TOKEN": SIPGATE_TOKEN}, ("X-API-TOKEN",))
    response = _post("/calltransfer/sipgate", body, headers)
    if not authentic:
        assert CALLS == []
    if _check_errors(response):
        return
    assert authentic
    assert testing.reply_problems("sipgate", response.status_code, response.data) == []


# VoiceDock ----------------------------------------------------------------------------------------


@given(st.data())
def test_voicedock_route(data: st.DataObject) -> None:
    body = data.draw(bodies(voicedock_payloads()))
    stamp = int(time.time()) + data.draw(st.sampled_from([0, 0, 0, -1000, 1000]))
    headers, authentic = _signed_or_not(
        data.draw,
        testing.voicedock_headers(body, VOICEDOCK_SECRET, timestamp=stamp),
        ("X-Webhook-Signature", "X-Webhook-Timestamp"),
    )
    authentic = authentic and abs(stamp - time.time()) < 300
    response = _post("/calltransfer/voicedock", body, headers)
    if not authentic:
        assert CALLS == []
    if _check_errors(response):
        return
    assert authentic and response.status_code == 200
    assert testing.reply_problems("voicedock", response.status_code, response.data) == []
