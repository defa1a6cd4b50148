"""VoiceDock: signed tool-call webhooks delivered through a real local stand-in for the API."""

from __future__ import annotations

import concurrent.futures
import logging
import time
import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse
from flask_calltransfer import testing
from tests.conftest import MakeApp
from tests.recorder import Recorder
from tests.recorder import Reply

SECRET = "voicedock-webhook-secret"
URL = "/calltransfer/voicedock"
CALL = "5c4d030f-1111-2222-3333-444455556666"
CONTROL = f"/api/v1/calls/{CALL}/control"


class VoiceDock:
    def __init__(self, app: Flask, client: FlaskClient, recorder: Recorder) -> None:
        self.app = app
        self.client = client
        self.recorder = recorder

    def post(self, body: dict[str, t.Any] | bytes, **header_kwargs: t.Any) -> t.Any:
        data = body if isinstance(body, bytes) else testing.dumps(body)
        return self.client.post(
            URL, data=data, headers=testing.voicedock_headers(data, SECRET, **header_kwargs)
        )

    def tool_call(self, arguments: t.Any = None, **fields: t.Any) -> t.Any:
        fields.setdefault("call_id", CALL)
        return self.post(testing.voicedock_tool_calls("transfer_call", arguments, **fields))


def build(
    make_app: MakeApp, recorder: Recorder, transfers: CallTransfer | None = None, **config: t.Any
) -> VoiceDock:
    settings = {
        "CALLTRANSFER_VOICEDOCK_SECRET": SECRET,
        "CALLTRANSFER_VOICEDOCK_TOOLS": ["transfer_call"],
        "CALLTRANSFER_VOICEDOCK_API_KEY": "vd-api-key",
        "CALLTRANSFER_VOICEDOCK_API_URL": f"{recorder.url}/api/v1",
        **config,
    }
    app, _ = make_app(transfers, **settings)
    return VoiceDock(app, app.test_client(), recorder)


@pytest.fixture
def voicedock(make_app: MakeApp, recorder: Recorder, transfers: CallTransfer) -> VoiceDock:
    return build(make_app, recorder, transfers)


def result(response: t.Any) -> t.Any:
    assert response.status_code == 200
    (entry,) = response.json["results"]
    return entry


def test_tool_call_is_delivered_through_call_control(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    seen: list[TransferRequest] = []

    @transfers.on_request
    def route(call: TransferRequest) -> NumberDestination:
        seen.append(call)
        return NumberDestination("+31612345678", message="One moment, I'm transferring you to a colleague.")

    with testing.record_signals(voicedock.app) as heard:
        response = voicedock.tool_call({"department": "sales"}, tool_call_id="tool_abc123def456")
    assert response.json == {
        "results": [{"tool_call_id": "tool_abc123def456", "result": {"status": "transferring"}}]
    }
    (sent,) = voicedock.recorder.received
    assert (sent.method, sent.path) == ("POST", CONTROL)
    assert sent.headers["Authorization"] == "Bearer vd-api-key"
    assert sent.json == {
        "type": "transfer",
        "destination": "+31612345678",
        "message": "One moment, I'm transferring you to a colleague.",
    }
    (call,) = seen
    assert (call.platform, call.event, call.call_id) == ("voicedock", "tool-calls", CALL)
    assert (call.tool_call_id, call.tool_name, call.arguments) == (
        "tool_abc123def456",
        "transfer_call",
        {"department": "sales"},
    )
    assert (call.caller, call.called) == ("+31612345678", "+31850835037")
    assert heard.names() == ["transfer-requested", "transfer-resolved"]


@pytest.mark.parametrize(
    ("arguments", "key"),
    [
        ({"department": "sales"}, "arguments"),
        ('{"department": "sales"}', "arguments"),
        ({"department": "sales"}, "parameters"),
    ],
)
def test_argument_forms(transfers: CallTransfer, voicedock: VoiceDock, arguments: t.Any, key: str) -> None:
    seen: list[dict[str, t.Any]] = []
    transfers.on_request(lambda call: seen.append(call.arguments))
    voicedock.post(testing.voicedock_tool_calls("transfer_call", arguments, key=key, call_id=CALL))
    assert seen == [{"department": "sales"}]


def test_bad_argument_strings_give_empty_arguments(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    seen: list[dict[str, t.Any]] = []
    transfers.on_request(lambda call: seen.append(call.arguments))
    voicedock.tool_call("{not json")
    voicedock.tool_call("[1, 2]")
    assert seen == [{}, {}]


def test_sip_destination(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    transfers.on_request(lambda call: "sip:desk@pbx.example.com")
    assert result(voicedock.tool_call())["result"] == {"status": "transferring"}
    assert voicedock.recorder.received[0].json == {
        "type": "transfer",
        "destination": "sip:desk@pbx.example.com",
    }


def test_outbound_call_caller(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    seen: list[TransferRequest] = []
    transfers.on_request(lambda call: seen.append(call))
    voicedock.tool_call(caller="+31850835037", called="+31612345678", outbound=True)
    assert (seen[0].caller, seen[0].called) == ("+31850835037", "+31612345678")


def test_older_camelcase_tool_calls_are_transfers_too(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    seen: list[TransferRequest] = []
    transfers.on_request(lambda call: seen.append(call) or "+31612345678")
    # The older (Flireo) pages' shape: toolCallList, phoneNumber, inboundPhoneCall, toolCallId.
    body = {
        "message": {
            "type": "tool-calls",
            "call": {"id": CALL, "type": "inboundPhoneCall", "status": "in-progress"},
            "phoneNumber": {"number": "+31850835037"},
            "customer": {"number": "+31612345678"},
            "toolCallList": [
                {
                    "id": "tool_camel",
                    "type": "function",
                    "function": {"name": "transfer_call", "arguments": {}},
                }
            ],
        }
    }
    response = voicedock.post(body)
    assert response.json == {"results": [{"toolCallId": "tool_camel", "result": {"status": "transferring"}}]}
    assert [r.path for r in voicedock.recorder.received] == [CONTROL]
    (call,) = seen
    assert (call.caller, call.called, call.tool_call_id) == ("+31612345678", "+31850835037", "tool_camel")


def test_a_tool_call_event_without_a_list_is_logged(
    voicedock: VoiceDock, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"message": {"type": "tool-calls", "call": {"id": CALL}, "toolCalls": []}}
    response = voicedock.post(body)
    assert (response.status_code, response.json) == (200, {})
    assert "has no tool_call_list (nor the older toolCallList)" in caplog.text
    assert voicedock.recorder.received == []


def test_refusal_is_the_tool_error_and_sends_nothing(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    transfers.on_request(lambda call: refuse("Sales is closed; offer to take a message."))
    entry = result(voicedock.tool_call())
    assert entry["result"] == {"status": "failed", "error": "Sales is closed; offer to take a message."}
    assert voicedock.recorder.received == []


@pytest.mark.parametrize(
    ("destination", "attribute"),
    [
        (SipDestination("sip:desk@pbx.example.com", headers={"X-A": "1"}), "SIP headers"),
        (NumberDestination("+31612345678", caller_id="+31850835037"), "caller_id"),
        (NumberDestination("+31612345678", extension="12"), "extension"),
        (NumberDestination("+31612345678", mode="warm-transfer-say-message"), "mode"),
        (NumberDestination("8001", e164=False), "non-E.164 number"),
    ],
)
def test_unsupported_destinations_send_nothing(
    transfers: CallTransfer, voicedock: VoiceDock, destination: t.Any, attribute: str
) -> None:
    transfers.on_request(lambda call: destination)
    with testing.record_signals(voicedock.app) as heard:
        entry = result(voicedock.tool_call())
    assert entry["result"]["status"] == "failed"
    assert voicedock.recorder.received == []
    assert heard.one("transfer-failed")["exception"].attribute == attribute


def test_unsupported_then_on_error_is_delivered(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    transfers.on_request(lambda call: SipDestination("sip:desk@pbx.example.com", headers={"X-A": "1"}))
    transfers.on_error(lambda call, exc: "+31612345678")
    assert result(voicedock.tool_call())["result"] == {"status": "transferring"}
    assert voicedock.recorder.received[0].json["destination"] == "+31612345678"


@pytest.mark.parametrize("status", [400, 404])
def test_rejected_delivery_is_a_tool_error(
    transfers: CallTransfer, voicedock: VoiceDock, status: int
) -> None:
    transfers.on_request(lambda call: "+31612345678")
    voicedock.recorder.script(
        CONTROL, Reply(status=status, body={"error": {"code": "x", "message": "Call is not active"}})
    )
    with testing.record_signals(voicedock.app) as heard:
        response = voicedock.tool_call()
    entry = result(response)
    assert entry["result"]["status"] == "failed"
    assert "could not be started" in entry["result"]["error"]
    failed = heard.one("transfer-failed")
    assert failed["stage"] == "deliver"
    assert failed["exception"].cause.status == status
    assert heard.named("transfer-resolved") == []
    assert len(voicedock.recorder.received) == 1


def test_429_then_success(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    transfers.on_request(lambda call: "+31612345678")
    voicedock.recorder.script(
        CONTROL, Reply(status=429, body={"error": "rate_limit_exceeded"}, headers={"Retry-After": "0"})
    )
    assert result(voicedock.tool_call())["result"] == {"status": "transferring"}
    assert len(voicedock.recorder.received) == 2


@pytest.mark.parametrize(("retry", "attempts"), [(False, (1, 1)), (True, (2, 3))])
def test_5xx_inside_the_deadline(
    make_app: MakeApp, recorder: Recorder, retry: bool, attempts: tuple[int, int]
) -> None:
    # A control POST answered 5xx may have run: it is sent once unless the app opts into retries.
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31612345678")
    voicedock = build(
        make_app,
        recorder,
        transfers,
        CALLTRANSFER_DELIVERY_TIMEOUT=2.0,
        CALLTRANSFER_HTTP_RETRY_SERVER_ERRORS=retry,
    )
    recorder.script(CONTROL, *[Reply(status=503, delay=0.3)] * 10)
    started = time.monotonic()
    entry = result(voicedock.tool_call())
    assert time.monotonic() - started < 2.5
    assert entry["result"]["status"] == "failed"
    assert attempts[0] <= len(recorder.received) <= attempts[1]


def test_duplicate_tool_call_is_delivered_once(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    calls: list[str] = []
    transfers.on_request(lambda call: calls.append("x") or "+31612345678")
    body = testing.dumps(testing.voicedock_tool_calls("transfer_call", tool_call_id="tool_dup", call_id=CALL))
    first = voicedock.post(body)
    second = voicedock.post(body)
    assert first.data == second.data
    assert len(voicedock.recorder.received) == 1
    assert calls == ["x"]


def test_concurrent_duplicates_wait_for_the_first_reply(
    transfers: CallTransfer, voicedock: VoiceDock
) -> None:
    transfers.on_request(lambda call: "+31612345678")
    voicedock.recorder.script(CONTROL, Reply(delay=0.5))
    body = testing.dumps(
        testing.voicedock_tool_calls("transfer_call", tool_call_id="tool_race", call_id=CALL)
    )
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        replies = list(
            pool.map(
                lambda _: (
                    voicedock.app.test_client()
                    .post(URL, data=body, headers=testing.voicedock_headers(body, SECRET))
                    .data
                ),
                range(4),
            )
        )
    assert len(set(replies)) == 1
    assert b'"transferring"' in replies[0]
    assert len(voicedock.recorder.received) == 1


def test_other_tools_and_events_are_not_transfers(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    seen: list[TransferRequest] = []
    transfers.on_request(lambda call: seen.append(call))
    with testing.record_signals(voicedock.app) as heard:
        responses = [
            voicedock.post(testing.voicedock_tool_calls("lookup_contact", {"query": "John"})),
            voicedock.post(testing.voicedock_event("status-update", status="in-progress")),
            voicedock.post(testing.voicedock_event("end-of-call-report", duration_seconds=42, summary="ok")),
            voicedock.post(testing.voicedock_event("assistant-request")),
        ]
    assert [(r.status_code, r.json) for r in responses] == [(200, {})] * 4
    assert seen == []
    assert [e["event"] for e in heard.named("event-received")] == [
        "tool-calls",
        "status-update",
        "end-of-call-report",
        "assistant-request",
    ]


def test_on_event_answers_other_tools(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    @transfers.on_event("tool-calls", platform="voicedock")
    def lookup(event: t.Any) -> dict[str, t.Any]:
        tool = event.payload["tool_call_list"][0]
        return {"results": [{"tool_call_id": tool["id"], "result": {"name": "John Smith"}}]}

    response = voicedock.post(testing.voicedock_tool_calls("lookup_contact", tool_call_id="t1"))
    assert response.json == {"results": [{"tool_call_id": "t1", "result": {"name": "John Smith"}}]}


def test_event_type_from_the_header(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    body = testing.voicedock_tool_calls("transfer_call", call_id=CALL)
    del body["message"]["type"]
    data = testing.dumps(body)
    transfers.on_request(lambda call: "+31612345678")
    headers = testing.voicedock_headers(data, SECRET)
    headers["X-Webhook-Event"] = "tool-calls"
    response = voicedock.client.post(URL, data=data, headers=headers)
    assert result(response)["result"] == {"status": "transferring"}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"message": ["Missing data for required field."]}),
        ({"message": "x"}, {"message": {"_schema": ["Invalid input type."]}}),
        ({"message": {"call": {}}}, {"message": {"type": ["Missing data for required field."]}}),
        (
            {"message": {"type": "tool-calls", "call": {"id": 5}}},
            {"message": {"call": {"id": ["Not a valid string."]}}},
        ),
        (
            {"message": {"type": "tool-calls", "tool_call_list": {}}},
            {"message": {"tool_call_list": ["Not a valid list."]}},
        ),
    ],
)
def test_malformed_payloads_are_400(voicedock: VoiceDock, body: t.Any, errors: t.Any) -> None:
    response = voicedock.post(body)
    assert response.status_code == 400
    assert response.json["errors"] == errors


# Verification ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("none", 200),
        ("no prefix", 200),
        ("rotated secret", 200),
        ("wrong secret", 401),
        ("missing signature", 401),
        ("missing timestamp", 401),
        ("stale", 401),
        ("future", 401),
        ("tampered", 401),
    ],
)
def test_signature_matrix(make_app: MakeApp, recorder: Recorder, change: str, status: int) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31612345678")
    voicedock = build(make_app, recorder, transfers, CALLTRANSFER_VOICEDOCK_SECRET=["old-secret", SECRET])
    body = testing.dumps(testing.voicedock_tool_calls("transfer_call", call_id=CALL))
    headers = testing.voicedock_headers(body, SECRET)
    if change == "no prefix":
        headers["X-Webhook-Signature"] = headers["X-Webhook-Signature"].removeprefix("sha256=")
    elif change == "rotated secret":
        headers = testing.voicedock_headers(body, "old-secret")
    elif change == "wrong secret":
        headers = testing.voicedock_headers(body, "guess")
    elif change == "missing signature":
        del headers["X-Webhook-Signature"]
    elif change == "missing timestamp":
        del headers["X-Webhook-Timestamp"]
    elif change == "stale":
        headers = testing.voicedock_headers(body, SECRET, timestamp=int(time.time()) - 301)
    elif change == "future":
        headers = testing.voicedock_headers(body, SECRET, timestamp=int(time.time()) + 301)
    elif change == "tampered":
        body = body.replace(b"+31612345678", b"+31612345679")
    response = voicedock.client.post(URL, data=body, headers=headers)
    assert response.status_code == status
    assert len(recorder.received) == (1 if status == 200 else 0)


def test_max_age_is_configurable(make_app: MakeApp, recorder: Recorder) -> None:
    voicedock = build(make_app, recorder, CALLTRANSFER_VOICEDOCK_MAX_AGE=1000)
    body = testing.dumps(testing.voicedock_event("status-update"))
    response = voicedock.client.post(
        URL, data=body, headers=testing.voicedock_headers(body, SECRET, timestamp=int(time.time()) - 900)
    )
    assert response.status_code == 200


def test_tools_need_an_api_key(make_app: MakeApp) -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_VOICEDOCK_API_KEY") as info:
        make_app(CALLTRANSFER_VOICEDOCK_SECRET=SECRET, CALLTRANSFER_VOICEDOCK_TOOLS=["transfer_call"])
    assert info.value.key == "CALLTRANSFER_VOICEDOCK_API_KEY"


def test_tools_must_be_a_list(make_app: MakeApp) -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_VOICEDOCK_TOOLS must be a list"):
        make_app(CALLTRANSFER_VOICEDOCK_SECRET=SECRET, CALLTRANSFER_VOICEDOCK_TOOLS="transfer_call")


# Static tools and the client on the extension ------------------------------------------------------


def test_voicedock_transfer_tool_from_the_directory(
    transfers: CallTransfer, caplog: pytest.LogCaptureFixture
) -> None:
    transfers.add_destination(
        "sales",
        NumberDestination(
            "+31612345678",
            description="Sales team - for pricing and quotes",
            message="I'm transferring you to our sales team, one moment please.",
        ),
    )
    transfers.add_destination("support", NumberDestination("+31687654321"))
    transfers.add_destination("pbx", SipDestination("sip:desk@pbx.example.com"))
    # Installed without what the tool cannot carry, these would transfer differently: left out.
    transfers.add_destination("desk", NumberDestination("+31687654322", extension="12"))
    transfers.add_destination("warm", NumberDestination("+31687654323", mode="warm-transfer-say-summary"))
    with caplog.at_level(logging.WARNING, logger="flask_calltransfer"):
        tool = transfers.voicedock_transfer_tool()
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("'desk' sets extension" in text for text in warnings)
    assert any("'warm' sets mode" in text for text in warnings)
    assert tool == {
        "type": "transfer_call",
        "destinations": [
            {
                "type": "number",
                "number": "+31612345678",
                "description": "Sales team - for pricing and quotes",
                "message": "I'm transferring you to our sales team, one moment please.",
            },
            {"type": "number", "number": "+31687654321", "description": "support"},
        ],
    }


def test_install_the_tool_through_the_client(transfers: CallTransfer, voicedock: VoiceDock) -> None:
    transfers.add_destination("sales", NumberDestination("+31612345678", description="Sales"))
    voicedock.recorder.script("/api/v1/assistants/a-1", Reply(body={"llm_config": {"model": "m"}}))
    with voicedock.app.app_context():
        transfers.voicedock.update_assistant_tools("a-1", [transfers.voicedock_transfer_tool()])
    patch = voicedock.recorder.received[-1]
    assert patch.json == {"llm_config": {"model": "m", "tools": [transfers.voicedock_transfer_tool()]}}


def test_client_needs_an_api_key(make_app: MakeApp, transfers: CallTransfer) -> None:
    app, _ = make_app(transfers)
    with app.app_context(), pytest.raises(RuntimeError, match="CALLTRANSFER_VOICEDOCK_API_KEY"):
        transfers.voicedock  # noqa: B018


# Outbound faults: the tool result still arrives, inside the deadline --------------------------------


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("connection refused", "failed"),
        ("answer slower than the deadline", "failed"),
        ("slow answer inside the deadline", "transferring"),
        ("malformed body", "failed"),
        ("html error page", "failed"),
    ],
)
def test_outbound_faults(make_app: MakeApp, recorder: Recorder, fault: str, status: str) -> None:
    from tests.servers import free_port

    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31612345678")
    config: dict[str, t.Any] = {"CALLTRANSFER_DELIVERY_TIMEOUT": 1.5, "CALLTRANSFER_HTTP_TIMEOUT": 1.0}
    if fault == "connection refused":
        config["CALLTRANSFER_VOICEDOCK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/v1"
    voicedock = build(make_app, recorder, transfers, **config)
    if fault == "answer slower than the deadline":
        recorder.script(CONTROL, Reply(delay=3.0))
    elif fault == "slow answer inside the deadline":
        recorder.script(CONTROL, Reply(delay=0.5))
    elif fault == "malformed body":
        recorder.script(CONTROL, Reply(raw=b'{"success": tru'))
    elif fault == "html error page":
        recorder.script(CONTROL, *[Reply(status=502, raw=b"<html>Bad Gateway</html>")] * 5)
    started = time.monotonic()
    entry = result(voicedock.tool_call())
    assert time.monotonic() - started < 1.5 + 0.5
    assert entry["result"]["status"] == status
