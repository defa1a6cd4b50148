"""sipgate AI Flow: events in, one action or 204 out, and announce-then-transfer."""

from __future__ import annotations

import io
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import AssistantDestination
from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import PlatformEvent
from flask_calltransfer import SipDestination
from flask_calltransfer import refuse
from flask_calltransfer import testing
from tests.conftest import TOKEN
from tests.conftest import MakeApp
from tests.conftest import Sipgate
from tests.conftest import capture
from tests.conftest import payload_bytes

SESSION = "550e8400-e29b-41d4-a716-446655440000"
REFUSAL = "I'm sorry, I can't transfer your call right now."


def make(make_app: MakeApp, transfers: CallTransfer | None = None, **config: t.Any) -> tuple[Flask, Sipgate]:
    app, _ = make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN, **config)
    return app, Sipgate(app.test_client())


def test_doc_event_becomes_a_transfer_request(transfers: CallTransfer, sipgate: Sipgate) -> None:
    seen = capture(transfers, NumberDestination("+4921112345678"))
    response = sipgate.post(payload_bytes("sipgate_user_speak.json"))
    assert response.status_code == 200
    assert response.json == {
        "type": "transfer",
        "session_id": SESSION,
        "target_phone_number": "+4921112345678",
        "caller_id_name": "+499876543210",
        "caller_id_number": "+499876543210",
    }
    (call,) = seen
    assert (call.platform, call.event, call.call_id) == ("sipgate", "user_speak", SESSION)
    assert (call.caller, call.called) == ("+499876543210", "+491234567890")
    assert call.text == "I want to talk to sales"
    assert call.messages == [{"role": "user", "content": "I want to talk to sales"}]
    assert call.raw["barged_in"] is False


def test_transfer_action_field_order_and_bytes(transfers: CallTransfer, sipgate: Sipgate) -> None:
    transfers.on_request(
        lambda call: NumberDestination(
            "+4921112345678", caller_id="+4921112345678", caller_id_name="Support Department"
        )
    )
    response = sipgate.event("user_speak", session_id=SESSION, text="hi")
    assert response.mimetype == "application/json"
    assert response.data == (
        b'{"type":"transfer","session_id":"550e8400-e29b-41d4-a716-446655440000",'
        b'"target_phone_number":"+4921112345678","caller_id_name":"Support Department",'
        b'"caller_id_number":"+4921112345678"}'
    )


@pytest.mark.parametrize("event", ["session_start", "user_speak", "user_input_timeout"])
def test_handlers_run_on_the_three_events(transfers: CallTransfer, sipgate: Sipgate, event: str) -> None:
    seen = capture(transfers, "+4921112345678")
    response = sipgate.event(event)
    assert response.json["type"] == "transfer"
    assert seen[0].event == event


def test_caller_id_name_from_config(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+4921112345678")
    _, sipgate = make(make_app, transfers, CALLTRANSFER_SIPGATE_CALLER_ID_NAME="Hotline")
    action = sipgate.event("user_speak", text="x").json
    assert (action["caller_id_name"], action["caller_id_number"]) == ("Hotline", "+4915799912345")


def test_anonymous_caller_uses_the_flow_number(transfers: CallTransfer, sipgate: Sipgate) -> None:
    transfers.on_request(lambda call: "+4921112345678")
    action = sipgate.event("user_speak", caller="anonymous", called="+4921112340000").json
    assert action["caller_id_number"] == "+4921112340000"


def test_no_number_to_show_says_to_set_a_caller_id(
    transfers: CallTransfer, sipgate: Sipgate, caplog: pytest.LogCaptureFixture
) -> None:
    transfers.on_request(lambda call: "+4921112345678")
    payload = testing.sipgate_event("user_speak", text="sales", caller="anonymous")
    payload["session"].pop("phone_number", None)
    payload["session"].pop("to_phone_number", None)
    response = sipgate.post(payload)
    assert response.status_code in (200, 204)
    problems = [r.getMessage() for r in caplog.records if "caller ID number" in r.getMessage()]
    assert problems and "Give the destination a caller_id" in problems[0]
    assert "missing caller ID number" not in caplog.text


def test_outbound_call_direction(transfers: CallTransfer, sipgate: Sipgate) -> None:
    seen = capture(transfers)
    sipgate.event("session_start", caller="+4921112345678", called="+4915799912345", direction="outbound")
    assert (seen[0].caller, seen[0].called) == ("+4921112345678", "+4915799912345")


def test_nobody_answers_is_204_even_with_a_fallback(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    seen = capture(transfers)
    app, sipgate = make(make_app, transfers, CALLTRANSFER_FALLBACK="+4921112345678")
    response = sipgate.event("user_speak", text="just chatting")
    assert (response.status_code, response.data) == (204, b"")
    assert "Content-Type" not in response.headers
    assert len(seen) == 1


def test_refuse_is_spoken(transfers: CallTransfer, sipgate: Sipgate) -> None:
    transfers.on_request(lambda call: refuse("Sales is closed until nine."))
    response = sipgate.event("user_speak", session_id=SESSION, text="sales")
    assert response.json == {"type": "speak", "session_id": SESSION, "text": "Sales is closed until nine."}


@pytest.mark.parametrize(
    ("destination", "attribute"),
    [
        (SipDestination("sip:desk@pbx.example.com"), "sip"),
        (AssistantDestination("Billing"), "assistant"),
        (NumberDestination("+4921112345678", extension="12"), "extension"),
        (NumberDestination("+4921112345678", mode="warm-transfer-say-summary"), "mode"),
        (NumberDestination("+4921112345678", caller_id="{{customer.number}}"), "caller_id template"),
    ],
)
def test_unsupported_destinations_take_the_failure_path(
    transfers: CallTransfer, sipgate: Sipgate, sipgate_app: Flask, destination: t.Any, attribute: str
) -> None:
    transfers.on_request(lambda call: destination)
    with testing.record_signals(sipgate_app) as heard:
        response = sipgate.event("user_speak", session_id=SESSION, text="x")
    assert response.status_code == 200
    assert response.json == {"type": "speak", "session_id": SESSION, "text": REFUSAL}
    failed = heard.one("transfer-failed")
    assert failed["stage"] == "destination"
    assert (failed["exception"].platform, failed["exception"].attribute) == ("sipgate", attribute)


def test_unsupported_destination_goes_to_on_error(transfers: CallTransfer, sipgate: Sipgate) -> None:
    transfers.on_request(lambda call: "sip:desk@pbx.example.com")
    transfers.on_error(lambda call, exc: "+4921112345678")
    assert sipgate.event("user_speak", text="x").json["target_phone_number"] == "+4921112345678"


def test_blind_mode_is_accepted(transfers: CallTransfer, sipgate: Sipgate) -> None:
    transfers.on_request(lambda call: NumberDestination("+4921112345678", mode="blind-transfer"))
    assert sipgate.event("user_speak", text="x").json["type"] == "transfer"


def test_handler_exception_never_500(transfers: CallTransfer, sipgate: Sipgate) -> None:
    transfers.on_request(lambda call: 1 / 0)
    response = sipgate.event("user_speak", session_id=SESSION, text="x")
    assert response.json == {"type": "speak", "session_id": SESSION, "text": REFUSAL}


# Announce, then transfer ---------------------------------------------------------------------------


def announced(transfers: CallTransfer) -> None:
    transfers.on_request(
        lambda call: (
            NumberDestination("+4921112345678", message="Connecting you to sales.")
            if "sales" in call.text
            else None
        )
    )


def test_announce_then_transfer(transfers: CallTransfer, sipgate: Sipgate, sipgate_app: Flask) -> None:
    announced(transfers)
    with testing.record_signals(sipgate_app) as heard:
        first = sipgate.event("user_speak", session_id=SESSION, text="sales please")
    assert first.json == {"type": "speak", "session_id": SESSION, "text": "Connecting you to sales."}
    assert heard.one("transfer-resolved")["destination"].number == "+4921112345678"
    other = sipgate.event("assistant_speech_ended", session_id="other-session")
    assert other.status_code == 204
    second = sipgate.event("assistant_speech_ended", session_id=SESSION)
    assert second.json == {
        "type": "transfer",
        "session_id": SESSION,
        "target_phone_number": "+4921112345678",
        "caller_id_name": "+4915799912345",
        "caller_id_number": "+4915799912345",
    }
    assert sipgate.event("assistant_speech_ended", session_id=SESSION).status_code == 204


def test_the_kept_transfer_holds_no_caller_number(
    transfers: CallTransfer, sipgate: Sipgate, sipgate_app: Flask
) -> None:
    announced(transfers)
    sipgate.event("user_speak", session_id=SESSION, text="sales please")
    kept = sipgate_app.extensions["calltransfer"].services.store.get(f"sipgate:pending:{SESSION}")
    assert kept is not None and "+4921112345678" in kept
    assert "4915799912345" not in kept
    second = sipgate.event("assistant_speech_ended", session_id=SESSION)
    assert second.json["caller_id_number"] == second.json["caller_id_name"] == "+4915799912345"


def test_the_callers_number_is_kept_out_of_the_store_wherever_it_appears(
    transfers: CallTransfer, sipgate: Sipgate, sipgate_app: Flask
) -> None:
    transfers.on_request(
        lambda call: NumberDestination(
            call.caller or "", message="Calling you back.", caller_id_name=f"Kunde {call.caller}"
        )
    )
    sipgate.event("user_speak", session_id=SESSION, text="call me back")
    kept = sipgate_app.extensions["calltransfer"].services.store.get(f"sipgate:pending:{SESSION}")
    assert kept is not None and "4915799912345" not in kept
    action = sipgate.event("assistant_speech_ended", session_id=SESSION).json
    assert action["target_phone_number"] == action["caller_id_number"] == "+4915799912345"
    assert action["caller_id_name"] == "Kunde +4915799912345"


def test_an_explicit_caller_id_is_kept_as_given(transfers: CallTransfer, sipgate: Sipgate) -> None:
    transfers.on_request(
        lambda call: NumberDestination("+4921112345678", message="One moment.", caller_id="+4921199999999")
    )
    sipgate.event("user_speak", session_id=SESSION, text="sales please")
    second = sipgate.event("assistant_speech_ended", session_id=SESSION)
    assert second.json["caller_id_number"] == "+4921199999999"


def test_caller_speaking_over_the_announcement_gets_the_transfer(
    transfers: CallTransfer, sipgate: Sipgate
) -> None:
    announced(transfers)
    seen = capture(transfers)
    sipgate.event("user_speak", session_id=SESSION, text="sales please")
    response = sipgate.event("user_speak", session_id=SESSION, text="hello?", barged_in=True)
    assert response.json["type"] == "transfer"
    assert seen == []  # the decision was made already; handlers do not run again


def test_session_end_clears_the_pending_transfer(transfers: CallTransfer, sipgate: Sipgate) -> None:
    announced(transfers)
    sipgate.event("user_speak", session_id=SESSION, text="sales")
    end = sipgate.post(payload_bytes("sipgate_session_end_minimal.json"))
    assert (end.status_code, end.data) == (204, b"")
    assert sipgate.event("assistant_speech_ended", session_id=SESSION).status_code == 204


def test_pending_transfer_expires(make_app: MakeApp) -> None:
    from flask_calltransfer.store import MemoryStore

    now = [1000.0]
    transfers = CallTransfer(store=MemoryStore(clock=lambda: now[0]))
    announced(transfers)
    _, sipgate = make(make_app, transfers, CALLTRANSFER_SIPGATE_PENDING_TTL=30)
    sipgate.event("user_speak", session_id=SESSION, text="sales")
    now[0] += 31
    assert sipgate.event("assistant_speech_ended", session_id=SESSION).status_code == 204


def test_empty_message_or_announce_off_transfers_at_once(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: NumberDestination("+4921112345678", message=""))
    _, sipgate = make(make_app, transfers)
    assert sipgate.event("user_speak", text="x").json["type"] == "transfer"
    transfers = CallTransfer()
    announced(transfers)
    _, sipgate = make(make_app, transfers, CALLTRANSFER_SIPGATE_ANNOUNCE=False)
    assert sipgate.event("user_speak", text="sales").json["type"] == "transfer"


# Other events ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        "assistant_speak",
        "assistant_speech_ended",
        "session_end",
        "user_barge_in",
        "user_speech_started",
        "new_thing",
    ],
)
def test_other_events_are_204(
    transfers: CallTransfer, sipgate: Sipgate, sipgate_app: Flask, event: str
) -> None:
    seen = capture(transfers, "+4921112345678")
    with testing.record_signals(sipgate_app) as heard:
        response = sipgate.event(event, duration_ms=1200)
    assert (response.status_code, response.data) == (204, b"")
    assert seen == []
    assert heard.one("event-received")["event"] == event


def test_unknown_event_without_session_is_204(sipgate: Sipgate) -> None:
    assert sipgate.post({"type": "brand_new"}).status_code == 204


def test_on_event_may_answer_with_an_action(transfers: CallTransfer, sipgate: Sipgate) -> None:
    @transfers.on_event("assistant_speak", platform="sipgate")
    def hang_up(event: PlatformEvent) -> dict[str, t.Any]:
        return {"type": "hangup", "session_id": event.call_id}

    assert sipgate.event("assistant_speak", session_id=SESSION).json == {
        "type": "hangup",
        "session_id": SESSION,
    }


def test_session_end_accepts_no_action(transfers: CallTransfer, sipgate: Sipgate) -> None:
    transfers.on_event("session_end")(lambda event: {"type": "hangup", "session_id": event.call_id})
    assert sipgate.event("session_end").status_code == 204


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"type": "user_speak", "text": "hi"}, {"session": ["Missing data for required field."]}),
        ({"type": "user_speak", "session": {}}, {"session": {"id": ["Missing data for required field."]}}),
        ({"type": "user_speak", "session": {"id": 5}}, {"session": {"id": ["Not a valid string."]}}),
        ({"type": "user_speak", "session": {"id": "s"}, "text": 5}, {"text": ["Not a valid string."]}),
        ({"session": {"id": "s"}}, {"type": ["Missing data for required field."]}),
        ({"type": 7, "session": {"id": "s"}}, {"type": ["Not a valid string."]}),
    ],
)
def test_malformed_events_are_400(
    transfers: CallTransfer, sipgate: Sipgate, body: t.Any, errors: t.Any
) -> None:
    seen = capture(transfers, "+4921112345678")
    response = sipgate.post(body)
    assert response.status_code == 400
    assert response.json["errors"] == errors
    assert seen == []


# Verification ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"X-API-TOKEN": TOKEN}, 204),
        ({"x-api-token": TOKEN}, 204),
        ({"X-API-TOKEN": "rotated-token"}, 204),
        ({}, 401),
        ({"X-API-TOKEN": ""}, 401),
        ({"X-API-TOKEN": TOKEN + "x"}, 401),
        ({"Authorization": f"Bearer {TOKEN}"}, 401),
        ({"X-API-Key": TOKEN}, 401),
    ],
)
def test_token_verification(make_app: MakeApp, headers: dict[str, str], status: int) -> None:
    transfers = CallTransfer()
    seen = capture(transfers)
    app, _ = make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=[TOKEN, "rotated-token"])
    response = app.test_client().post(
        "/calltransfer/sipgate",
        data=testing.dumps(testing.sipgate_event("user_speak", text="x")),
        headers=headers,
    )
    assert response.status_code == status
    assert len(seen) == (1 if status == 204 else 0)


def test_custom_token_header(make_app: MakeApp) -> None:
    app, _ = make_app(CALLTRANSFER_SIPGATE_TOKEN=TOKEN, CALLTRANSFER_SIPGATE_TOKEN_HEADER="X-Flow-Secret")
    body = testing.dumps(testing.sipgate_event("session_end"))
    client = app.test_client()
    assert client.post("/calltransfer/sipgate", data=body, headers={"X-API-TOKEN": TOKEN}).status_code == 401
    assert (
        client.post("/calltransfer/sipgate", data=body, headers={"X-Flow-Secret": TOKEN}).status_code == 204
    )


def test_listed_without_token_is_a_configuration_error(make_app: MakeApp) -> None:
    from flask_calltransfer import ConfigurationError

    with pytest.raises(ConfigurationError, match="CALLTRANSFER_SIPGATE_TOKEN") as info:
        make_app(CALLTRANSFER_PLATFORMS=["vapi", "sipgate"])
    assert info.value.key == "CALLTRANSFER_SIPGATE_TOKEN"


def test_enabled_by_its_token(make_app: MakeApp) -> None:
    app, _ = make_app(CALLTRANSFER_SIPGATE_TOKEN=TOKEN)
    assert set(app.extensions["calltransfer"].platforms) == {"vapi", "sipgate"}
    app, _ = make_app()
    assert set(app.extensions["calltransfer"].platforms) == {"vapi"}


def test_empty_session_id_is_400(transfers: CallTransfer, sipgate: Sipgate) -> None:
    # Found by the property suite: an empty id made an action with an empty session_id.
    seen = capture(transfers, "+4921112345678")
    response = sipgate.event("user_input_timeout", session_id="")
    assert response.status_code == 400
    assert response.json["errors"] == {"session": {"id": ["Shorter than minimum length 1."]}}
    assert seen == []


def test_a_wrong_token_is_refused_before_the_body_is_read(sipgate_app: Flask) -> None:
    class Unread(io.BytesIO):
        def read(self, *args: t.Any) -> bytes:
            raise AssertionError("the body of an unverified request was read")

        readline = read

    client = sipgate_app.test_client()
    for headers in ({"X-API-TOKEN": "wrong-token"}, {}):
        response = client.post(
            "/calltransfer/sipgate",
            input_stream=Unread(b"{}" * 50),
            headers={**headers, "Content-Type": "application/json", "Content-Length": "100"},
        )
        assert response.status_code == 401
    # With the right token the body is read as usual.
    body = testing.dumps(testing.sipgate_event("session_start"))
    assert client.post(
        "/calltransfer/sipgate", data=body, headers=testing.sipgate_headers(TOKEN)
    ).status_code in (
        200,
        204,
    )
