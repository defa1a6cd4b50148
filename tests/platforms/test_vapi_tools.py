"""Vapi tool calls carried out through the call's live control URL (a real local stand-in)."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from flask_calltransfer import AssistantDestination
from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse
from flask_calltransfer import testing
from tests.conftest import MakeApp
from tests.conftest import Vapi
from tests.recorder import Recorder
from tests.recorder import Reply

CONTROL = "/6a1f/control"


class Tools:
    def __init__(self, app: Flask, recorder: Recorder) -> None:
        self.app = app
        self.vapi = Vapi(app.test_client())
        self.recorder = recorder

    def call(self, arguments: t.Any = None, **fields: t.Any) -> t.Any:
        fields.setdefault("control_url", self.recorder.url + CONTROL)
        return self.vapi.post(testing.vapi_tool_calls("transferToHuman", arguments, **fields))


@pytest.fixture
def tools(make_app: MakeApp, recorder: Recorder, transfers: CallTransfer) -> Tools:
    app, _ = make_app(
        transfers, CALLTRANSFER_VAPI_TOOLS=["transferToHuman"], CALLTRANSFER_VAPI_CONTROL_HOSTS=[recorder.url]
    )
    return Tools(app, recorder)


def test_tool_call_is_sent_to_the_control_url(transfers: CallTransfer, tools: Tools) -> None:
    seen: list[TransferRequest] = []

    @transfers.on_request
    def route(call: TransferRequest) -> NumberDestination:
        seen.append(call)
        return NumberDestination(
            "+31612345678", message="Transferring your call now", caller_id="+31850835037"
        )

    response = tools.call({"department": "sales"}, tool_call_id="call_abc")
    assert response.status_code == 200
    assert response.json == {
        "results": [
            {
                "toolCallId": "call_abc",
                "name": "transferToHuman",
                "result": "The call is being transferred now.",
            }
        ]
    }
    (sent,) = tools.recorder.received
    assert (sent.method, sent.path) == ("POST", CONTROL)
    assert sent.json == {
        "type": "transfer",
        "destination": {
            "type": "number",
            "number": "+31612345678",
            "numberE164CheckEnabled": True,
            "callerId": "+31850835037",
        },
        "content": "Transferring your call now",
    }
    assert "Authorization" not in sent.headers
    (call,) = seen
    assert (call.event, call.tool_call_id, call.tool_name) == ("tool-calls", "call_abc", "transferToHuman")
    assert call.arguments == {"department": "sales"}
    assert call.text == "I'd like to talk to someone."


@pytest.mark.parametrize("shape", ["function", "with_tool", "flat"])
@pytest.mark.parametrize("arguments", [{"department": "billing"}, '{"department": "billing"}'])
def test_tool_call_shapes(transfers: CallTransfer, tools: Tools, shape: str, arguments: t.Any) -> None:
    seen: list[dict[str, t.Any]] = []
    transfers.on_request(lambda call: seen.append(call.arguments))
    tools.call(arguments, shape=shape)
    assert seen == [{"department": "billing"}]


def test_sip_destination_with_headers(transfers: CallTransfer, tools: Tools) -> None:
    transfers.on_request(
        lambda call: SipDestination("sip:+31612345678@sip.telnyx.com", headers={"X-Account": "7"})
    )
    tools.call()
    assert tools.recorder.received[0].json == {
        "type": "transfer",
        "destination": {
            "type": "sip",
            "sipUri": "sip:+31612345678@sip.telnyx.com",
            "sipHeaders": {"X-Account": "7"},
        },
    }


def test_public_key_is_sent_when_configured(make_app: MakeApp, recorder: Recorder) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31612345678")
    app, _ = make_app(
        transfers,
        CALLTRANSFER_VAPI_TOOLS=["transferToHuman"],
        CALLTRANSFER_VAPI_PUBLIC_KEY="pub-1",
        CALLTRANSFER_VAPI_CONTROL_HOSTS=[recorder.url],
    )
    Tools(app, recorder).call()
    assert recorder.received[0].headers["Authorization"] == "Bearer pub-1"


def test_refusal_is_the_tool_error(transfers: CallTransfer, tools: Tools) -> None:
    transfers.on_request(lambda call: refuse("Nobody is available right now."))
    response = tools.call(tool_call_id="c1")
    assert response.json == {
        "results": [
            {"toolCallId": "c1", "name": "transferToHuman", "error": "Nobody is available right now."}
        ]
    }
    assert tools.recorder.received == []


def test_assistant_destinations_cannot_be_sent_by_live_control(transfers: CallTransfer, tools: Tools) -> None:
    transfers.on_request(lambda call: AssistantDestination("Billing"))
    with testing.record_signals(tools.app) as heard:
        response = tools.call()
    assert "error" in response.json["results"][0]
    assert tools.recorder.received == []
    assert heard.one("transfer-failed")["stage"] == "destination"


@pytest.mark.parametrize("control_url", [None, "", "ftp://example.com/control", "javascript:alert(1)"])
def test_missing_or_bad_control_url(transfers: CallTransfer, tools: Tools, control_url: t.Any) -> None:
    transfers.on_request(lambda call: "+31612345678")
    body = testing.vapi_tool_calls("transferToHuman", tool_call_id="c2")
    body["message"]["call"]["monitor"]["controlUrl"] = control_url
    with testing.record_signals(tools.app) as heard:
        response = tools.vapi.post(body)
    assert response.status_code == 200
    assert "could not be started" in response.json["results"][0]["error"]
    assert heard.one("transfer-failed")["stage"] == "deliver"


def test_failed_delivery_is_the_tool_error(transfers: CallTransfer, tools: Tools) -> None:
    transfers.on_request(lambda call: "+31612345678")
    tools.recorder.script(CONTROL, Reply(status=400, body={"message": "call ended"}))
    response = tools.call()
    assert (response.status_code, list(response.json["results"][0])) == (200, ["toolCallId", "name", "error"])


def test_duplicate_tool_call_is_sent_once(transfers: CallTransfer, tools: Tools) -> None:
    transfers.on_request(lambda call: "+31612345678")
    first = tools.call(tool_call_id="same")
    second = tools.call(tool_call_id="same")
    assert first.data == second.data
    assert len(tools.recorder.received) == 1


def test_other_tool_calls_are_events(transfers: CallTransfer, tools: Tools) -> None:
    seen: list[TransferRequest] = []
    transfers.on_request(lambda call: seen.append(call))
    response = tools.vapi.post(testing.vapi_tool_calls("getWeather", {"city": "Utrecht"}))
    assert (response.status_code, response.json) == (200, {})
    assert seen == []


def test_tool_calls_without_configured_tools_are_events(transfers: CallTransfer, vapi: Vapi) -> None:
    seen: list[TransferRequest] = []
    transfers.on_request(lambda call: seen.append(call))
    assert vapi.post(testing.vapi_tool_calls("transferToHuman")).json == {}
    assert seen == []


def test_transfer_destination_requests_still_reply_inline(transfers: CallTransfer, tools: Tools) -> None:
    transfers.on_request(lambda call: "+31612345678")
    assert tools.vapi.ask().json["destination"]["number"] == "+31612345678"
    assert tools.recorder.received == []


def test_malformed_tool_call_list_is_400(tools: Tools) -> None:
    body = testing.vapi_tool_calls("transferToHuman")
    body["message"]["toolCallList"] = {"id": "x"}
    assert tools.vapi.post(body).status_code == 400


def test_vapi_transfer_tool(transfers: CallTransfer) -> None:
    tool = transfers.vapi_transfer_tool("dynamicDestinationTransferCall", description="Transfer to a person.")
    assert tool == {
        "type": "transferCall",
        "destinations": [],
        "function": {
            "name": "dynamicDestinationTransferCall",
            "description": "Transfer to a person.",
            "parameters": {"type": "object", "properties": {}},
        },
    }


def test_transfers_vapi_client_is_usable_from_handlers(transfers: CallTransfer, tools: Tools) -> None:
    @transfers.on_request
    def announce_then_refuse(call: TransferRequest) -> None:
        transfers.vapi.say(call.raw["call"]["monitor"]["controlUrl"], "Let me check who is available.")
        refuse("Nobody is available.")

    tools.call()
    assert tools.recorder.received[0].json == {
        "type": "say",
        "content": "Let me check who is available.",
        "endCallAfterSpoken": False,
    }


def test_unreachable_control_url_is_a_tool_error_in_time(transfers: CallTransfer, tools: Tools) -> None:
    import time

    from tests.servers import free_port

    transfers.on_request(lambda call: "+31612345678")
    started = time.monotonic()
    response = tools.call(control_url=f"http://127.0.0.1:{free_port()}/control")
    assert time.monotonic() - started < 8.5
    assert "could not be started" in response.json["results"][0]["error"]
