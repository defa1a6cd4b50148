"""Hand-off context: what the person who answers is told, checked when built and rendered in each
platform's own wire format, and ``caller_id=CALLER`` for the caller's own number."""

from __future__ import annotations

import re
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CALLER
from flask_calltransfer import CallTransfer
from flask_calltransfer import Handoff
from flask_calltransfer import InvalidDestination
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferPlan
from flask_calltransfer import testing
from flask_calltransfer.handoff import HEADER_BUDGET
from flask_calltransfer.handoff import MAX_URL
from flask_calltransfer.handoff import header_value
from flask_calltransfer.platforms.toolcalls import dry_run

VAPI, SIPGATE, VOICEDOCK = "vapi-secret", "sipgate-token", "voicedock-secret"
CALLER_NUMBER = "+31612345678"
PBX = "sip:billing@pbx.example.com"
TOOL = "transfer_call"


def make(route: t.Callable[[t.Any], t.Any]) -> tuple[Flask, CallTransfer]:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        CALLTRANSFER_STORE_URL="memory://",
        CALLTRANSFER_VAPI_SECRET=VAPI,
        CALLTRANSFER_VAPI_TOOLS=[TOOL],
        CALLTRANSFER_SIPGATE_TOKEN=SIPGATE,
        CALLTRANSFER_VOICEDOCK_SECRET=VOICEDOCK,
        CALLTRANSFER_VOICEDOCK_API_KEY="api-key",
        CALLTRANSFER_VOICEDOCK_TOOLS=[TOOL],
    )
    transfers = CallTransfer(app)
    transfers.on_request(route)
    return app, transfers


def vapi(app: Flask, **fields: t.Any) -> t.Any:
    fields.setdefault("caller", CALLER_NUMBER)
    body = testing.dumps(testing.vapi_transfer_request(**fields))
    response = app.test_client().post(
        "/calltransfer/vapi",
        data=body,
        headers={**testing.vapi_secret_headers(VAPI), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.data
    assert testing.reply_problems("vapi", 200, response.data) == []
    return response.get_json()


def billing(**extra: t.Any) -> Handoff:
    return Handoff(
        "Disputes an invoice",
        summary="Charged twice for March.",
        account="ACC-1042",
        ticket="T-77",
        fields={"Plan": "Business"},
        **extra,
    )


# Built with a clear error --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"reason": "x" * 129}, "reason is longer than 128"),
        ({"summary": "x" * 1001}, "summary is longer than 1000"),
        ({"account": "A" * 65}, "account is longer than 64"),
        ({"ticket": "T" * 65}, "ticket is longer than 64"),
        ({"fields": {"Note": "n" * 129}}, "field Note is longer than 128"),
        ({"reason": "two\nlines"}, "control characters"),
        ({"account": "ACC\t1"}, "control characters"),
        ({"fields": {"Note": "a\r\nX-Injected: 1"}}, "control characters"),
        ({"fields": {"Bad Name": "x"}}, "field name 'Bad Name' is not valid"),
        ({"fields": {"1st": "x"}}, "start with a letter"),
        ({"fields": {f"F{i}": "x" for i in range(9)}}, "at most 8 fields"),
        ({"fields": ["Plan"]}, "mapping of names"),
        ({"reason": 42}, "must be a string"),
        ({"reason": "  "}, "is empty"),
        ({"reason": "ok", "sensitive": {"password"}}, "marks password sensitive"),
        ({"reason": "ok", "include_caller": "yes"}, "True or False"),
        ({"fields": {f"F{i}": "v" * 50 for i in range(8)}}, "over the 408"),
        # "$" matches before a trailing line break: a name must not carry one into a header.
        ({"fields": {"Plan\n": "Business"}}, "field name 'Plan\\n' is not valid"),
        ({"fields": {"Id": "spoofed"}}, "is taken"),
        ({"fields": {"caller": "+31612345678"}}, "is taken"),
        ({"fields": {"Plan": "a", "PLAN": "b"}}, "is taken"),
        ({"reason": "ok", "sensitive": None}, "must be a set of names"),
    ],
)
def test_a_bad_hand_off_is_refused_where_it_is_built(kwargs: dict[str, t.Any], words: str) -> None:
    with pytest.raises(InvalidDestination, match=re.escape(words)):
        Handoff(**kwargs)


def test_the_header_budget_is_what_the_docs_say() -> None:
    # The id, the caller, User-to-User and the link fit in what the app's fields leave.
    full = Handoff("r" * 128, account="A" * 64, ticket="T" * 64, fields={"Plan": "p" * 80})
    sent = full.sent("0123456789", "+" + "9" * 15, "https://calls.example.com/" + "x" * (MAX_URL - 26))
    size = sum(len(name) + 2 + len(value) for name, value in sent.headers().items())
    assert size <= HEADER_BUDGET


def test_a_destination_takes_only_a_handoff() -> None:
    with pytest.raises(InvalidDestination, match="must be a Handoff, not dict"):
        NumberDestination("+31207948450", handoff={"reason": "x"})  # type: ignore[arg-type]


def test_what_a_hand_off_says_stays_out_of_its_repr() -> None:
    handoff = billing(sensitive={"ticket"})
    text = repr(NumberDestination("+31207948450", handoff=handoff)) + repr(handoff)
    for value in ("Disputes", "ACC-1042", "T-77", "Business", "March"):
        assert value not in text
    assert repr(handoff) == "<Handoff unsent (reason, summary, account, ticket, Plan)>"


def test_a_hand_off_is_a_value() -> None:
    assert billing() == billing() and hash(billing()) == hash(billing())
    assert billing() != billing(sensitive={"ticket"})
    with pytest.raises(AttributeError, match="cannot be changed"):
        billing().reason = "other"  # type: ignore[misc]
    desk = NumberDestination("+31207948450")
    told = desk.with_handoff(billing())
    assert desk.handoff is None and told.handoff == billing() and told.number == desk.number
    assert told.with_handoff(None) == desk


# Rendered per platform ------------------------------------------------------------------------------


def test_vapi_sip_transfer_carries_the_hand_off_in_its_headers() -> None:
    app, _ = make(lambda call: SipDestination(PBX, headers={"X-Handoff-Reason": "own"}, handoff=billing()))
    with testing.record_signals(app) as heard:
        first = vapi(app, call_id="call-1")["destination"]["sipHeaders"]
        second = vapi(app, call_id="call-2")["destination"]["sipHeaders"]
    assert re.fullmatch(r"[0-9a-f]{12}", first["X-Handoff-Id"])
    assert first["X-Handoff-Id"] != second["X-Handoff-Id"]
    assert first["X-Handoff-Caller"] == CALLER_NUMBER
    # A header the app set itself wins over the hand-off's.
    assert first["X-Handoff-Reason"] == "own"
    assert (first["X-Handoff-Account"], first["X-Handoff-Ticket"], first["X-Handoff-Plan"]) == (
        "ACC-1042",
        "T-77",
        "Business",
    )
    assert first["User-to-User"] == first["X-Handoff-Id"].encode().hex() + ";encoding=hex"
    # The summary is spoken or shown, never put in a header.
    assert "Charged" not in str(first)
    resolved = heard.named("transfer-resolved")[0]["destination"]
    assert resolved.handoff.id == first["X-Handoff-Id"] and resolved.handoff.caller == CALLER_NUMBER


def test_sensitive_values_and_other_numbers_never_reach_a_header_or_the_spoken_summary() -> None:
    handoff = Handoff(
        "Call back on +31 20 794 8450 or on +31 6 1234 5678",
        summary="Wants a refund to IBAN NL91ABNA0417164300; reach the office on 020 794 8451.",
        ticket="T-77",
        fields={"Secret": "pin 4321", "Note": "Grüße aus Köln"},
        sensitive={"ticket", "Secret"},
    )
    route = lambda call: SipDestination(PBX, mode="warm-transfer-say-message", handoff=handoff)  # noqa: E731
    app, _ = make(route)
    destination = vapi(app)["destination"]
    headers, spoken = destination["sipHeaders"], destination["transferPlan"]["message"]
    assert "X-Handoff-Ticket" not in headers and "X-Handoff-Secret" not in headers
    assert "4321" not in str(destination) and "T-77" not in str(destination)
    # The caller's own number is kept, written as they gave it; any other is withheld.
    assert headers["X-Handoff-Reason"] == "Call back on [number withheld] or on +31 6 1234 5678"
    assert "794 8451" not in spoken and "[number withheld]" in spoken
    # ASCII-safe: UTF-8, percent-encoded.
    assert headers["X-Handoff-Note"] == "Gr%C3%BC%C3%9Fe aus K%C3%B6ln"


def test_vapi_says_the_hand_off_to_the_person_who_answers_in_a_warm_message_mode() -> None:
    mode = "warm-transfer-wait-for-operator-to-speak-first-and-then-say-message"
    app, _ = make(lambda call: NumberDestination("+31207948450", mode=mode, handoff=billing()))
    told = vapi(app)
    plan = told["destination"]["transferPlan"]
    assert plan["message"] == "Disputes an invoice. Charged twice for March."
    # A number carries no SIP headers on Vapi; its own message and a summary mode are left alone.
    assert "sipHeaders" not in told["destination"]


def test_vapi_keeps_a_plan_s_own_message_and_vapi_s_own_summary_modes() -> None:
    own = TransferPlan("warm-transfer-say-message", message="Billing caller, be nice.")
    cases = iter([own, TransferPlan("warm-transfer-say-summary"), TransferPlan("blind-transfer")])
    app, _ = make(
        lambda call: NumberDestination("+31207948450", transfer_plan=next(cases), handoff=billing())
    )
    assert vapi(app)["destination"]["transferPlan"]["message"] == "Billing caller, be nice."
    assert "message" not in vapi(app)["destination"]["transferPlan"]
    assert vapi(app)["destination"]["transferPlan"] == {"mode": "blind-transfer"}


def test_vapi_puts_the_headers_in_the_refer_to_when_asked() -> None:
    plans = iter([None, TransferPlan(sip_verb="dial")])
    app, _ = make(lambda call: SipDestination(PBX, transfer_plan=next(plans), handoff=billing(refer_to=True)))
    plan = vapi(app)["destination"]["transferPlan"]
    assert plan == {"mode": "blind-transfer", "sipHeadersInReferToEnabled": True}
    # A dial sends no REFER: nothing to put there.
    assert "sipHeadersInReferToEnabled" not in vapi(app)["destination"]["transferPlan"]


def test_vapi_live_control_carries_the_headers_too() -> None:
    app, _ = make(lambda call: SipDestination(PBX, handoff=billing()))
    payload = testing.vapi_tool_calls(
        TOOL, {}, control_url="https://aws-us-west-2-production1-phone-call-websocket.vapi.ai/c/control"
    )
    with dry_run() as sent:
        response = app.test_client().post(
            "/calltransfer/vapi", data=testing.dumps(payload), headers=testing.vapi_secret_headers(VAPI)
        )
    assert response.status_code == 200
    ((_, destination),) = sent
    assert destination.headers["X-Handoff-Account"] == "ACC-1042" and destination.handoff.id


def test_caller_presents_the_caller_s_own_number() -> None:
    app, _ = make(lambda call: NumberDestination("+31207948450", caller_id=CALLER))
    assert vapi(app)["destination"]["callerId"] == "{{customer.number}}"
    body = testing.dumps(testing.sipgate_event("user_speak", text="billing", caller="+4915799912345"))
    reply = app.test_client().post(
        "/calltransfer/sipgate", data=body, headers=testing.sipgate_headers(SIPGATE)
    )
    assert reply.get_json()["caller_id_number"] == "+4915799912345"


def test_caller_on_a_withheld_number_falls_back_to_the_platform_default() -> None:
    app, _ = make(lambda call: NumberDestination("+31207948450", caller_id=CALLER))
    body = testing.dumps(testing.sipgate_event("user_speak", text="billing", caller="anonymous"))
    reply = app.test_client().post(
        "/calltransfer/sipgate", data=body, headers=testing.sipgate_headers(SIPGATE)
    )
    assert reply.status_code == 200 and reply.get_json()["type"] == "transfer"
    assert reply.get_json()["caller_id_number"] != CALLER


def test_platforms_without_a_channel_transfer_as_before() -> None:
    # sipgate and VoiceDock carry no context: the transfer goes through, the hand-off is kept for
    # the screen-pop page only.
    app, _ = make(lambda call: NumberDestination("+31207948450", handoff=billing()))
    body = testing.dumps(testing.sipgate_event("user_speak", text="billing"))
    reply = app.test_client().post(
        "/calltransfer/sipgate", data=body, headers=testing.sipgate_headers(SIPGATE)
    )
    assert reply.get_json()["target_phone_number"] == "+31207948450"
    assert "ACC-1042" not in reply.get_data(as_text=True)
    tool = testing.dumps(testing.voicedock_tool_calls(TOOL, {}))
    with dry_run() as sent:
        reply = app.test_client().post(
            "/calltransfer/voicedock", data=tool, headers=testing.voicedock_headers(tool, VOICEDOCK)
        )
    assert reply.status_code == 200 and "error" not in reply.get_data(as_text=True)
    ((_, destination),) = sent
    assert destination.handoff.id is not None and destination.number == "+31207948450"


def test_caller_where_the_platform_sets_no_caller_id_is_a_clear_failure() -> None:
    app, _ = make(lambda call: NumberDestination("+31207948450", caller_id=CALLER))
    tool = testing.dumps(testing.voicedock_tool_calls(TOOL, {}))
    with dry_run() as sent, testing.record_signals(app) as heard:
        reply = app.test_client().post(
            "/calltransfer/voicedock", data=tool, headers=testing.voicedock_headers(tool, VOICEDOCK)
        )
    assert reply.status_code == 200 and sent == []
    failed = heard.one("transfer-failed")
    assert failed["stage"] == "destination" and "caller_id" in str(failed["exception"])


def test_a_directory_destination_is_not_changed_by_a_call() -> None:
    app, transfers = make(lambda call: "billing")
    transfers.add_destination("billing", SipDestination(PBX, handoff=billing()))
    ids = {vapi(app)["destination"]["sipHeaders"]["X-Handoff-Id"] for _ in range(3)}
    assert len(ids) == 3
    assert transfers.destinations["billing"].handoff == billing()
    assert transfers.destinations["billing"].headers is None


@pytest.mark.parametrize(
    "written",
    [
        "0 2 0 7 9 4 8 4 5 0",
        "(0)20-7948450",
        "31 20 7948450",
        "\uff0b\uff13\uff11 \uff12\uff10 \uff17\uff19\uff14 \uff18\uff14\uff15\uff10",
        "+31\u00b720\u00b7794\u00b78450",
        "+31_20_794_8450",
        "794 8450",
        "555-0123",
        "+31 20 794 8450",
        "020 794 8450",
    ],
)
def test_a_number_in_any_form_is_withheld(written: str) -> None:
    handoff = Handoff(f"Call {written} back", summary=f"Office: {written}.", sensitive=())
    sent = handoff.sent("0123456789ab", CALLER_NUMBER)
    assert sent.headers()["X-Handoff-Reason"] == "Call [number withheld] back"
    assert sent.spoken() == "Call [number withheld] back. Office: [number withheld]."


def test_the_caller_s_own_number_is_kept_in_its_own_forms_and_dates_and_ids_are_left_alone() -> None:
    text = "Caller +31 6 1234 5678, also 06 12345678; since 2026-12-04, order ACC-1042, 3 items"
    sent = Handoff(text).sent("0123456789ab", CALLER_NUMBER)
    assert sent.headers()["X-Handoff-Reason"] == header_value(text)


def test_the_budget_holds_when_sent_whatever_the_caller_s_number() -> None:
    # The caller's number comes from the payload: on SIP calls the caller writes it.
    full = Handoff("r" * 128, account="A" * 64, ticket="T" * 64, fields={"Plan": "p" * 80})
    sent = full.sent("0123456789ab", "+" + "9" * 40, "https://calls.example.com/" + "x" * 170)
    headers = sent.headers()
    assert sum(len(name) + 2 + len(value) for name, value in headers.items()) <= HEADER_BUDGET
    assert "X-Handoff-Caller" not in headers and headers["X-Handoff-Id"] == "0123456789ab"
