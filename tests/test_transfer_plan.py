"""Vapi transfer plans: every field of Vapi's TransferPlan, TransferFallbackPlan and SummaryPlan,
checked against its mode when built, rendered in Vapi's camelCase in the destination reply and the
live control body, and refused on the platforms that transfer blind only.

The allowed modes below are written out from platforms.md §1.4 (Vapi's OpenAPI ``TransferPlan``,
whose field descriptions the SDK's ``transfer_plan.py`` repeats), not read from the package.
"""

from __future__ import annotations

import dataclasses
import json
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import FallbackPlan
from flask_calltransfer import InvalidDestination
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import SummaryPlan
from flask_calltransfer import TransferPlan
from flask_calltransfer import testing
from tests.conftest import TOKEN
from tests.conftest import MakeApp
from tests.conftest import Sipgate
from tests.conftest import Vapi
from tests.recorder import Recorder

BLIND = "blind-transfer"
SIP_HEADER = "blind-transfer-add-summary-to-sip-header"
SAY_MESSAGE = "warm-transfer-say-message"
SAY_SUMMARY = "warm-transfer-say-summary"
WAIT_MESSAGE = "warm-transfer-wait-for-operator-to-speak-first-and-then-say-message"
WAIT_SUMMARY = "warm-transfer-wait-for-operator-to-speak-first-and-then-say-summary"
TWIML = "warm-transfer-twiml"
EXPERIMENTAL = "warm-transfer-experimental"
MODES = [BLIND, SIP_HEADER, SAY_MESSAGE, SAY_SUMMARY, WAIT_MESSAGE, WAIT_SUMMARY, TWIML, EXPERIMENTAL]

#: A valid value for each field that only some modes use, and those modes.
MODE_BOUND: dict[str, tuple[t.Any, set[str]]] = {
    "message": ("A caller about an unpaid invoice.", {SIP_HEADER, SAY_MESSAGE, WAIT_MESSAGE, EXPERIMENTAL}),
    "timeout": (30, {WAIT_MESSAGE, WAIT_SUMMARY}),
    "hold_audio_url": ("https://cdn.example.com/hold.mp3", {EXPERIMENTAL}),
    "transfer_complete_audio_url": ("https://cdn.example.com/beep.wav", {EXPERIMENTAL}),
    "context_engineering_plan": ("none", {EXPERIMENTAL}),
    "twiml": ("<Say>Hello, a caller for billing.</Say>", {TWIML}),
    "summary_plan": (SummaryPlan(), {SIP_HEADER, SAY_SUMMARY, WAIT_SUMMARY, EXPERIMENTAL}),
    "fallback_plan": (FallbackPlan("Nobody is free."), {BLIND, SIP_HEADER, EXPERIMENTAL}),
}

#: Every field of Vapi's TransferPlan, in its wire name.
VAPI_PLAN_FIELDS = {
    "mode",
    "message",
    "timeout",
    "sipVerb",
    "dialTimeout",
    "holdAudioUrl",
    "transferCompleteAudioUrl",
    "contextEngineeringPlan",
    "twiml",
    "summaryPlan",
    "sipHeadersInReferToEnabled",
    "fallbackPlan",
}

REFUSAL = "I'm sorry, I can't transfer your call right now."


# Construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("field", sorted(MODE_BOUND))
def test_each_field_is_accepted_exactly_in_its_modes(field: str, mode: str) -> None:
    value, modes = MODE_BOUND[field]
    if mode in modes:
        plan = TransferPlan(mode, **{field: value})
        assert getattr(plan, field) == value
        return
    with pytest.raises(InvalidDestination) as info:
        TransferPlan(mode, **{field: value})
    text = str(info.value)
    assert f"transfer plan's {field} " in text
    assert repr(mode) in text
    assert "leave " + field + " out" in text


@pytest.mark.parametrize(
    ("plan", "field", "mode"),
    [
        ({"mode": SAY_MESSAGE, "twiml": "<Say>Hi</Say>"}, "twiml", SAY_MESSAGE),
        ({"mode": SAY_MESSAGE, "summary_plan": SummaryPlan(enabled=True)}, "summary_plan", SAY_MESSAGE),
        ({"mode": WAIT_MESSAGE, "summary_plan": SummaryPlan()}, "summary_plan", WAIT_MESSAGE),
        ({"mode": SAY_SUMMARY, "timeout": 20}, "timeout", SAY_SUMMARY),
        ({"mode": EXPERIMENTAL, "timeout": 20}, "timeout", EXPERIMENTAL),
        ({"mode": SAY_SUMMARY, "message": "Hello"}, "message", SAY_SUMMARY),
        ({"mode": BLIND, "message": "Hello"}, "message", BLIND),
        ({"mode": SAY_MESSAGE, "fallback_plan": FallbackPlan("Sorry.")}, "fallback_plan", SAY_MESSAGE),
        ({"mode": TWIML, "hold_audio_url": "https://a.example/h.mp3"}, "hold_audio_url", TWIML),
    ],
)
def test_forbidden_combinations_name_the_field_and_the_mode(
    plan: dict[str, t.Any], field: str, mode: str
) -> None:
    with pytest.raises(InvalidDestination, match=f"transfer plan's {field} is not used in mode '{mode}'"):
        TransferPlan(**plan)


@pytest.mark.parametrize("sip_verb", [None, "refer", "bye"])
def test_dial_timeout_needs_the_dial_verb(sip_verb: str | None) -> None:
    with pytest.raises(InvalidDestination) as info:
        TransferPlan(SAY_MESSAGE, sip_verb=sip_verb, dial_timeout=20)
    text = str(info.value)
    assert "dial_timeout applies only with sip_verb='dial'" in text
    assert f"mode '{SAY_MESSAGE}'" in text and f"sip_verb={sip_verb!r}" in text
    assert TransferPlan(SAY_MESSAGE, sip_verb="dial", dial_timeout=20).dial_timeout == 20


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sip_verb", ["refer", "bye", "dial"])
def test_sip_verb_and_refer_to_headers_fit_every_mode(mode: str, sip_verb: str) -> None:
    plan = TransferPlan(mode, sip_verb=sip_verb, sip_headers_in_refer_to_enabled=True)
    assert (plan.sip_verb, plan.sip_headers_in_refer_to_enabled) == (sip_verb, True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "warm"}, "not one of Vapi's modes"),
        ({"mode": None}, "not one of Vapi's modes"),
        ({"mode": WAIT_MESSAGE, "timeout": 0}, "timeout must be a number of seconds from 1 to 600"),
        ({"mode": WAIT_MESSAGE, "timeout": 601}, "from 1 to 600"),
        ({"mode": WAIT_MESSAGE, "timeout": "30"}, "from 1 to 600"),
        ({"mode": WAIT_MESSAGE, "timeout": True}, "from 1 to 600"),
        ({"mode": WAIT_MESSAGE, "timeout": float("nan")}, "from 1 to 600"),
        ({"sip_verb": "invite"}, "SIP verb 'invite' is not one of Vapi's"),
        ({"sip_verb": "dial", "dial_timeout": 0}, "dial_timeout must be a number of seconds from 1 to 600"),
        ({"sip_verb": "dial", "dial_timeout": 900}, "dial_timeout must be"),
        ({"mode": EXPERIMENTAL, "hold_audio_url": "ftp://a.example/h.mp3"}, "hold_audio_url must be the"),
        ({"mode": EXPERIMENTAL, "hold_audio_url": "hold.mp3"}, "http:// or https:// URL"),
        ({"mode": EXPERIMENTAL, "transfer_complete_audio_url": 5}, "transfer_complete_audio_url must be"),
        ({"mode": EXPERIMENTAL, "context_engineering_plan": "some"}, "'all', 'none', or the number"),
        ({"mode": EXPERIMENTAL, "context_engineering_plan": 0}, "context_engineering_plan must be"),
        ({"mode": EXPERIMENTAL, "context_engineering_plan": True}, "context_engineering_plan must be"),
        ({"mode": TWIML, "twiml": "<Dial>+31612345678</Dial>"}, "uses <Dial>"),
        ({"mode": TWIML, "twiml": "<Say>" + "x" * 4090 + "</Say>"}, "longer than 4096 characters"),
        ({"mode": TWIML, "twiml": 5}, "twiml must be a string"),
        # Vapi would fail these mid-transfer: they are not XML, or smuggle in what is not TwiML.
        ({"mode": TWIML, "twiml": "<Say>unclosed"}, "not well-formed XML"),
        ({"mode": TWIML, "twiml": "<Say:x>y</Say:x>"}, "not well-formed XML"),
        ({"mode": TWIML, "twiml": "<Say>Tom & Jerry</Say>"}, "not well-formed XML"),
        ({"mode": TWIML, "twiml": '<!DOCTYPE r [<!ENTITY a "b">]><Say>&a;</Say>'}, "declaration"),
        ({"mode": TWIML, "twiml": "<Response><Dial>+31612345678</Dial></Response>"}, "uses <Dial>"),
        ({"mode": TWIML, "twiml": "<Pause/><Redirect>x</Redirect>"}, "uses <Redirect>"),
        ({"mode": SAY_MESSAGE, "message": 5}, "transfer plan's message must be a string"),
        ({"sip_headers_in_refer_to_enabled": "yes"}, "must be True or False"),
        (
            {"summary_plan": {"enabled": True}, "mode": SAY_SUMMARY},
            "transfer plan's summary_plan must be a flask_calltransfer.SummaryPlan",
        ),
        (
            {"fallback_plan": "Sorry."},
            "transfer plan's fallback_plan must be a flask_calltransfer.FallbackPlan",
        ),
    ],
)
def test_invalid_values(kwargs: dict[str, t.Any], match: str) -> None:
    with pytest.raises(InvalidDestination, match=match):
        TransferPlan(**kwargs)


def test_twiml_with_every_allowed_verb() -> None:
    twiml = (
        '<Response><Say voice="alice">Hello.</Say><Pause length="2"/><Play>https://a.example/b.mp3</Play>'
        '<Gather numDigits="1"><Say>Press 1.</Say></Gather><Hangup/></Response>'
    )
    assert TransferPlan(TWIML, twiml=twiml).twiml == twiml


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"enabled": "yes"}, "summary plan's enabled must be True or False"),
        ({"timeout_seconds": 61}, "summary plan's timeout_seconds must be a number of seconds from 1 to 60"),
        ({"messages": "Summarise."}, "summary plan's messages must be a list of message dicts"),
        ({"messages": [1]}, "list of message dicts"),
        ({"messages": [{1: "x"}]}, "list of message dicts"),
        ({"messages": [{"role": "system", "content": object()}]}, "list of message dicts"),
        # NaN and infinities are not JSON: Vapi could not read the reply.
        ({"messages": [{"role": "system", "content": float("nan")}]}, "list of message dicts"),
        ({"messages": [{"role": "system", "content": float("inf")}]}, "list of message dicts"),
    ],
)
def test_invalid_summary_plans(kwargs: dict[str, t.Any], match: str) -> None:
    with pytest.raises(InvalidDestination, match=match):
        SummaryPlan(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"message": None}, "fallback plan's message is empty"),
        ({"message": 5}, "fallback plan's message must be a string"),
        ({"message": "Sorry.", "end_call_enabled": "no"}, "fallback plan's end_call_enabled must be True"),
    ],
)
def test_invalid_fallback_plans(kwargs: dict[str, t.Any], match: str) -> None:
    with pytest.raises(InvalidDestination, match=match):
        FallbackPlan(**kwargs)


def test_plans_are_immutable_and_hashable() -> None:
    messages = [{"role": "system", "content": "Two sentences."}]
    summary = SummaryPlan(messages=messages)
    messages[0]["content"] = "changed"
    messages.append({"role": "user", "content": "more"})
    assert summary.messages == ({"role": "system", "content": "Two sentences."},)
    plan = TransferPlan(SAY_SUMMARY, summary_plan=summary)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.mode = BLIND  # type: ignore[misc]
    same = TransferPlan(SAY_SUMMARY, summary_plan=SummaryPlan(messages=[dict(summary.messages[0])]))
    assert plan == same and hash(plan) == hash(same)
    assert {NumberDestination("+31612345678", transfer_plan=plan)} == {
        NumberDestination("+31612345678", transfer_plan=same)
    }


@pytest.mark.parametrize(
    "build",
    [
        lambda **kw: NumberDestination("+31612345678", **kw),
        lambda **kw: SipDestination("sip:desk@pbx.example.com", **kw),
    ],
)
def test_mode_is_a_shorthand_and_not_to_be_combined(build: t.Callable[..., t.Any]) -> None:
    shorthand = build(mode=SAY_SUMMARY)
    assert shorthand.transfer_plan == TransferPlan(SAY_SUMMARY)
    assert shorthand == build(transfer_plan=TransferPlan(SAY_SUMMARY))
    assert build(transfer_plan=TransferPlan(SAY_MESSAGE, message="Hi")).mode == SAY_MESSAGE
    assert build().transfer_plan is None and build().mode is None
    for plan in (TransferPlan(SAY_SUMMARY), TransferPlan(BLIND)):
        with pytest.raises(InvalidDestination, match="either mode= or transfer_plan=, not both"):
            build(mode=SAY_SUMMARY, transfer_plan=plan)
    with pytest.raises(InvalidDestination, match="transfer_plan must be a flask_calltransfer.TransferPlan"):
        build(transfer_plan={"mode": SAY_SUMMARY})


def test_directory_entries_keep_their_plan(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    plan = TransferPlan(SAY_MESSAGE, message="A caller for billing.", sip_verb="dial", dial_timeout=25)
    transfers.add_destination("billing", NumberDestination("+31207948450", transfer_plan=plan))
    transfers.add_destination("sales", NumberDestination("+31207948451", mode=SAY_SUMMARY))
    assert transfers.destinations["billing"].transfer_plan == plan
    assert transfers.destinations["sales"].mode == SAY_SUMMARY
    transfers.on_request(lambda call: "billing" if "billing" in call.text else "sales")
    app, _ = make_app(transfers)
    vapi = Vapi(app.test_client())
    assert vapi.ask(text="billing").json["destination"]["transferPlan"] == {
        "mode": SAY_MESSAGE,
        "message": "A caller for billing.",
        "sipVerb": "dial",
        "dialTimeout": 25,
    }
    assert vapi.ask(text="other").json["destination"]["transferPlan"] == {"mode": SAY_SUMMARY}


# Rendering in the destination reply --------------------------------------------------------------


SUMMARY = SummaryPlan(
    enabled=True,
    messages=[
        {"role": "system", "content": "Summarise the call in two sentences."},
        {"role": "user", "content": "Here is the transcript:\n\n{{transcript}}"},
    ],
    timeout_seconds=10,
)

EXPERIMENTAL_PLAN = TransferPlan(
    EXPERIMENTAL,
    message="A caller about an unpaid invoice; connecting now.",
    sip_verb="dial",
    dial_timeout=40,
    hold_audio_url="https://cdn.example.com/hold.mp3",
    transfer_complete_audio_url="https://cdn.example.com/beep.wav",
    context_engineering_plan=6,
    summary_plan=SUMMARY,
    sip_headers_in_refer_to_enabled=False,
    fallback_plan=FallbackPlan("Nobody can take your call right now.", end_call_enabled=False),
)

EXPERIMENTAL_JSON = {
    "mode": EXPERIMENTAL,
    "message": "A caller about an unpaid invoice; connecting now.",
    "sipVerb": "dial",
    "dialTimeout": 40,
    "holdAudioUrl": "https://cdn.example.com/hold.mp3",
    "transferCompleteAudioUrl": "https://cdn.example.com/beep.wav",
    "contextEngineeringPlan": {"type": "lastNMessages", "maxMessages": 6},
    "summaryPlan": {
        "enabled": True,
        "messages": [
            {"role": "system", "content": "Summarise the call in two sentences."},
            {"role": "user", "content": "Here is the transcript:\n\n{{transcript}}"},
        ],
        "timeoutSeconds": 10,
    },
    "sipHeadersInReferToEnabled": False,
    "fallbackPlan": {"message": "Nobody can take your call right now.", "endCallEnabled": False},
}


def answer(make_app: MakeApp, destination: t.Any) -> t.Any:
    transfers = CallTransfer()
    transfers.on_request(lambda call: destination)
    app, _ = make_app(transfers)
    response = Vapi(app.test_client()).ask()
    assert response.status_code == 200
    assert testing.reply_problems("vapi", response.status_code, response.data) == []
    return response.json


def test_every_experimental_field_in_vapis_names(make_app: MakeApp) -> None:
    reply = answer(make_app, NumberDestination("+31612345678", transfer_plan=EXPERIMENTAL_PLAN))
    assert reply == {
        "destination": {
            "type": "number",
            "number": "+31612345678",
            "numberE164CheckEnabled": True,
            "transferPlan": EXPERIMENTAL_JSON,
        }
    }


@pytest.mark.parametrize(
    ("plan", "wire"),
    [
        (TransferPlan(SAY_MESSAGE), {"mode": SAY_MESSAGE}),
        (
            TransferPlan(WAIT_MESSAGE, message="Hello, a caller for you.", timeout=45),
            {"mode": WAIT_MESSAGE, "message": "Hello, a caller for you.", "timeout": 45},
        ),
        (
            TransferPlan(WAIT_SUMMARY, timeout=12.5, summary_plan=SummaryPlan(enabled=False)),
            {"mode": WAIT_SUMMARY, "timeout": 12.5, "summaryPlan": {"enabled": False}},
        ),
        (
            TransferPlan(TWIML, twiml='<Say>Hello.</Say><Pause length="2"/>'),
            {"mode": TWIML, "twiml": '<Say>Hello.</Say><Pause length="2"/>'},
        ),
        (
            TransferPlan(EXPERIMENTAL, context_engineering_plan="all"),
            {"mode": EXPERIMENTAL, "contextEngineeringPlan": {"type": "all"}},
        ),
        (
            TransferPlan(SIP_HEADER, summary_plan=SummaryPlan(timeout_seconds=3)),
            {"mode": SIP_HEADER, "summaryPlan": {"timeoutSeconds": 3}},
        ),
        (
            TransferPlan(fallback_plan=FallbackPlan("Sorry, nobody answered.")),
            {"mode": BLIND, "fallbackPlan": {"message": "Sorry, nobody answered."}},
        ),
    ],
)
def test_number_plans_render_only_what_is_set(make_app: MakeApp, plan: TransferPlan, wire: t.Any) -> None:
    destination = answer(
        make_app, NumberDestination("+31612345678", message="One moment.", transfer_plan=plan)
    )
    assert destination["destination"]["transferPlan"] == wire
    assert destination["destination"]["message"] == "One moment."


def test_sip_plan_with_headers_in_refer_to(make_app: MakeApp) -> None:
    plan = TransferPlan(BLIND, sip_verb="refer", sip_headers_in_refer_to_enabled=True)
    reply = answer(
        make_app, SipDestination("sip:desk@pbx.example.com", headers={"X-Account": "42"}, transfer_plan=plan)
    )
    assert reply == {
        "destination": {
            "type": "sip",
            "sipUri": "sip:desk@pbx.example.com",
            "sipHeaders": {"X-Account": "42"},
            "transferPlan": {"mode": BLIND, "sipVerb": "refer", "sipHeadersInReferToEnabled": True},
        }
    }


def test_sip_plan_with_every_experimental_field(make_app: MakeApp) -> None:
    reply = answer(make_app, SipDestination("sip:desk@pbx.example.com", transfer_plan=EXPERIMENTAL_PLAN))
    assert reply["destination"]["transferPlan"] == EXPERIMENTAL_JSON


def test_every_vapi_plan_field_is_rendered_somewhere(make_app: MakeApp) -> None:
    twiml = answer(
        make_app, NumberDestination("+31612345678", transfer_plan=TransferPlan(TWIML, twiml="<Hangup/>"))
    )
    wait = answer(
        make_app, NumberDestination("+31612345678", transfer_plan=TransferPlan(WAIT_SUMMARY, timeout=9))
    )
    seen = (
        set(EXPERIMENTAL_JSON)
        | set(twiml["destination"]["transferPlan"])
        | set(wait["destination"]["transferPlan"])
    )
    assert seen == VAPI_PLAN_FIELDS
    assert set(EXPERIMENTAL_JSON["summaryPlan"]) == {"enabled", "messages", "timeoutSeconds"}
    assert set(EXPERIMENTAL_JSON["fallbackPlan"]) == {"message", "endCallEnabled"}


def test_the_wire_bytes_are_compact_json(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(
        lambda call: NumberDestination("+31612345678", transfer_plan=TransferPlan(SAY_MESSAGE, message="Hi"))
    )
    app, _ = make_app(transfers)
    data = Vapi(app.test_client()).ask().data
    assert b'"transferPlan":{"mode":"warm-transfer-say-message","message":"Hi"}' in data
    assert json.loads(data)["destination"]["transferPlan"]["message"] == "Hi"


# Live call control ------------------------------------------------------------------------------


CONTROL = "/live-1/control"


def tool_call(make_app: MakeApp, recorder: Recorder, destination: t.Any) -> t.Any:
    transfers = CallTransfer()
    transfers.on_request(lambda call: destination)
    app, _ = make_app(
        transfers, CALLTRANSFER_VAPI_TOOLS=["transferToHuman"], CALLTRANSFER_VAPI_CONTROL_HOSTS=[recorder.url]
    )
    response = Vapi(app.test_client()).post(
        testing.vapi_tool_calls("transferToHuman", tool_call_id="call_1", control_url=recorder.url + CONTROL)
    )
    assert response.status_code == 200
    return response


def test_live_control_carries_the_whole_plan(make_app: MakeApp, recorder: Recorder) -> None:
    destination = NumberDestination(
        "+31612345678", message="Transferring you now.", transfer_plan=EXPERIMENTAL_PLAN
    )
    response = tool_call(make_app, recorder, destination)
    assert response.json["results"][0]["result"] == "The call is being transferred now."
    (sent,) = recorder.to(CONTROL)
    assert sent.json == {
        "type": "transfer",
        "destination": {
            "type": "number",
            "number": "+31612345678",
            "numberE164CheckEnabled": True,
            "transferPlan": EXPERIMENTAL_JSON,
        },
        # The destination's own message is live control's "content"; the plan's message (said to
        # the operator) stays in the plan.
        "content": "Transferring you now.",
    }


def test_live_control_sip_plan(make_app: MakeApp, recorder: Recorder) -> None:
    plan = TransferPlan(WAIT_MESSAGE, message="Caller for billing.", timeout=20, sip_verb="bye")
    tool_call(make_app, recorder, SipDestination("sip:+31612345678@sip.telnyx.com", transfer_plan=plan))
    (sent,) = recorder.to(CONTROL)
    assert sent.json["destination"] == {
        "type": "sip",
        "sipUri": "sip:+31612345678@sip.telnyx.com",
        "transferPlan": {
            "mode": WAIT_MESSAGE,
            "message": "Caller for billing.",
            "timeout": 20,
            "sipVerb": "bye",
        },
    }


# Platforms that transfer blind only --------------------------------------------------------------

BEYOND_BLIND = [
    (TransferPlan(SAY_MESSAGE, message="Hi"), "mode"),
    (TransferPlan(EXPERIMENTAL, fallback_plan=FallbackPlan("Sorry.")), "mode"),
    (TransferPlan(BLIND, sip_verb="dial", dial_timeout=30), "transfer_plan.sip_verb"),
    (TransferPlan(BLIND, fallback_plan=FallbackPlan("Sorry.")), "transfer_plan.fallback_plan"),
    (
        TransferPlan(BLIND, sip_headers_in_refer_to_enabled=False),
        "transfer_plan.sip_headers_in_refer_to_enabled",
    ),
]


@pytest.mark.parametrize(("plan", "attribute"), BEYOND_BLIND)
def test_sipgate_refuses_plans_beyond_blind(make_app: MakeApp, plan: TransferPlan, attribute: str) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: NumberDestination("+4921112345678", transfer_plan=plan))
    app, _ = make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN)
    with testing.record_signals(app) as heard:
        response = Sipgate(app.test_client()).event("user_speak", session_id="s-1", text="sales")
    assert response.status_code == 200
    assert response.json == {"type": "speak", "session_id": "s-1", "text": REFUSAL}
    assert testing.reply_problems("sipgate", response.status_code, response.data) == []
    failed = heard.one("transfer-failed")
    assert failed["stage"] == "destination"
    exception = failed["exception"]
    assert (exception.platform, exception.attribute) == ("sipgate", attribute)
    assert str(exception).startswith(f"sipgate cannot carry the destination's {attribute}.")
    assert heard.named("transfer-resolved") == []


@pytest.mark.parametrize(("plan", "attribute"), BEYOND_BLIND)
@pytest.mark.parametrize("kind", ["number", "sip"])
def test_voicedock_refuses_plans_beyond_blind(
    make_app: MakeApp, recorder: Recorder, plan: TransferPlan, attribute: str, kind: str
) -> None:
    destination: t.Any = (
        NumberDestination("+31612345678", transfer_plan=plan)
        if kind == "number"
        else SipDestination("sip:desk@pbx.example.com", transfer_plan=plan)
    )
    app = voicedock_app(make_app, recorder, destination)
    with testing.record_signals(app) as heard:
        response = voicedock_tool_call(app)
    assert response.status_code == 200
    assert testing.reply_problems("voicedock", response.status_code, response.data) == []
    (result,) = response.json["results"]
    assert result["result"]["status"] == "failed"
    assert recorder.received == []
    exception = heard.one("transfer-failed")["exception"]
    assert (exception.platform, exception.attribute) == ("voicedock", attribute)
    assert attribute in str(exception) and "voicedock" in str(exception)


def test_a_plain_blind_plan_is_fine_everywhere(make_app: MakeApp, recorder: Recorder) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: NumberDestination("+4921112345678", transfer_plan=TransferPlan()))
    app, _ = make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN)
    action = Sipgate(app.test_client()).event("user_speak", session_id="s-2", text="sales").json
    assert (action["type"], action["target_phone_number"]) == ("transfer", "+4921112345678")
    app = voicedock_app(
        make_app, recorder, NumberDestination("+31612345678", transfer_plan=TransferPlan(BLIND))
    )
    assert voicedock_tool_call(app).json["results"][0]["result"] == {"status": "transferring"}
    assert recorder.received[0].json == {"type": "transfer", "destination": "+31612345678"}


VOICEDOCK_SECRET = "voicedock-webhook-secret"


def voicedock_app(make_app: MakeApp, recorder: Recorder, destination: t.Any) -> Flask:
    transfers = CallTransfer()
    transfers.on_request(lambda call: destination)
    app, _ = make_app(
        transfers,
        CALLTRANSFER_VOICEDOCK_SECRET=VOICEDOCK_SECRET,
        CALLTRANSFER_VOICEDOCK_TOOLS=["transfer_call"],
        CALLTRANSFER_VOICEDOCK_API_KEY="vd-api-key",
        CALLTRANSFER_VOICEDOCK_API_URL=f"{recorder.url}/api/v1",
    )
    return app


def voicedock_tool_call(app: Flask) -> t.Any:
    body = testing.dumps(testing.voicedock_tool_calls("transfer_call", call_id="vd-call-1"))
    return app.test_client().post(
        "/calltransfer/voicedock", data=body, headers=testing.voicedock_headers(body, VOICEDOCK_SECRET)
    )
