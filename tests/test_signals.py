"""Each signal fires once per request, with the real app as sender and the documented arguments."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse
from flask_calltransfer import signals
from flask_calltransfer import testing
from tests.conftest import Vapi


def test_resolved_request(app: Flask, transfers: CallTransfer, vapi: Vapi) -> None:
    @transfers.on_request
    def route(call: TransferRequest) -> NumberDestination:
        return NumberDestination("+31612345678")

    with testing.record_signals() as heard:
        vapi.ask(call_id="call-1")
    assert heard.names() == ["transfer-requested", "transfer-resolved"]
    assert all(sender is app for _, sender, _ in heard.events)
    requested = heard.one("transfer-requested")
    assert set(requested) == {"call"} and requested["call"].call_id == "call-1"
    resolved = heard.one("transfer-resolved")
    assert set(resolved) == {"call", "destination", "handler", "elapsed"}
    assert resolved["call"] is requested["call"]
    assert resolved["destination"] == NumberDestination("+31612345678")
    assert resolved["handler"] is route
    assert isinstance(resolved["elapsed"], float) and resolved["elapsed"] >= 0


def test_refused_request(app: Flask, transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(lambda call: refuse("Closed."))
    with testing.record_signals(app) as heard:
        vapi.ask()
    assert heard.names() == ["transfer-requested", "transfer-refused"]
    assert set(heard.one("transfer-refused")) == {"call", "reason"}


def test_failed_request(app: Flask, transfers: CallTransfer, vapi: Vapi) -> None:
    error = LookupError("crm down")

    @transfers.on_request
    def route(call: TransferRequest) -> t.NoReturn:
        raise error

    with testing.record_signals(app) as heard:
        vapi.ask()
    assert heard.names() == ["transfer-requested", "transfer-failed", "transfer-refused"]
    failed = heard.one("transfer-failed")
    assert set(failed) == {"call", "exception", "stage"}
    assert (failed["exception"], failed["stage"]) == (error, "handler")


def test_event_received(app: Flask, vapi: Vapi) -> None:
    with testing.record_signals(app) as heard:
        vapi.post(testing.vapi_event("end-of-call-report", summary="Short call."))
    assert heard.names() == ["event-received"]
    received = heard.one("event-received")
    assert set(received) == {"platform", "event", "payload"}
    assert received["payload"]["summary"] == "Short call."


@pytest.mark.parametrize(("body", "status"), [(b"{", 400), (b"{}", 401)])
def test_request_rejected(app: Flask, vapi: Vapi, body: bytes, status: int) -> None:
    headers = None if status == 400 else {}
    with testing.record_signals(app) as heard:
        vapi.post(body, headers=headers)
    assert heard.names() == ["request-rejected"]
    assert heard.one("request-rejected")["status"] == status


def test_signals_of_another_app_are_not_mixed_in(make_app: t.Any) -> None:
    first, _ = make_app()
    second, _ = make_app()
    with testing.record_signals(first) as heard:
        Vapi(second.test_client()).ask()
    assert heard.events == []


def test_a_subscriber_with_connect_via(app: Flask, vapi: Vapi, transfers: CallTransfer) -> None:
    transfers.on_request(lambda call: "+31612345678")
    log: list[str] = []

    def subscriber(sender: Flask, call: TransferRequest, destination: t.Any, **extra: t.Any) -> None:
        log.append(destination.describe())

    with signals.transfer_resolved.connected_to(subscriber, sender=app):
        vapi.ask()
    assert log == ["number +3161****678"]


def test_signal_names_are_kebab_case() -> None:
    names = {s.name for s in testing.ALL_SIGNALS}
    assert names == {
        "transfer-requested",
        "transfer-resolved",
        "transfer-refused",
        "transfer-failed",
        "request-rejected",
        "event-received",
        "transfer-outcome",
    }
