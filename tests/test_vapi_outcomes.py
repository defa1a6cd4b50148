"""Vapi transfer outcomes from the call's transfer records (``artifact.transfers[].status``).

Payloads are shaped as the Python SDK types them: ``ServerMessageTransferUpdate``,
``ServerMessageStatusUpdate`` and ``ServerMessageEndOfCallReport`` each carry the live
``artifact``, whose ``transfers`` are ``TransferArtifact`` records (``destination``, ``mode``,
``transcript``, ``status``, ``messages``); ``TransferArtifactStatus`` is one of connected,
no-answer, busy, voicemail, failed, completed and cancelled.
"""

from __future__ import annotations

import json
import re
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import testing
from flask_calltransfer.platforms.base import OUTCOMES
from tests.conftest import MakeApp
from tests.conftest import Vapi

CALL = "4f1c2d3e-0000-4a5b-8c9d-0e1f2a3b4c5d"
OPERATOR = {"type": "number", "number": "+31207948450"}


def record(status: str | None, *, mode: str = "warm-transfer-experimental") -> dict[str, t.Any]:
    """One TransferArtifact, as the SDK types it."""
    entry: dict[str, t.Any] = {
        "destination": OPERATOR,
        "mode": mode,
        "transcript": "AI: A caller about an unpaid invoice. Operator: Put them through.",
        "messages": [
            {"role": "assistant", "message": "A caller about an unpaid invoice."},
            {"role": "user", "message": "Put them through."},
        ],
    }
    if status is not None:
        entry["status"] = status
    return entry


def call(call_id: str = CALL, **extra: t.Any) -> dict[str, t.Any]:
    return {
        "id": call_id,
        "orgId": "org-1",
        "type": "inboundPhoneCall",
        "status": "in-progress",
        "customer": {"number": "+14155550100"},
        "monitor": {
            "listenUrl": "wss://example.vapi.ai/listen",
            "controlUrl": "https://example.vapi.ai/control",
        },
        **extra,
    }


def artifact(*transfers: dict[str, t.Any]) -> dict[str, t.Any]:
    return {
        "messages": [],
        "messagesOpenAIFormatted": [],
        "transcript": "AI: How can I help? User: Billing, please.",
        "transfers": list(transfers),
    }


def transfer_update(*transfers: dict[str, t.Any], call_id: str = CALL) -> dict[str, t.Any]:
    return {
        "message": {
            "type": "transfer-update",
            "timestamp": 1735689600000,
            "destination": OPERATOR,
            "artifact": artifact(*transfers),
            "call": call(call_id),
            "customer": {"number": "+14155550100"},
            "phoneNumber": {"provider": "vapi", "id": "pn-1", "number": "+14155550199"},
        }
    }


def status_update(
    *transfers: dict[str, t.Any], status: str = "in-progress", **extra: t.Any
) -> dict[str, t.Any]:
    return {
        "message": {
            "type": "status-update",
            "timestamp": 1735689601000,
            "status": status,
            "artifact": artifact(*transfers),
            "call": call(),
            **extra,
        }
    }


def end_of_call_report(
    *transfers: dict[str, t.Any], ended_reason: str = "customer-ended-call", call_id: str = CALL
) -> dict[str, t.Any]:
    return {
        "message": {
            "type": "end-of-call-report",
            "timestamp": 1735689700000,
            "endedReason": ended_reason,
            "artifact": artifact(*transfers),
            "analysis": {"summary": "The caller asked for billing."},
            "startedAt": "2025-01-01T00:00:00.000Z",
            "endedAt": "2025-01-01T00:01:40.000Z",
            "cost": 0.12,
            "call": call(call_id, status="ended"),
        }
    }


@pytest.fixture
def line(make_app: MakeApp) -> tuple[Flask, Vapi]:
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31207948450")
    app, _ = make_app(
        transfers, CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_DASHBOARD_TOKEN="dashboard-token-0123"
    )
    return app, Vapi(app.test_client())


def outcomes(heard: testing.SignalRecorder) -> list[tuple[str, str, str, str]]:
    return [(o["platform"], o["call_id"], o["outcome"], o["detail"]) for o in heard.named("transfer-outcome")]


def post(vapi: Vapi, body: dict[str, t.Any]) -> None:
    response = vapi.post(body)
    assert (response.status_code, response.json) == (200, {})


def test_voicemail_and_cancelled_are_in_the_vocabulary() -> None:
    assert {"voicemail", "cancelled"} <= OUTCOMES


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("connected", "connected"),
        ("completed", "connected"),
        ("no-answer", "no-answer"),
        ("busy", "busy"),
        ("voicemail", "voicemail"),
        ("failed", "failed"),
        ("cancelled", "cancelled"),
    ],
)
def test_end_of_call_report_transfer_status(line: tuple[Flask, Vapi], status: str, outcome: str) -> None:
    app, vapi = line
    with testing.record_signals(app) as heard:
        vapi.ask(call_id=CALL)
        post(vapi, end_of_call_report(record(status)))
    assert outcomes(heard) == [("vapi", CALL, outcome, status)]
    assert outcome in OUTCOMES


@pytest.mark.parametrize("status", ["voicemail", "cancelled", "busy"])
def test_transfer_update_reports_its_record_once(line: tuple[Flask, Vapi], status: str) -> None:
    app, vapi = line
    with testing.record_signals(app) as heard:
        vapi.ask(call_id=CALL)
        post(vapi, transfer_update(record(status)))
        post(vapi, end_of_call_report(record(status), ended_reason="assistant-forwarded-call"))
    assert outcomes(heard) == [("vapi", CALL, status, status)]


def test_a_failed_transfer_while_the_assistant_stays_on(line: tuple[Flask, Vapi]) -> None:
    """fallbackPlan.endCallEnabled false: the call goes on, and its status update says how the
    transfer went. A definite outcome: reported even for a transfer this app did not route."""
    app, vapi = line
    with testing.record_signals(app) as heard:
        post(vapi, status_update(record("failed")))
    assert outcomes(heard) == [("vapi", CALL, "failed", "failed")]


def test_only_the_latest_transfer_counts(line: tuple[Flask, Vapi]) -> None:
    app, vapi = line
    with testing.record_signals(app) as heard:
        post(vapi, status_update(record("no-answer"), record("connected", mode="blind-transfer")))
    assert outcomes(heard) == [("vapi", CALL, "connected", "connected")]


def test_a_latest_transfer_without_status_leaves_it_to_the_ended_reason(line: tuple[Flask, Vapi]) -> None:
    app, vapi = line
    with testing.record_signals(app) as heard:
        post(vapi, status_update(record("failed"), record(None), status="in-progress"))
        post(
            vapi,
            status_update(
                record("failed"), record(None), status="ended", endedReason="call.forwarding.no-answer"
            ),
        )
    assert outcomes(heard) == [("vapi", CALL, "no-answer", "call.forwarding.no-answer")]


def test_an_unknown_status_is_not_guessed(line: tuple[Flask, Vapi]) -> None:
    app, vapi = line
    with testing.record_signals(app) as heard:
        post(vapi, end_of_call_report(record("ringing"), call_id="untouched"))
        post(vapi, transfer_update(record("ringing")))
        # Started, not ended: a warm transfer's operator may still not answer.
        assert outcomes(heard) == []
        post(vapi, status_update(record("ringing"), status="ended", endedReason="assistant-forwarded-call"))
    assert outcomes(heard) == [("vapi", CALL, "connected", "assistant-forwarded-call")]


def test_no_transfer_records_no_outcome(line: tuple[Flask, Vapi]) -> None:
    app, vapi = line
    with testing.record_signals(app) as heard:
        post(vapi, end_of_call_report(call_id="plain-call"))
        post(vapi, status_update())
    assert outcomes(heard) == []


def test_the_calls_own_artifact_is_read_when_the_message_has_none(line: tuple[Flask, Vapi]) -> None:
    app, vapi = line
    body = status_update()
    del body["message"]["artifact"]
    body["message"]["call"]["artifact"] = artifact(record("voicemail"))
    with testing.record_signals(app) as heard:
        post(vapi, body)
    assert outcomes(heard) == [("vapi", CALL, "voicemail", "voicemail")]


def test_the_unwrapped_envelope(line: tuple[Flask, Vapi]) -> None:
    app, vapi = line
    with testing.record_signals(app) as heard:
        post(vapi, transfer_update(record("cancelled"))["message"])
    assert outcomes(heard) == [("vapi", CALL, "cancelled", "cancelled")]


def test_malformed_records_are_ignored(line: tuple[Flask, Vapi]) -> None:
    app, vapi = line
    bodies = [status_update(), status_update(), status_update()]
    bodies[0]["message"]["artifact"]["transfers"] = "voicemail"
    bodies[1]["message"]["artifact"]["transfers"] = ["voicemail"]
    bodies[2]["message"]["artifact"]["transfers"] = [{"status": 3}]
    with testing.record_signals(app) as heard:
        for body in bodies:
            post(vapi, body)
    assert outcomes(heard) == []


def test_stats_and_dashboard_show_voicemail_and_cancelled(line: tuple[Flask, Vapi]) -> None:
    app, vapi = line
    for call_id, status in (
        ("c-1", "voicemail"),
        ("c-2", "cancelled"),
        ("c-3", "voicemail"),
        ("c-4", "completed"),
    ):
        vapi.ask(call_id=call_id)
        post(vapi, end_of_call_report(record(status), call_id=call_id))
    result = app.test_cli_runner().invoke(args=["calltransfer", "stats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["outcomes"] == {"voicemail": 2, "cancelled": 1, "connected": 1}
    text = app.test_cli_runner().invoke(args=["calltransfer", "stats"]).output
    assert "  voicemail: 2" in text and "  cancelled: 1" in text
    client = app.test_client()
    signed = client.post(
        "/calltransfer/dashboard/sign-in", data={"token": "dashboard-token-0123", "since": "24h"}
    )
    assert signed.status_code == 303
    page = client.get("/calltransfer/dashboard?since=24h").get_data(as_text=True)
    chart = page[page.index('id="chart-outcomes"') :]
    chart = chart[: chart.index("</svg>")]
    assert ">voicemail</text>" in chart and ">cancelled</text>" in chart
    # Each has a colour of its own, not one borrowed from the palette by position.
    colours = dict(re.findall(r'class="label">([^<]+)</text><rect [^>]*fill="(#[0-9a-f]{6})"', chart))
    assert set(colours) == {"voicemail", "cancelled", "connected"}
    assert len(set(colours.values())) == 3
