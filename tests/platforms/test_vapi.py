"""Vapi: payloads in (real bytes, both envelopes), replies out in Vapi's exact wire format."""

from __future__ import annotations

import json
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import AssistantDestination
from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing
from tests.conftest import MakeApp
from tests.conftest import Vapi
from tests.conftest import capture
from tests.conftest import payload
from tests.conftest import payload_bytes


def test_doc_sample_unwrapped_is_accepted(transfers: CallTransfer, vapi: Vapi) -> None:
    seen = capture(transfers, "+14155552671")
    response = vapi.post(payload_bytes("vapi_doc_sample.json"))
    assert response.status_code == 200
    assert response.json == {
        "destination": {"type": "number", "number": "+14155552671", "numberE164CheckEnabled": True}
    }
    (call,) = seen
    assert call.platform == "vapi"
    assert call.event == "transfer-destination-request"
    assert call.call_id == "call789"
    assert call.assistant_id == "assistant123"
    assert call.called == "+14155552671"  # phoneNumber given as a plain string
    assert call.caller is None  # the sample's customer has an id but no number
    assert call.transcript == "Hello, how can I help you?"
    assert call.text == ""
    assert call.raw["call"]["status"] == "ongoing"


def test_full_wrapped_payload(transfers: CallTransfer, vapi: Vapi) -> None:
    seen = capture(transfers, "sales")
    transfers.add_destination("sales", NumberDestination("+31 20 794 8450", message="Connecting you."))
    response = vapi.post(payload_bytes("vapi_wrapped_sales.json"))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json == {
        "destination": {
            "type": "number",
            "number": "+31207948450",
            "numberE164CheckEnabled": True,
            "message": "Connecting you.",
        }
    }
    (call,) = seen
    assert call.call_id == "6a1f0c2e-5a4b-4c43-9a52-0f3f5b9d2c11"
    assert call.caller == "+14155550100"
    assert call.called == "+14155550199"  # phoneNumber as an object
    assert call.assistant_id == "3f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f"
    assert call.text == "Yes please, put me through to sales."
    assert call.messages[0] == {"role": "system", "content": "You are the support line's receptionist."}
    assert [m["role"] for m in call.messages] == ["system", "assistant", "user", "assistant", "user"]
    assert call.transcript.startswith("AI: Hello")
    assert call.raw["type"] == "transfer-destination-request"  # raw is the unwrapped message


def test_documented_number_reply_is_reproduced_exactly(transfers: CallTransfer, vapi: Vapi) -> None:
    @transfers.on_request
    def route(call: TransferRequest) -> NumberDestination:
        return NumberDestination(
            "+14155552671",
            message="Connecting you to our support line.",
            caller_id="+14155551234",
            extension="101",
        )

    response = vapi.post(payload_bytes("vapi_doc_sample.json"))
    assert response.json == payload("vapi_number_response.json")


def test_documented_sip_reply_is_reproduced_exactly(transfers: CallTransfer, vapi: Vapi) -> None:
    @transfers.on_request
    def route(call: TransferRequest) -> SipDestination:
        return SipDestination(
            "sip:support@example.com",
            message="Connecting your call via SIP.",
            headers={"X-Custom-Header": "value"},
        )

    assert vapi.ask().json == payload("vapi_sip_response.json")


def test_documented_error_reply_is_reproduced_exactly(transfers: CallTransfer, vapi: Vapi) -> None:
    @transfers.on_request
    def route(call: TransferRequest) -> None:
        from flask_calltransfer import refuse

        refuse("Invalid destination specified.")

    response = vapi.ask()
    assert response.status_code == 200
    assert response.json == payload("vapi_error_response.json")


def test_every_number_field_in_camel_case(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(
        lambda call: NumberDestination(
            "+31612345678",
            message="",
            caller_id="{{customer.number}}",
            extension="42",
            description="Sales desk",
            mode="warm-transfer-say-summary",
        )
    )
    assert vapi.ask().json == {
        "destination": {
            "type": "number",
            "number": "+31612345678",
            "numberE164CheckEnabled": True,
            "callerId": "{{customer.number}}",
            "extension": "42",
            "message": "",
            "description": "Sales desk",
            "transferPlan": {"mode": "warm-transfer-say-summary"},
        }
    }


def test_trunk_short_code_disables_the_e164_check(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(lambda call: NumberDestination("8001", e164=False))
    destination = vapi.ask().json["destination"]
    assert destination == {"type": "number", "number": "8001", "numberE164CheckEnabled": False}


def test_sip_with_mode_and_caller_id(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(
        lambda call: SipDestination(
            "sips:desk@pbx.example.com;transport=tls",
            caller_id="+31612345678",
            mode="blind-transfer",
            description="The front desk's PBX",
        )
    )
    assert vapi.ask().json == {
        "destination": {
            "type": "sip",
            "sipUri": "sips:desk@pbx.example.com;transport=tls",
            "callerId": "+31612345678",
            "description": "The front desk's PBX",
            "transferPlan": {"mode": "blind-transfer"},
        }
    }


def test_assistant_destination(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(
        lambda call: AssistantDestination(
            "Billing Assistant", message="", history="delete-history", description="Invoices"
        )
    )
    assert vapi.ask().json == {
        "destination": {
            "type": "assistant",
            "assistantName": "Billing Assistant",
            "message": "",
            "description": "Invoices",
            "transferMode": "delete-history",
        }
    }


def test_caller_id_name_is_not_dropped_silently(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(lambda call: NumberDestination("+31612345678", caller_id_name="Sales"))
    with testing.record_signals() as heard:
        response = vapi.ask()
    assert response.status_code == 200
    assert response.json == {"error": "I'm sorry, I can't transfer your call right now."}
    failed = heard.one("transfer-failed")
    assert failed["stage"] == "destination"
    assert failed["exception"].platform == "vapi"
    assert failed["exception"].attribute == "caller_id_name"


def test_phone_number_object_and_call_customer_fallback(transfers: CallTransfer, vapi: Vapi) -> None:
    seen = capture(transfers)
    body = testing.vapi_transfer_request(caller="+14155550100")
    del body["message"]["customer"]  # only call.customer.number is left
    vapi.post(body)
    assert seen[0].caller == "+14155550100"


def test_a_vapi_provided_number_without_number_falls_back_to_the_call(
    transfers: CallTransfer, vapi: Vapi
) -> None:
    """Shaped as the SDK 3.0 types it: the message's phoneNumber is the Vapi-provided variant
    (provider "vapi", no "number"); the call's phoneNumber (TransientTwilioPhoneNumber) has one."""
    seen = capture(transfers)
    body = testing.vapi_transfer_request(caller="+14155550100")
    message = body["message"]
    message["phoneNumber"] = {
        "provider": "vapi",
        "id": "pn-1",
        "orgId": "org-1",
        "numberDesiredAreaCode": "415",
        "status": "active",
    }
    message["call"]["phoneNumber"] = {"provider": "twilio", "number": "+14155550199"}
    vapi.post(body)
    assert (seen[0].caller, seen[0].called) == ("+14155550100", "+14155550199")
    # A SIP number: the address that was called is its SIP URI.
    message["phoneNumber"]["sipUri"] = "sip:support@example.sip.vapi.ai"
    del message["call"]["phoneNumber"]
    vapi.post(body)
    assert seen[1].called == "sip:support@example.sip.vapi.ai"


def test_outbound_call_caller_is_our_number(transfers: CallTransfer, vapi: Vapi) -> None:
    seen = capture(transfers)
    vapi.ask(caller="+14155550199", called="+31612345678", outbound=True)
    assert (seen[0].caller, seen[0].called) == ("+14155550199", "+31612345678")


def test_national_caller_is_normalised_with_default_region(make_app: MakeApp) -> None:
    app, transfers = make_app(CALLTRANSFER_DEFAULT_REGION="NL")
    seen = capture(transfers)
    Vapi(app.test_client()).ask(caller="06 12345678", called="not a number")
    assert seen[0].caller == "+31612345678"
    assert seen[0].called == "not a number"  # unparseable: the raw string


def test_text_falls_back_to_openai_formatted_messages(transfers: CallTransfer, vapi: Vapi) -> None:
    seen = capture(transfers)
    body = testing.vapi_transfer_request(text="billing please")
    body["message"]["artifact"]["messages"] = []
    vapi.post(body)
    assert seen[0].text == "billing please"


def test_malformed_artifact_entries_are_skipped(transfers: CallTransfer, vapi: Vapi) -> None:
    seen = capture(transfers)
    entries = [None, 7, {"role": "user"}, {"role": "user", "message": 5}, {"role": "user", "message": "ok"}]
    entries += [{"role": "martian", "message": "??"}]
    vapi.ask(messages=entries)
    assert seen[0].text == "ok"
    assert seen[0].messages == [{"role": "user", "content": "ok"}]


def test_function_call_parameters_become_arguments(transfers: CallTransfer, vapi: Vapi) -> None:
    seen = capture(transfers)
    vapi.ask(functionCall={"name": "transfer", "parameters": {"urgency": "high"}})
    assert seen[0].arguments == {"urgency": "high"}


def test_metadata_from_call(transfers: CallTransfer, vapi: Vapi) -> None:
    seen = capture(transfers)
    body = testing.vapi_transfer_request()
    body["message"]["call"]["metadata"] = {"crm": "42"}
    vapi.post(body)
    assert seen[0].metadata == {"crm": "42"}


def test_history_is_lazy(transfers: CallTransfer, vapi: Vapi) -> None:
    seen = capture(transfers)
    vapi.ask()
    call = seen[0]
    assert "text" not in call.__dict__ and "messages" not in call.__dict__
    assert call.text
    assert "text" in call.__dict__ and "messages" not in call.__dict__


@pytest.mark.parametrize(
    ("mutate", "errors"),
    [
        (lambda m: m.update(call="nope"), {"message": {"call": {"_schema": ["Invalid input type."]}}}),
        (lambda m: m["call"].update(id=5), {"message": {"call": {"id": ["Not a valid string."]}}}),
        (
            lambda m: m.update(phoneNumber=5),
            {"message": {"phoneNumber": ["Not a phone number object or string."]}},
        ),
        (
            lambda m: m["artifact"].update(messages="x"),
            {"message": {"artifact": {"messages": ["Not a valid list."]}}},
        ),
        (lambda m: m.pop("type"), {"message": {"type": ["Missing data for required field."]}}),
    ],
)
def test_wrong_field_types_are_400_naming_the_field(
    transfers: CallTransfer, vapi: Vapi, mutate: t.Any, errors: dict[str, t.Any]
) -> None:
    seen = capture(transfers)
    body = testing.vapi_transfer_request()
    mutate(body["message"])
    response = vapi.post(body)
    assert response.status_code == 400
    assert response.json["code"] == 400
    assert response.json["errors"] == errors
    assert seen == []


def test_bare_payload_errors_are_not_prefixed(vapi: Vapi) -> None:
    body = testing.vapi_transfer_request(wrapped=False)
    body["customer"] = []
    response = vapi.post(body)
    assert response.status_code == 400
    assert response.json["errors"] == {"customer": {"_schema": ["Invalid input type."]}}


def test_message_envelope_that_is_not_an_object(vapi: Vapi) -> None:
    response = vapi.post({"message": "transfer-destination-request"})
    assert response.status_code == 400
    assert response.json["errors"] == {"message": ["Not a valid mapping type."]}


@pytest.mark.parametrize(
    "event_file",
    ["vapi_status_update.json"],
)
def test_informational_events_get_an_empty_object(
    app: Flask, transfers: CallTransfer, vapi: Vapi, event_file: str
) -> None:
    seen = capture(transfers, "+31612345678")
    with testing.record_signals(app) as heard:
        response = vapi.post(payload_bytes(event_file))
    assert response.status_code == 200
    assert response.json == {}
    assert seen == []
    received = heard.one("event-received")
    assert received["platform"] == "vapi"
    assert received["event"] == "status-update"
    assert received["payload"]["endedReason"] == "customer-ended-call"


@pytest.mark.parametrize(
    "event_type", ["end-of-call-report", "conversation-update", "speech-update", "hang", "brand-new-event"]
)
def test_other_and_unknown_event_types_are_a_no_op(vapi: Vapi, event_type: str) -> None:
    response = vapi.post(testing.vapi_event(event_type))
    assert (response.status_code, response.json) == (200, {})


def test_reply_is_compact_utf8_json(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(lambda call: NumberDestination("+31612345678", message="Één moment."))
    response = vapi.ask()
    assert (
        response.data
        == '{"destination":{"type":"number","number":"+31612345678",'
        '"numberE164CheckEnabled":true,"message":"Één moment."}}'.encode()
    )
    assert json.loads(response.data)["destination"]["message"] == "Één moment."
