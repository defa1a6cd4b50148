"""transfer_outcome: one vocabulary for how transfers ended, from every platform's events."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import testing
from tests.conftest import TOKEN
from tests.conftest import MakeApp
from tests.conftest import Sipgate
from tests.conftest import Vapi
from tests.recorder import Recorder


@pytest.fixture
def setup(make_app: MakeApp, recorder: Recorder) -> tuple[Flask, Vapi, Sipgate]:
    transfers = CallTransfer()
    transfers.on_request(
        lambda call: NumberDestination(
            "+31612345678", message="One moment." if call.platform == "sipgate" else None
        )
    )
    app, _ = make_app(
        transfers,
        CALLTRANSFER_SIPGATE_TOKEN=TOKEN,
        CALLTRANSFER_VOICEDOCK_SECRET="vd",
        CALLTRANSFER_VOICEDOCK_TOOLS=["transfer_call"],
        CALLTRANSFER_VOICEDOCK_API_KEY="k",
        CALLTRANSFER_VOICEDOCK_API_URL=recorder.url,
    )
    return app, Vapi(app.test_client()), Sipgate(app.test_client())


def outcomes(heard: testing.SignalRecorder) -> list[tuple[str, str, str, str]]:
    return [(o["platform"], o["call_id"], o["outcome"], o["detail"]) for o in heard.named("transfer-outcome")]


def vapi_ended(vapi: Vapi, call_id: str, reason: str) -> None:
    vapi.post(testing.vapi_event("status-update", call_id=call_id, status="ended", endedReason=reason))


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [
        ("assistant-forwarded-call", "connected"),
        ("call.forwarding.operator-busy", "busy"),
        ("call.forwarding.no-answer", "no-answer"),
        ("call.in-progress.error-transfer-failed", "failed"),
        ("customer-ended-call-during-transfer", "caller-hung-up"),
        ("call.forwarding.something-new", "failed"),
    ],
)
def test_vapi_transfer_reasons_are_reported_for_any_call(
    setup: tuple[Flask, Vapi, Sipgate], reason: str, outcome: str
) -> None:
    app, vapi, _ = setup
    with testing.record_signals(app) as heard:
        vapi_ended(vapi, "c-1", reason)
    assert outcomes(heard) == [("vapi", "c-1", outcome, reason)]


def test_vapi_plain_call_end_counts_only_after_our_transfer(setup: tuple[Flask, Vapi, Sipgate]) -> None:
    app, vapi, _ = setup
    with testing.record_signals(app) as heard:
        vapi_ended(vapi, "not-transferred", "customer-ended-call")
        vapi.ask(call_id="c-2")
        vapi_ended(vapi, "c-2", "customer-ended-call")
        vapi_ended(vapi, "c-2", "customer-ended-call")
    assert outcomes(heard) == [("vapi", "c-2", "caller-hung-up", "customer-ended-call")]


def test_vapi_transfer_update_then_end_is_one_outcome(setup: tuple[Flask, Vapi, Sipgate]) -> None:
    app, vapi, _ = setup
    with testing.record_signals(app) as heard:
        vapi.ask(call_id="c-3")
        vapi.post(testing.vapi_event("transfer-update", call_id="c-3", destination={"type": "number"}))
        vapi_ended(vapi, "c-3", "assistant-forwarded-call")
    # A transfer-update without a final status says a transfer started, not how it went.
    assert outcomes(heard) == [("vapi", "c-3", "connected", "assistant-forwarded-call")]


def test_voicedock_outcomes(setup: tuple[Flask, Vapi, Sipgate]) -> None:
    app, _, _ = setup
    client = app.test_client()

    def post(payload: dict[str, t.Any]) -> None:
        body = testing.dumps(payload)
        assert (
            client.post(
                "/calltransfer/voicedock", data=body, headers=testing.voicedock_headers(body, "vd")
            ).status_code
            == 200
        )

    with testing.record_signals(app) as heard:
        post(testing.voicedock_event("status-update", call_id="v-1", status="transferred"))
        post(testing.voicedock_event("end-of-call-report", call_id="v-untouched", end_reason="user_hangup"))
        post(testing.voicedock_tool_calls("transfer_call", call_id="v-2"))
        post(
            testing.voicedock_event(
                "end-of-call-report", call_id="v-2", end_reason="user_hangup", summary="."
            )
        )
    assert outcomes(heard) == [
        ("voicedock", "v-1", "connected", "transferred"),
        ("voicedock", "v-2", "caller-hung-up", "user_hangup"),
    ]
    # Shaped as the SDK's StatusUpdatePayload: the status sits in message.call.status.
    with testing.record_signals(app) as heard:
        post(testing.voicedock_tool_calls("transfer_call", call_id="vd-3"))
        body = {"message": {"type": "status-update", "call": {"id": "vd-3", "status": "failed"}}}
        body["message"]["error"] = "Transfer failed"
        post(body)
    assert outcomes(heard) == [("voicedock", "vd-3", "failed", "Transfer failed")]


def test_sipgate_session_end_after_a_transfer(setup: tuple[Flask, Vapi, Sipgate]) -> None:
    app, _, sipgate = setup
    with testing.record_signals(app) as heard:
        sipgate.event("session_end", session_id="never-transferred")
        sipgate.event("user_speak", session_id="s-1", text="sales")
        sipgate.event("assistant_speech_ended", session_id="s-1")
        sipgate.event("session_end", session_id="s-1")
        sipgate.event("session_end", session_id="s-1")
    assert outcomes(heard) == [("sipgate", "s-1", "unknown", "session_end")]


def test_nothing_is_tracked_without_a_listener(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31612345678")
    app, _ = make_app(transfers)
    Vapi(app.test_client()).ask(call_id="c-9")
    with app.app_context():
        assert transfers.store.get("outcome:vapi:c-9") is None
