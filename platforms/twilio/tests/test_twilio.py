"""The Twilio adapter's wire format: X-Twilio-Signature checked against twilio-python's own
RequestValidator, the events told apart, and the TwiML each destination becomes."""

from __future__ import annotations

import json
import typing as t

import pytest
from flask import Flask
from flask_calltransfer_twilio import TwilioPlatform
from flask_calltransfer_twilio import compute_signature
from twilio.request_validator import RequestValidator
from twilio_support import FORM
from twilio_support import TOKEN
from twilio_support import URL
from twilio_support import encode
from twilio_support import fields
from twilio_support import handoff
from twilio_support import signed
from werkzeug.datastructures import MultiDict
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import TestResponse

from flask_calltransfer import AssistantDestination
from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferPlan
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse
from flask_calltransfer import testing

HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
ACTION = 'action="http://localhost/calltransfer/twilio" method="POST"'


def make_app(**config: t.Any) -> tuple[Flask, CallTransfer]:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        CALLTRANSFER_TWILIO_AUTH_TOKEN=TOKEN,
        CALLTRANSFER_PLATFORMS=["twilio"],
        CALLTRANSFER_STORE_URL="memory://",
    )
    app.config.update(config)
    return app, CallTransfer(app)


def post(
    app: Flask, params: t.Any, *, url: str = URL, path: str = "/calltransfer/twilio", **kw: t.Any
) -> TestResponse:
    body = encode(params)
    return app.test_client().post(path, data=body, headers=signed(body, url), **kw)


def answered(answer: t.Any, params: t.Any | None = None, **config: t.Any) -> str:
    app, transfers = make_app(**config)
    transfers.on_request(lambda call: answer)
    response = post(app, params if params is not None else handoff())
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    return response.get_data(as_text=True)


# Signatures -------------------------------------------------------------------------------------


def test_the_signature_is_twilios_documented_example() -> None:
    # Twilio's security page: this token, URL and these fields sign to this value.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert compute_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert RequestValidator("12345").validate(url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_repeated_fields_are_signed_as_twilio_python_signs_them() -> None:
    pairs = [("CallSid", "CA1"), ("Tag", "b"), ("Tag", "a"), ("Tag", "b"), ("Empty", "")]
    ours = compute_signature(TOKEN, URL, {"CallSid": "CA1", "Tag": ["b", "a", "b"], "Empty": ""})
    assert ours == RequestValidator(TOKEN).compute_signature(URL, MultiDict(pairs))


def test_a_request_signed_by_twilio_python_is_accepted_and_a_changed_one_is_not() -> None:
    app, transfers = make_app()
    transfers.on_request(lambda call: "+31207948450")
    body = encode(handoff())
    headers = signed(body)
    assert app.test_client().post("/calltransfer/twilio", data=body, headers=headers).status_code == 200
    changed = body.replace(b"%2B31612345678", b"%2B31612345679")
    assert app.test_client().post("/calltransfer/twilio", data=changed, headers=headers).status_code == 401
    # Signed with another account's token, or for another URL.
    assert post(app, handoff(), url=URL + "/other").status_code == 401
    other = signed(body, token="another-accounts-token")
    assert app.test_client().post("/calltransfer/twilio", data=body, headers=other).status_code == 401
    assert app.test_client().post("/calltransfer/twilio", data=body, headers=FORM).status_code == 401


def test_the_query_string_is_signed_as_sent() -> None:
    app, transfers = make_app()
    transfers.on_request(lambda call: "+31207948450")
    path = "/calltransfer/twilio?desk=sales&note=a%20b"
    assert post(app, handoff(), url="http://localhost" + path, path=path).status_code == 200
    assert post(app, handoff(), url=URL + "?desk=sales", path=path).status_code == 401


def test_rotated_tokens_are_all_accepted() -> None:
    app, transfers = make_app(CALLTRANSFER_TWILIO_AUTH_TOKEN=["new-token", TOKEN])
    transfers.on_request(lambda call: "+31207948450")
    body = encode(handoff())
    for token in ("new-token", TOKEN):
        response = app.test_client().post(
            "/calltransfer/twilio", data=body, headers=signed(body, token=token)
        )
        assert response.status_code == 200


def test_behind_a_proxy_the_public_url_is_signed() -> None:
    public = "https://calls.example.com/voice"
    app, transfers = make_app(CALLTRANSFER_TWILIO_PUBLIC_URL=public)
    transfers.on_request(lambda call: "+31207948450")
    assert post(app, handoff(), url=public + "/calltransfer/twilio").status_code == 200
    # Twilio may sign the URL with the default port spelled out; its validator accepts both.
    assert (
        post(app, handoff(), url="https://calls.example.com:443/voice/calltransfer/twilio").status_code == 200
    )
    # What Flask sees behind the proxy is not what Twilio signed.
    assert post(app, handoff(), url=URL).status_code == 401
    # The Dial's action comes back to the public URL.
    response = post(app, handoff(), url=public + "/calltransfer/twilio")
    assert 'action="https://calls.example.com/voice/calltransfer/twilio"' in response.get_data(as_text=True)


def test_behind_proxy_fix_the_forwarded_url_is_signed() -> None:
    app, transfers = make_app()
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)  # type: ignore[method-assign]
    transfers.on_request(lambda call: "+31207948450")
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "calls.example.com"}
    body = encode(handoff())
    headers = {**signed(body, "https://calls.example.com/calltransfer/twilio"), **forwarded}
    assert app.test_client().post("/calltransfer/twilio", data=body, headers=headers).status_code == 200


def test_a_json_body_is_checked_against_its_signed_hash() -> None:
    import hashlib

    app, _ = make_app()
    body = b'{"CallSid": "CA1"}'
    path = f"/calltransfer/twilio?bodySHA256={hashlib.sha256(body).hexdigest()}"
    url = "http://localhost" + path
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": compute_signature(TOKEN, url, {})}
    client = app.test_client()
    # Verified, then turned away as a body that is not Twilio's form (400, not 401).
    assert client.post(path, data=body, headers=headers).status_code == 400
    assert client.post(path, data=b'{"CallSid": "CA2"}', headers=headers).status_code == 401


# Which event is which ---------------------------------------------------------------------------


def seen_by_handlers(params: t.Any) -> tuple[list[TransferRequest], testing.SignalRecorder, TestResponse]:
    app, transfers = make_app()
    seen: list[TransferRequest] = []
    transfers.on_request(lambda call: seen.append(call))
    with testing.record_signals(app) as heard:
        response = post(app, params)
    return seen, heard, response


def test_a_voice_url_request_asks_for_a_destination() -> None:
    seen, _, _ = seen_by_handlers(fields())
    assert [(c.event, c.call_id, c.caller, c.called, c.text) for c in seen] == [
        ("call", "CA" + "1" * 32, "+31612345678", "+31850835037", "")
    ]


def test_a_handoff_carries_its_data() -> None:
    seen, _, _ = seen_by_handlers(handoff("Billing, please."))
    assert seen[0].event == "handoff" and seen[0].text == "Billing, please."
    assert seen[0].arguments == {"reason": "Billing, please.", "reasonCode": "live-agent-handoff"}
    plain, _, _ = seen_by_handlers(handoff(HandoffData="the caller wants a human"))
    assert plain[0].text == "the caller wants a human" and plain[0].arguments == {}


def test_a_failed_session_still_asks_for_a_destination() -> None:
    params = handoff(SessionStatus="failed", ErrorCode="39001", ErrorMessage="WebSocket closed")
    del params["HandoffData"]
    seen, _, _ = seen_by_handlers(params)
    assert [c.event for c in seen] == ["session-failed"]


@pytest.mark.parametrize(
    ("params", "event"),
    [
        ({**handoff(), "SessionStatus": "completed", "CallStatus": "completed"}, "session-completed"),
        ({k: v for k, v in handoff().items() if k != "HandoffData"}, "session-ended"),
        (
            fields(CallStatus="completed", CallbackSource="call-progress-events", SequenceNumber="3"),
            "call-status",
        ),
        (fields(CallStatus="completed", CallDuration="61"), "call-status"),
        (fields(CallStatus="in-progress", DialCallStatus="completed", DialBridged="true"), "dial-status"),
    ],
)
def test_other_events_get_an_empty_response(params: dict[str, str], event: str) -> None:
    seen, heard, response = seen_by_handlers(params)
    assert seen == []
    assert heard.one("event-received")["event"] == event
    assert response.get_data(as_text=True) == HEAD + "<Response />"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("completed", "connected"),
        ("busy", "busy"),
        ("no-answer", "no-answer"),
        ("failed", "failed"),
        ("canceled", "cancelled"),
        ("something-new", "unknown"),
    ],
)
def test_the_dial_callback_is_the_transfers_outcome(status: str, outcome: str) -> None:
    app, transfers = make_app()
    transfers.on_request(lambda call: "+31207948450")
    with testing.record_signals(app) as heard:
        post(app, handoff())
        post(app, fields(CallStatus="in-progress", DialCallStatus=status, DialCallSid="CA" + "9" * 32))
    sent = heard.one("transfer-outcome")
    assert (sent["platform"], sent["call_id"], sent["outcome"], sent["detail"]) == (
        "twilio",
        "CA" + "1" * 32,
        outcome,
        status,
    )


def test_an_event_handler_may_answer_twiml() -> None:
    app, transfers = make_app()

    @transfers.on_event("session-ended", platform="twilio")
    def goodbye(event: t.Any) -> dict[str, str]:
        return {"twiml": "<Response><Say>Goodbye &amp; thanks.</Say><Hangup/></Response>"}

    params = {k: v for k, v in handoff().items() if k != "HandoffData"}
    assert (
        post(app, params).get_data(as_text=True)
        == HEAD + "<Response><Say>Goodbye &amp; thanks.</Say><Hangup /></Response>"
    )


@pytest.mark.parametrize(
    "reply", [{"twiml": "<Response><Say>unclosed</Response>"}, {"twiml": "<Say>x</Say>"}, {"say": "x"}]
)
def test_an_event_handlers_bad_twiml_gets_the_no_op(
    reply: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    app, transfers = make_app()
    transfers.on_event("session-ended")(lambda event: reply)
    params = {k: v for k, v in handoff().items() if k != "HandoffData"}
    assert post(app, params).get_data(as_text=True) == HEAD + "<Response />"
    assert any(record.levelname == "ERROR" for record in caplog.records)


# TwiML --------------------------------------------------------------------------------------------


def test_a_number_is_dialled_after_its_message() -> None:
    destination = NumberDestination(
        "+31 20 794 8450", message="Connecting you to sales & billing.", caller_id="+31850835037"
    )
    assert answered(destination) == (
        HEAD + "<Response><Say>Connecting you to sales &amp; billing.</Say>"
        f'<Dial {ACTION} callerId="+31850835037"><Number>+31207948450</Number></Dial></Response>'
    )


def test_an_extension_is_sent_as_digits_once_answered() -> None:
    twiml = answered(NumberDestination("+31207948450", extension="123"))
    assert f'<Dial {ACTION}><Number sendDigits="123">+31207948450</Number></Dial>' in twiml


def test_configured_caller_id_ring_time_and_voice() -> None:
    twiml = answered(
        NumberDestination("+31207948450", message="One moment."),
        CALLTRANSFER_TWILIO_CALLER_ID="+31 85 083 5037",
        CALLTRANSFER_TWILIO_DIAL_TIMEOUT=20,
        CALLTRANSFER_TWILIO_VOICE="Polly.Joanna",
        CALLTRANSFER_TWILIO_LANGUAGE="en-US",
    )
    assert '<Say voice="Polly.Joanna" language="en-US">One moment.</Say>' in twiml
    assert f'<Dial {ACTION} callerId="+31850835037" timeout="20">' in twiml


def test_sip_headers_become_uri_parameters() -> None:
    destination = SipDestination(
        "sip:desk@pbx.example.com;transport=tls",
        headers={"X-Account": "42", "X-Reason": "billing, urgent", "User-to-User": "56a390f3;encoding=hex"},
    )
    assert answered(destination) == (
        HEAD + f"<Response><Dial {ACTION}><Sip>sip:desk@pbx.example.com;transport=tls?X-Account=42"
        "&amp;X-Reason=billing%2C%20urgent&amp;User-to-User=56a390f3%3Bencoding%3Dhex</Sip></Dial></Response>"
    )


def test_a_refusal_is_said_and_the_call_ended() -> None:
    def closed(call: TransferRequest) -> None:
        refuse("We're closed <today> & tomorrow.")

    app, transfers = make_app()
    transfers.on_request(closed)
    assert post(app, handoff()).get_data(as_text=True) == (
        HEAD + "<Response><Say>We're closed &lt;today&gt; &amp; tomorrow.</Say><Hangup /></Response>"
    )


@pytest.mark.parametrize(
    ("destination", "attribute"),
    [
        (AssistantDestination("Sales bot"), "assistant"),
        (NumberDestination("+31207948450", caller_id_name="Acme Sales"), "caller_id_name"),
        (NumberDestination("+31207948450", mode="warm-transfer-say-message", message="Hi"), "mode"),
        (SipDestination("sip:desk@pbx.example.com", headers={"Account": "42"}), "headers"),
        (SipDestination("sip:desk@pbx.example.com", headers={"X-Twilio-Thing": "42"}), "headers"),
        (SipDestination("sip:desk@pbx.example.com", headers={"X-Long": "x" * 1100}), "headers"),
        (SipDestination("sip:desk@pbx.example.com", headers={"X-Long": "x" * 240}), "headers"),
        (SipDestination("sips:desk@pbx.example.com"), "uri"),
        (
            SipDestination("sip:desk@pbx.example.com", transfer_plan=TransferPlan(sip_verb="refer")),
            "transfer_plan.sip_verb",
        ),
    ],
)
def test_what_twilio_cannot_carry_goes_down_the_failure_path(destination: t.Any, attribute: str) -> None:
    app, transfers = make_app(CALLTRANSFER_FALLBACK="+31207948450")
    transfers.on_request(lambda call: destination)
    with testing.record_signals(app) as heard:
        twiml = post(app, handoff()).get_data(as_text=True)
    failed = heard.one("transfer-failed")
    assert failed["stage"] == "destination" and failed["exception"].attribute == attribute
    # The fallback, a number Twilio can dial, is what the caller gets.
    assert "<Number>+31207948450</Number>" in twiml


# Configuration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CALLTRANSFER_TWILIO_AUTH_TOKEN", None),
        ("CALLTRANSFER_TWILIO_AUTH_TOKEN", ["ok", 7]),
        ("CALLTRANSFER_TWILIO_PUBLIC_URL", "calls.example.com"),
        ("CALLTRANSFER_TWILIO_PUBLIC_URL", "https://calls.example.com/?x=1"),
        ("CALLTRANSFER_TWILIO_DIAL_TIMEOUT", 3),
        ("CALLTRANSFER_TWILIO_DIAL_TIMEOUT", "20"),
        ("CALLTRANSFER_TWILIO_CALLER_ID", "not a number"),
        ("CALLTRANSFER_TWILIO_VOICE", 7),
    ],
)
def test_bad_configuration_names_its_key(key: str, value: t.Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(**{key: value})
    assert info.value.key == key


def test_the_platform_comes_from_its_entry_point() -> None:
    from flask_calltransfer.platforms import installed_platforms

    assert installed_platforms()["twilio"] is TwilioPlatform
    app, _ = make_app()
    assert "/calltransfer/twilio" in {rule.rule for rule in app.url_map.iter_rules()}


# What an attacker's review found -----------------------------------------------------------------


def test_an_unsigned_form_of_a_million_fields_is_refused_before_it_is_decoded() -> None:
    app, _ = make_app()
    body = b"&".join(b"f%d=" % n for n in range(300_000))
    with testing.record_signals(app) as heard:
        response = app.test_client().post(
            "/calltransfer/twilio", data=body, headers={**FORM, "X-Twilio-Signature": "forged"}
        )
    # Verification decodes the fields it signs, at most CALLTRANSFER_MAX_JSON_VALUES of them.
    assert response.status_code == 413
    assert heard.one("request-rejected")["status"] == 413


@pytest.mark.parametrize("signature", ["é", "\u2603" * 28, "a" * 10_000])
def test_a_signature_that_is_not_base64_ascii_is_refused(signature: str) -> None:
    app, _ = make_app()
    body = encode(handoff())
    headers = {**FORM, "X-Twilio-Signature": signature.encode().decode("latin-1")}
    with testing.record_signals(app) as heard:
        response = app.test_client().post("/calltransfer/twilio", data=body, headers=headers)
    assert response.status_code == 401 and heard.one("request-rejected")["status"] == 401


def test_a_status_callback_recut_under_the_same_signature_is_not_a_transfer_request() -> None:
    # Names and values are signed without separators: merging CallbackSource, its value and the
    # next field's name into one name leaves the signature valid.
    status = fields(CallStatus="in-progress", CallbackSource="call-progress-events", Called="+31850835037")
    recut = {k: v for k, v in status.items() if k not in ("CallbackSource", "Called")}
    recut["CallbackSourcecall-progress-eventsCalled"] = "+31850835037"
    original = signed(encode(status))["X-Twilio-Signature"]
    assert signed(encode(recut))["X-Twilio-Signature"] == original
    app, transfers = make_app()
    called: list[TransferRequest] = []
    transfers.on_request(lambda call: called.append(call))
    body = encode(recut)
    response = app.test_client().post(
        "/calltransfer/twilio", data=body, headers={**FORM, "X-Twilio-Signature": original}
    )
    assert response.status_code == 400 and called == []
    # A DialCallStatus hidden in the DialCallSid before it breaks that id's form.
    hidden = fields(CallStatus="in-progress", DialCallSid="CA" + "9" * 32 + "DialCallStatusbusy")
    assert post(app, hidden).status_code == 400 and called == []


@pytest.mark.parametrize("text", ["hi \x0b there \x00 x", "a lone \ud83d half", "\ufffe\uffff"])
def test_a_callers_words_repeated_in_a_refusal_stay_valid_xml(text: str) -> None:
    import xml.etree.ElementTree as ET

    app, transfers = make_app()

    @transfers.on_request
    def echo(call: TransferRequest) -> None:
        refuse(f"You said: {call.text}")

    params = handoff(HandoffData=json.dumps({"text": text}))
    response = post(app, params)
    root = ET.fromstring(response.get_data())
    assert root.find("Say") is not None and root.find("Say").text.startswith("You said:")  # type: ignore[union-attr]


def test_handoff_data_nested_too_deep_is_text_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    app, transfers = make_app()
    seen: list[TransferRequest] = []
    transfers.on_request(lambda call: seen.append(call))
    for data in ("[" * 100_000, '{"a":' * 50_000, '{"reason": NaN}'):
        seen.clear()
        post(app, handoff(HandoffData=data))
        assert [(call.event, call.text, call.arguments) for call in seen] == [("handoff", data, {})]
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


def test_the_public_urls_host_keeps_its_case_as_twilio_signs_it() -> None:
    public = "https://Calls.Example.com"
    url = public + "/calltransfer/twilio"
    app, transfers = make_app(CALLTRANSFER_TWILIO_PUBLIC_URL=public)
    transfers.on_request(lambda call: "+31207948450")
    params = handoff()
    body = encode(params)
    headers = signed(body, url)
    assert RequestValidator(TOKEN).validate(url, params, headers["X-Twilio-Signature"])
    assert app.test_client().post("/calltransfer/twilio", data=body, headers=headers).status_code == 200
