"""The jambonz adapter over real HTTP (Flask's test client): verbs out, hooks in, verification,
configuration and transfer outcomes."""

from __future__ import annotations

import json
import time
import typing as t

import pytest
from flask import Flask
from flask_calltransfer_jambonz import JambonzPlatform
from flask_calltransfer_jambonz import JambonzSignatureVerifier
from jambonz_support import CALL_SID
from jambonz_support import CALLED
from jambonz_support import CALLER
from jambonz_support import JSON_HEADERS
from jambonz_support import NUMBER
from jambonz_support import OLD_SECRET
from jambonz_support import SECRET
from jambonz_support import call_hook
from jambonz_support import call_info
from jambonz_support import dial_result
from jambonz_support import digits
from jambonz_support import encode
from jambonz_support import gather
from jambonz_support import refer_result
from jambonz_support import signature
from jambonz_support import signed
from jambonz_support import status
from jambonz_support import verb_problems
from werkzeug.test import TestResponse

from flask_calltransfer import AssistantDestination
from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import Destination
from flask_calltransfer import NumberDestination
from flask_calltransfer import PlatformEvent
from flask_calltransfer import RequestVerificationFailed
from flask_calltransfer import SipDestination
from flask_calltransfer import SummaryPlan
from flask_calltransfer import TransferPlan
from flask_calltransfer import TransferRequest
from flask_calltransfer import UnsupportedDestination
from flask_calltransfer import refuse
from flask_calltransfer import testing
from flask_calltransfer.platforms.base import Inbound

PATH = "/calltransfer/jambonz"
HOOK = f"http://localhost{PATH}"
REFUSAL = "Sorry, nobody can take your call right now."


def make_app(**config: t.Any) -> tuple[Flask, CallTransfer]:
    app = Flask("jambonz_tests")
    app.config.update(
        TESTING=True,
        CALLTRANSFER_PLATFORMS=["jambonz"],
        CALLTRANSFER_STORE_URL="memory://",
        CALLTRANSFER_JAMBONZ_SECRET=SECRET,
        CALLTRANSFER_REFUSAL_MESSAGE=REFUSAL,
    )
    app.config.update(config)
    return app, CallTransfer(app)


def post(
    app: Flask, payload: t.Mapping[str, t.Any] | bytes, *, path: str = PATH, **sign: t.Any
) -> TestResponse:
    body = payload if isinstance(payload, bytes) else encode(payload)
    return app.test_client().post(path, data=body, headers=signed(body, **sign))


def answering(destination: Destination | str, **config: t.Any) -> Flask:
    app, transfers = make_app(**config)
    transfers.on_request(lambda call: destination)
    return app


def verbs(response: TestResponse) -> t.Any:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    answer = json.loads(response.get_data())
    assert verb_problems(answer) == []
    return answer


# Verbs out --------------------------------------------------------------------------------------


def dial(target: dict[str, t.Any], **fields: t.Any) -> dict[str, t.Any]:
    return {"verb": "dial", "target": [target], **fields, "actionHook": HOOK}


PHONE = {"type": "phone", "number": NUMBER}
SIP = {"type": "sip", "sipUri": "sip:desk@pbx.example.com"}

RENDERED: dict[str, tuple[Destination, dict[str, t.Any], list[dict[str, t.Any]]]] = {
    "a number": (NumberDestination(NUMBER), {}, [dial(PHONE)]),
    "a number with a message and caller ID": (
        NumberDestination(
            NUMBER, message="Connecting you to sales.", caller_id="+31201234567", caller_id_name="Acme"
        ),
        {},
        [
            {"verb": "say", "text": "Connecting you to sales."},
            dial(PHONE, callerId="+31201234567", callerName="Acme"),
        ],
    ),
    "a silent message": (NumberDestination(NUMBER, message=""), {}, [dial(PHONE)]),
    "a number with the config's defaults": (
        NumberDestination(NUMBER),
        {
            "CALLTRANSFER_JAMBONZ_CALLER_ID": "+31201234567",
            "CALLTRANSFER_JAMBONZ_CALLER_NAME": "Acme Support",
            "CALLTRANSFER_JAMBONZ_DIAL_TIMEOUT": 25,
        },
        [dial(PHONE, callerId="+31201234567", callerName="Acme Support", timeout=25)],
    ),
    "a destination's caller ID over the config's": (
        NumberDestination(NUMBER, caller_id="+31209999999", caller_id_name="Sales"),
        {"CALLTRANSFER_JAMBONZ_CALLER_ID": "+31201234567", "CALLTRANSFER_JAMBONZ_CALLER_NAME": "Acme"},
        [dial(PHONE, callerId="+31209999999", callerName="Sales")],
    ),
    "a plain blind-transfer plan": (
        NumberDestination(NUMBER, mode="blind-transfer"),
        {},
        [dial(PHONE)],
    ),
    "a dial plan with a ring timeout": (
        NumberDestination(NUMBER, transfer_plan=TransferPlan(sip_verb="dial", dial_timeout=20)),
        {"CALLTRANSFER_JAMBONZ_DIAL_TIMEOUT": 40},
        [dial(PHONE, timeout=20)],
    ),
    "a fractional ring timeout": (
        NumberDestination(NUMBER),
        {"CALLTRANSFER_JAMBONZ_DIAL_TIMEOUT": 12.5},
        [dial(PHONE, timeout=12.5)],
    ),
    "a SIP URI": (SipDestination("sip:desk@pbx.example.com"), {}, [dial(SIP)]),
    "a SIP URI with headers and caller ID": (
        SipDestination(
            "sip:desk@pbx.example.com",
            headers={"X-Account": "4711"},
            caller_id="+31201234567",
            message="One moment.",
        ),
        {"CALLTRANSFER_JAMBONZ_CALLER_NAME": "Acme"},
        [
            {"verb": "say", "text": "One moment."},
            dial(SIP, callerId="+31201234567", callerName="Acme", headers={"X-Account": "4711"}),
        ],
    ),
    "a SIP REFER": (
        SipDestination(
            "sip:desk@pbx.example.com",
            headers={"X-Account": "4711"},
            transfer_plan=TransferPlan(sip_verb="refer"),
        ),
        {"CALLTRANSFER_JAMBONZ_CALLER_ID": "+31201234567", "CALLTRANSFER_JAMBONZ_DIAL_TIMEOUT": 25},
        [
            {
                "verb": "sip:refer",
                "referTo": "sip:desk@pbx.example.com",
                "headers": {"X-Account": "4711"},
                "actionHook": HOOK,
            }
        ],
    ),
    "a number by REFER, announced": (
        NumberDestination(NUMBER, message="Transferring you.", transfer_plan=TransferPlan(sip_verb="refer")),
        {},
        [
            {"verb": "say", "text": "Transferring you."},
            {"verb": "sip:refer", "referTo": NUMBER, "actionHook": HOOK},
        ],
    ),
}


@pytest.mark.parametrize("case", RENDERED, ids=list(RENDERED))
def test_destinations_are_rendered_as_verbs(case: str) -> None:
    destination, config, expected = RENDERED[case]
    app = answering(destination, **config)
    assert verbs(post(app, gather())) == expected


def test_a_refer_on_the_call_hook_answers_the_call_first() -> None:
    # sip:refer needs an answered call; the call_hook's call is still ringing.
    refer = SipDestination("sip:desk@pbx.example.com", transfer_plan=TransferPlan(sip_verb="refer"))
    assert verbs(post(answering(refer), call_hook())) == [
        {"verb": "answer"},
        {"verb": "sip:refer", "referTo": "sip:desk@pbx.example.com", "actionHook": HOOK},
    ]
    announced = SipDestination(
        "sip:desk@pbx.example.com", message="Hold on.", transfer_plan=TransferPlan(sip_verb="refer")
    )
    assert verbs(post(answering(announced), call_hook())) == [
        {"verb": "say", "text": "Hold on."},
        {"verb": "sip:refer", "referTo": "sip:desk@pbx.example.com", "actionHook": HOOK},
    ]


def test_the_action_hook_is_the_url_jambonz_called() -> None:
    app = answering(NumberDestination(NUMBER))
    answer = verbs(post(app, gather(), path=f"{PATH}?hook=gather&desk=sales"))
    assert answer[0]["actionHook"] == f"{HOOK}?hook=gather&desk=sales"
    proxied = app.test_client().post(
        PATH,
        data=encode(gather(call_sid="c-proxy")),
        headers=signed(encode(gather(call_sid="c-proxy"))),
        base_url="https://calls.example.com",
    )
    assert verbs(proxied)[0]["actionHook"] == f"https://calls.example.com{PATH}"


def test_a_directory_name_and_a_string_are_rendered() -> None:
    app, transfers = make_app()
    transfers.add_destination("sales", NumberDestination(NUMBER, message="Sales, one moment."))
    transfers.on_request(lambda call: "sales" if "sales" in call.text else "sip:desk@pbx.example.com")
    assert verbs(post(app, gather("sales please"))) == [
        {"verb": "say", "text": "Sales, one moment."},
        dial(PHONE),
    ]
    assert verbs(post(app, gather("the help desk"))) == [dial(SIP)]


def test_a_refusal_is_said() -> None:
    app, transfers = make_app()

    @transfers.on_request
    def closed(call: TransferRequest) -> None:
        refuse("Sales is closed until nine.")

    with testing.record_signals(app) as heard:
        answer = verbs(post(app, gather()))
    assert answer == [{"verb": "say", "text": "Sales is closed until nine."}]
    assert heard.one("transfer-refused")["reason"] == "Sales is closed until nine."


def test_nobody_answering_is_the_refusal_or_the_fallback() -> None:
    app, transfers = make_app()
    transfers.on_request(lambda call: None)
    assert verbs(post(app, gather())) == [{"verb": "say", "text": REFUSAL}]
    app, transfers = make_app(CALLTRANSFER_FALLBACK=NUMBER)
    transfers.on_request(lambda call: None)
    assert verbs(post(app, gather())) == [dial(PHONE)]


def test_rendered_verbs_are_valid_for_the_jambonz_sdk() -> None:
    from jambonz_sdk import validator as sdk

    validator = sdk.JambonzValidator()
    for destination, config, _ in RENDERED.values():
        answer = verbs(post(answering(destination, **config), gather()))
        assert validator.validate_app(answer) == [], answer
    refusal = verbs(post(answering("no-such-desk"), gather()))
    assert validator.validate_app(refusal) == []


# Capabilities ---------------------------------------------------------------------------------------

UNSUPPORTED: dict[str, tuple[t.Callable[[], Destination], str]] = {
    "an extension": (lambda: NumberDestination(NUMBER, extension="1234"), "extension"),
    "an assistant": (lambda: AssistantDestination("Sales bot"), "assistant"),
    "a warm mode": (lambda: NumberDestination(NUMBER, mode="warm-transfer-say-summary"), "mode"),
    "a warm mode by REFER": (
        lambda: SipDestination(
            "sip:desk@pbx.example.com",
            transfer_plan=TransferPlan("warm-transfer-say-message", sip_verb="refer"),
        ),
        "mode",
    ),
    "a summary plan": (
        lambda: NumberDestination(
            NUMBER,
            transfer_plan=TransferPlan(
                "blind-transfer-add-summary-to-sip-header", summary_plan=SummaryPlan()
            ),
        ),
        "mode",
    ),
    "a plan field beside the SIP verb": (
        lambda: SipDestination(
            "sip:desk@pbx.example.com",
            transfer_plan=TransferPlan(sip_verb="refer", sip_headers_in_refer_to_enabled=True),
        ),
        "transfer_plan.sip_headers_in_refer_to_enabled",
    ),
    "sip_verb bye": (
        lambda: SipDestination("sip:desk@pbx.example.com", transfer_plan=TransferPlan(sip_verb="bye")),
        "transfer_plan.sip_verb",
    ),
    "a caller ID template": (
        lambda: NumberDestination(NUMBER, caller_id="{{customer.number}}"),
        "caller_id template",
    ),
    "a caller ID on a REFER": (
        lambda: SipDestination(
            "sip:desk@pbx.example.com", caller_id="+31201234567", transfer_plan=TransferPlan(sip_verb="refer")
        ),
        "caller_id",
    ),
    # The feature server quotes callerName into the From header without escaping it.
    "a caller ID name with a quote": (
        lambda: NumberDestination(NUMBER, caller_id_name='B" <sip:e@x>'),
        "caller_id_name",
    ),
    "a caller ID name with a backslash": (
        lambda: NumberDestination(NUMBER, caller_id_name="Sales \\ Support"),
        "caller_id_name",
    ),
    "a caller ID name on a REFER": (
        lambda: NumberDestination(
            NUMBER, caller_id_name="Acme", transfer_plan=TransferPlan(sip_verb="refer")
        ),
        "caller_id_name",
    ),
}


@pytest.mark.parametrize("case", UNSUPPORTED, ids=list(UNSUPPORTED))
def test_what_jambonz_cannot_carry_takes_the_failure_path(case: str) -> None:
    build, attribute = UNSUPPORTED[case]
    destination = build()
    app = answering(destination)
    with testing.record_signals(app) as heard:
        answer = verbs(post(app, gather()))
    assert answer == [{"verb": "say", "text": REFUSAL}]
    failed = heard.one("transfer-failed")
    assert isinstance(failed["exception"], UnsupportedDestination)
    assert failed["exception"].attribute == attribute
    assert "jambonz" in str(failed["exception"])
    assert heard.names().count("transfer-refused") == 1
    # check() finds the same problem before anything is rendered.
    with app.app_context():
        platform = JambonzPlatform.from_config(app.config, app.extensions["calltransfer"].services)
    with pytest.raises(UnsupportedDestination) as raised:
        platform.check(destination)
    assert raised.value.attribute == attribute


def test_an_unsupported_destination_uses_the_fallback() -> None:
    app, transfers = make_app(CALLTRANSFER_FALLBACK="sip:operator@pbx.example.com")
    transfers.on_request(lambda call: NumberDestination(NUMBER, extension="12"))
    assert verbs(post(app, gather())) == [dial({"type": "sip", "sipUri": "sip:operator@pbx.example.com"})]


def test_a_refusal_never_fails_to_render() -> None:
    app, _ = make_app()
    with app.test_request_context(PATH, method="POST"):
        platform = JambonzPlatform.from_config(app.config, app.extensions["calltransfer"].services)
        response = platform.render_failure()
    assert json.loads(response.get_data()) == [{"verb": "say", "text": REFUSAL}]


# Hooks in ----------------------------------------------------------------------------------------


def asked(payload: t.Mapping[str, t.Any], **config: t.Any) -> TransferRequest:
    app, transfers = make_app(**config)
    seen: list[TransferRequest] = []
    transfers.on_request(lambda call: seen.append(call))
    response = post(app, payload)
    assert response.status_code == 200
    assert len(seen) == 1, "The hook did not ask for a destination."
    return seen[0]


def test_the_call_hook_asks_with_no_text() -> None:
    call = asked(call_hook(customerData={"ticket": "T-1"}))
    assert (call.platform, call.event, call.call_id) == ("jambonz", "call", CALL_SID)
    assert (call.caller, call.called, call.text, call.messages) == (CALLER, CALLED, "", [])
    assert call.assistant_id == "0dddaabf-0a30-43e3-84e8-426873b1a78b"
    assert call.metadata == {"ticket": "T-1"}
    assert call.raw["env_vars"] == {"DESK": "sales"}


def test_a_gather_asks_with_the_transcript() -> None:
    call = asked(gather("  I need billing. "))
    assert (call.event, call.call_id, call.text, call.caller) == (
        "gather",
        CALL_SID,
        "I need billing.",
        CALLER,
    )
    assert call.messages == [{"role": "user", "content": "I need billing."}]
    assert call.metadata == {}


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        (digits("2"), "2"),
        ({**call_info(), "reason": "timeout", "stt_latency_ms": 0}, ""),
        ({**call_info(), "reason": "error", "details": "stt failure"}, ""),
        (gather("maybe sales", reason="stt-low-confidence"), "maybe sales"),
        (gather(None), ""),
        (gather(speech={"alternatives": []}), ""),
        (gather(speech={"is_final": True}), ""),
    ],
    ids=[
        "digits",
        "timeout",
        "error",
        "low confidence",
        "no transcript",
        "no alternatives",
        "no alternatives key",
    ],
)
def test_every_gather_reason_asks(payload: dict[str, t.Any], text: str) -> None:
    call = asked(payload)
    assert (call.event, call.text) == ("gather", text)


def test_national_numbers_use_the_default_region() -> None:
    call = asked(gather(**{"from": "0612345678", "to": "020 794 8400"}), CALLTRANSFER_DEFAULT_REGION="NL")
    assert (call.caller, call.called) == (CALLER, CALLED)
    anonymous = asked(gather(**{"from": "anonymous"}))
    assert anonymous.caller == "anonymous"


HOOKS: dict[str, tuple[dict[str, t.Any], str, str | None]] = {
    "a call status": (status("ringing"), "call-status", CALL_SID),
    "a completed call": (
        status("completed", duration=42, call_termination_by="caller"),
        "call-status",
        CALL_SID,
    ),
    "a gather's invalid-answer report": (
        status(error="invalid actionHook response", reason="malformed jambonz payload"),
        "call-status",
        CALL_SID,
    ),
    "a dial result": (dial_result("busy", 486), "dial-status", CALL_SID),
    "a refer result": (refer_result(202, 200), "refer-status", CALL_SID),
    "a refer event": ({"event": "transfer-status", "call_status": 180}, "transfer-status", None),
    "an llm result": ({**call_info(), "completion_reason": "normal conversation end"}, "llm", CALL_SID),
    "a partial transcript": (
        {**call_info(), "speech": {"is_final": False, "alternatives": [{"transcript": "sal"}]}},
        "partial-result",
        CALL_SID,
    ),
}


@pytest.mark.parametrize("case", HOOKS, ids=list(HOOKS))
def test_other_hooks_are_events_answered_with_no_verbs(case: str) -> None:
    payload, kind, call_id = HOOKS[case]
    app, transfers = make_app()
    asked_for: list[TransferRequest] = []
    transfers.on_request(lambda call: asked_for.append(call))
    events: list[PlatformEvent] = []
    transfers.on_event(kind)(lambda event: events.append(event))
    with testing.record_signals(app) as heard:
        answer = verbs(post(app, payload))
    assert answer == []
    assert asked_for == []
    assert [(e.platform, e.type, e.call_id) for e in events] == [("jambonz", kind, call_id)]
    assert heard.one("event-received")["event"] == kind


def test_an_event_handler_answers_with_verbs() -> None:
    app, transfers = make_app()
    replies: dict[str, t.Any] = {
        "c-one": {"verb": "say", "text": "Nobody picked up."},
        "c-list": {"verbs": [{"verb": "say", "text": "Busy."}, {"verb": "hangup"}]},
        "c-bad": {"say": "not a verb object"},
        "c-bad-list": {"verbs": [{"text": "no verb"}]},
    }
    transfers.on_event("dial-status", platform="jambonz")(lambda event: replies[t.cast(str, event.call_id)])
    assert verbs(post(app, dial_result("no-answer", 487, call_sid="c-one"))) == [replies["c-one"]]
    assert verbs(post(app, dial_result("busy", 486, call_sid="c-list"))) == replies["c-list"]["verbs"]
    # A reply jambonz could not run is logged and replaced with the no-op.
    assert verbs(post(app, dial_result("busy", 486, call_sid="c-bad"))) == []
    assert verbs(post(app, dial_result("busy", 486, call_sid="c-bad-list"))) == []


BAD: dict[str, tuple[dict[str, t.Any], str]] = {
    "no call_sid": ({**gather(), "call_sid": None}, "call_sid"),
    "a call_sid list": (gather(call_sid=["x"]), "call_sid"),
    "a from number": (gather(**{"from": 31612345678}), "from"),
    "a to object": (call_hook(to={"user": "x"}), "to"),
    "a speech list": (gather(speech=["x"]), "speech"),
    "an alternatives string": (gather(speech={"alternatives": "x"}), "speech"),
    "an alternative number": (gather(speech={"alternatives": [3]}), "speech"),
    "a transcript object": (gather(speech={"alternatives": [{"transcript": {}}]}), "speech"),
    "digits number": (digits(5), "digits"),  # type: ignore[arg-type]
    "a reason object": (gather(reason={"r": 1}), "reason"),
    "a customerData string": (call_hook(customerData="x"), "customerData"),
    "an application_sid list": (call_hook(application_sid=[]), "application_sid"),
    "a sip list": (call_hook(sip=[]), "sip"),
    "a call_status number": (status(call_status=3), "call_status"),
    "no call_status": ({"call_sid": "c1", "direction": "inbound"}, "call_status"),
    "a dial_call_status list": (dial_result(["busy"], 486), "dial_call_status"),  # type: ignore[arg-type]
    "a refer_status float": (refer_result(202.5), "refer_status"),  # type: ignore[arg-type]
    "a refer_status bool": (refer_result(True), "refer_status"),
    "a final status string": (refer_result(202, "ok"), "final_referred_call_status"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_fields_of_the_wrong_type_are_400_naming_them(case: str) -> None:
    payload, field = BAD[case]
    app, transfers = make_app()
    transfers.on_request(lambda call: pytest.fail("A bad payload reached a handler."))
    response = post(app, payload)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert field in response.json["errors"], response.json
    assert response.json["message"].endswith(".")


def test_a_tool_hook_is_told_it_has_no_call() -> None:
    app, _ = make_app()
    response = post(app, {"tool_call_id": "t1", "name": "transfer", "args": {}})
    assert response.status_code == 400
    assert "call_sid" in response.json["message"] and "toolHook" in response.json["message"]


# Verification -----------------------------------------------------------------------------------


def test_signed_hooks_are_accepted() -> None:
    app = answering(NumberDestination(NUMBER))
    assert verbs(post(app, gather())) == [dial(PHONE)]


def test_verification_failures_are_401() -> None:
    app, transfers = make_app()
    transfers.on_request(lambda call: pytest.fail("An unverified request reached a handler."))
    body = encode(gather())
    now = int(time.time())
    good = signature(body, timestamp=now)
    digest = good.partition("v1=")[2]
    cases = {
        "no header": {},
        "an empty header": {"Jambonz-Signature": ""},
        "a wrong secret": {"Jambonz-Signature": signature(body, "wh_secret_wrong")},
        "garbage": {"Jambonz-Signature": "garbage"},
        "no timestamp": {"Jambonz-Signature": f"v1={digest}"},
        "no v1": {"Jambonz-Signature": f"t={now}"},
        "a word for a timestamp": {"Jambonz-Signature": f"t=now,v1={digest}"},
        "a negative timestamp": {"Jambonz-Signature": f"t=-{now},v1={digest}"},
        "two timestamps": {"Jambonz-Signature": f"t={now},t={now},v1={digest}"},
        "a stale timestamp": {"Jambonz-Signature": signature(body, timestamp=now - 400)},
        "a future timestamp": {"Jambonz-Signature": signature(body, timestamp=now + 400)},
        "another timestamp than signed": {"Jambonz-Signature": f"t={now - 1},v1={digest}"},
        "a v0 signature only": {"Jambonz-Signature": f"t={now},v0={digest}"},
        "a truncated signature": {"Jambonz-Signature": f"t={now},v1={digest[:-2]}"},
    }
    for what, headers in cases.items():
        with testing.record_signals(app) as heard:
            response = app.test_client().post(PATH, data=body, headers={**JSON_HEADERS, **headers})
        assert response.status_code == 401, what
        assert heard.names() == ["request-rejected"], what
    changed = encode(gather("I want billing."))
    response = app.test_client().post(PATH, data=changed, headers={**JSON_HEADERS, "Jambonz-Signature": good})
    assert response.status_code == 401


def test_verification_comes_before_parsing() -> None:
    app, _ = make_app()
    for body in (b"{not json", encode({"call_sid": 5}), b""):
        response = app.test_client().post(PATH, data=body, headers=JSON_HEADERS)
        assert response.status_code == 401
    # Signed, the same bodies are 400.
    assert post(app, b"{not json").status_code == 400
    assert post(app, encode({"call_sid": 5})).status_code == 400


def test_the_window_is_symmetric_and_configurable() -> None:
    app = answering(NumberDestination(NUMBER), CALLTRANSFER_JAMBONZ_MAX_AGE=60)
    now = int(time.time())
    assert post(app, gather(call_sid="c-past"), timestamp=now - 50).status_code == 200
    assert post(app, gather(call_sid="c-ahead"), timestamp=now + 50).status_code == 200
    assert post(app, gather(call_sid="c-old"), timestamp=now - 90).status_code == 401
    assert post(app, gather(call_sid="c-early"), timestamp=now + 90).status_code == 401


def test_the_window_edges() -> None:
    body = encode(gather())
    verifier = JambonzSignatureVerifier([SECRET], max_age=300, clock=lambda: 1_700_000_300.0)

    def request(stamp: int) -> Inbound:
        headers = {"Jambonz-Signature": signature(body, timestamp=stamp)}
        return Inbound(headers=headers, body=body, method="POST", url=HOOK)

    verifier.verify(request(1_700_000_000))
    verifier.verify(request(1_700_000_600))
    for stamp in (1_699_999_999, 1_700_000_601):
        with pytest.raises(RequestVerificationFailed, match="outside the 300 s window"):
            verifier.verify(request(stamp))


def test_a_rotation_list_accepts_each_secret() -> None:
    app = answering(NumberDestination(NUMBER), CALLTRANSFER_JAMBONZ_SECRET=[SECRET, OLD_SECRET])
    assert post(app, gather(call_sid="c-new")).status_code == 200
    assert post(app, gather(call_sid="c-old"), secret=OLD_SECRET).status_code == 200
    assert post(app, gather(call_sid="c-other"), secret="wh_secret_someone_else").status_code == 401


def test_any_of_several_v1_signatures_may_match() -> None:
    app = answering(NumberDestination(NUMBER))
    body = encode(gather())
    now = int(time.time())
    right = signature(body, timestamp=now).partition("v1=")[2]
    wrong = signature(body, "wh_secret_wrong", timestamp=now).partition("v1=")[2]
    for header in (
        f"t={now},v1={wrong},v1={right}",
        f"t={now},v1={right},v1={wrong}",
        f"v1={right.upper()}, t={now}, v0=abc",
    ):
        response = app.test_client().post(
            PATH, data=body, headers={**JSON_HEADERS, "Jambonz-Signature": header}
        )
        assert response.status_code == 200, header
    header = f"t={now},v1={wrong},v1={wrong}"
    response = app.test_client().post(PATH, data=body, headers={**JSON_HEADERS, "jambonz-signature": header})
    assert response.status_code == 401


def test_verification_details_go_to_the_log_only(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app()
    body = encode(gather())
    stale = signature(body, timestamp=int(time.time()) - 1000)
    response = app.test_client().post(PATH, data=body, headers={**JSON_HEADERS, "Jambonz-Signature": stale})
    assert response.status_code == 401
    assert "window" not in response.get_data(as_text=True)
    assert "CALLTRANSFER_JAMBONZ_MAX_AGE" in caplog.text


def test_verification_can_be_turned_off() -> None:
    app, transfers = make_app(CALLTRANSFER_VERIFY_REQUESTS=False, CALLTRANSFER_JAMBONZ_SECRET=None)
    transfers.on_request(lambda call: NUMBER)
    response = app.test_client().post(PATH, data=encode(gather()), headers=JSON_HEADERS)
    assert verbs(response) == [dial(PHONE)]


def test_the_jambonz_sdk_accepts_our_signatures_and_we_accept_its() -> None:
    from jambonz_sdk import _signature as sdk

    body = encode(gather("Ünïcode sales ☎"))
    header = signature(body)
    # The signature jambonz sends (as our signer builds it) verifies with the SDK's verifier ...
    assert sdk.verify_signature(body, header, SECRET) is True
    with pytest.raises(ValueError):
        sdk.verify_signature(body + b" ", header, SECRET)
    # ... and what the SDK accepts, we accept.
    verifier = JambonzSignatureVerifier([SECRET])
    verifier.verify(Inbound(headers={"Jambonz-Signature": header}, body=body, method="POST", url=HOOK))
    app = answering(NumberDestination(NUMBER))
    response = app.test_client().post(PATH, data=body, headers={**JSON_HEADERS, "Jambonz-Signature": header})
    assert response.status_code == 200


def test_a_replayed_hook_gets_the_first_answer_without_routing() -> None:
    app, transfers = make_app()
    seen: list[TransferRequest] = []
    transfers.on_request(lambda call: seen.append(call) or NUMBER)  # type: ignore[func-returns-value]
    body = encode(gather())
    headers = signed(body)
    first = app.test_client().post(PATH, data=body, headers=headers)
    again = app.test_client().post(PATH, data=body, headers=headers)
    assert verbs(first) == verbs(again) == [dial(PHONE)]
    assert len(seen) == 1


# Configuration --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"CALLTRANSFER_JAMBONZ_SECRET": None}, "CALLTRANSFER_JAMBONZ_SECRET"),
        ({"CALLTRANSFER_JAMBONZ_SECRET": ""}, "CALLTRANSFER_JAMBONZ_SECRET"),
        ({"CALLTRANSFER_JAMBONZ_SECRET": []}, "CALLTRANSFER_JAMBONZ_SECRET"),
        ({"CALLTRANSFER_JAMBONZ_SECRET": 42}, "CALLTRANSFER_JAMBONZ_SECRET"),
        ({"CALLTRANSFER_JAMBONZ_SECRET": [SECRET, ""]}, "CALLTRANSFER_JAMBONZ_SECRET"),
        ({"CALLTRANSFER_JAMBONZ_MAX_AGE": "300"}, "CALLTRANSFER_JAMBONZ_MAX_AGE"),
        ({"CALLTRANSFER_JAMBONZ_MAX_AGE": 0}, "CALLTRANSFER_JAMBONZ_MAX_AGE"),
        ({"CALLTRANSFER_JAMBONZ_MAX_AGE": None}, "CALLTRANSFER_JAMBONZ_MAX_AGE"),
        ({"CALLTRANSFER_JAMBONZ_MAX_AGE": True}, "CALLTRANSFER_JAMBONZ_MAX_AGE"),
        ({"CALLTRANSFER_JAMBONZ_DIAL_TIMEOUT": -5}, "CALLTRANSFER_JAMBONZ_DIAL_TIMEOUT"),
        ({"CALLTRANSFER_JAMBONZ_DIAL_TIMEOUT": float("nan")}, "CALLTRANSFER_JAMBONZ_DIAL_TIMEOUT"),
        ({"CALLTRANSFER_JAMBONZ_CALLER_ID": ""}, "CALLTRANSFER_JAMBONZ_CALLER_ID"),
        ({"CALLTRANSFER_JAMBONZ_CALLER_ID": 31201234567}, "CALLTRANSFER_JAMBONZ_CALLER_ID"),
        ({"CALLTRANSFER_JAMBONZ_CALLER_NAME": "Acme\r\nX-Evil: 1"}, "CALLTRANSFER_JAMBONZ_CALLER_NAME"),
        ({"CALLTRANSFER_JAMBONZ_CALLER_NAME": 'Acme" <sip:evil@x>'}, "CALLTRANSFER_JAMBONZ_CALLER_NAME"),
    ],
)
def test_bad_configuration_names_the_key(config: dict[str, t.Any], key: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        make_app(**config)
    assert raised.value.key == key
    assert key in str(raised.value)
    assert str(raised.value).endswith((".", ")"))


def test_the_secret_enables_the_platform() -> None:
    app = Flask("jambonz_enabled")
    app.config.update(TESTING=True, CALLTRANSFER_STORE_URL="memory://", CALLTRANSFER_JAMBONZ_SECRET=SECRET)
    CallTransfer(app)
    assert app.config["CALLTRANSFER_JAMBONZ_MAX_AGE"] == 300
    assert post(app, status()).status_code == 200


# Outcomes ---------------------------------------------------------------------------------------


def outcomes(heard: testing.SignalRecorder) -> list[tuple[str, str, str, str]]:
    return [(o["platform"], o["call_id"], o["outcome"], o["detail"]) for o in heard.named("transfer-outcome")]


@pytest.mark.parametrize(
    ("payload", "outcome", "detail"),
    [
        (dial_result("completed", 200), "connected", "completed"),
        (dial_result("busy", 486), "busy", "busy"),
        (dial_result("no-answer", 487), "no-answer", "no-answer"),
        (dial_result("failed", 503), "failed", "failed"),
        (dial_result("early-media", 183), "unknown", "early-media"),
        (refer_result(202, 200), "connected", "200"),
        (refer_result(202, 486), "busy", "486"),
        (refer_result(202, 600), "busy", "600"),
        (refer_result(202, 487), "no-answer", "487"),
        (refer_result(202, 480), "no-answer", "480"),
        (refer_result(202, 408), "no-answer", "408"),
        (refer_result(202, 503), "failed", "503"),
        (refer_result(403), "failed", "403"),
        (refer_result(501), "failed", "501"),
        (refer_result(202, "200"), "connected", "200"),  # type: ignore[arg-type]
    ],
)
def test_dial_and_refer_results_are_reported_for_any_call(
    payload: dict[str, t.Any], outcome: str, detail: str
) -> None:
    app, _ = make_app()
    with testing.record_signals(app) as heard:
        assert verbs(post(app, payload)) == []
    assert outcomes(heard) == [("jambonz", CALL_SID, outcome, detail)]


def test_an_unconfirmed_refer_counts_only_after_our_transfer() -> None:
    refer = SipDestination("sip:desk@pbx.example.com", transfer_plan=TransferPlan(sip_verb="refer"))
    app = answering(refer)
    with testing.record_signals(app) as heard:
        post(app, refer_result(202, call_sid="c-not-ours"))
        verbs(post(app, gather(call_sid="c-ours")))
        post(app, refer_result(202, call_sid="c-ours"))
        post(app, refer_result(202, call_sid="c-ours", stt="again"))
    assert outcomes(heard) == [("jambonz", "c-ours", "unknown", "202")]


def test_an_answered_transfer_reports_its_dial_result_once() -> None:
    app = answering(NumberDestination(NUMBER))
    with testing.record_signals(app) as heard:
        answer = verbs(post(app, call_hook()))
        assert answer[0]["actionHook"] == HOOK
        post(app, status("in-progress"))
        post(app, dial_result("completed", 200))
        post(app, status("completed", duration=63))
    assert outcomes(heard) == [("jambonz", CALL_SID, "connected", "completed")]


def test_status_events_report_no_outcome() -> None:
    app = answering(NumberDestination(NUMBER))
    with testing.record_signals(app) as heard:
        post(app, call_hook())
        post(app, status("completed", duration=5))
        post(app, status("failed"))
        post(app, {"event": "transfer-status", "call_status": 200})
    assert outcomes(heard) == []
