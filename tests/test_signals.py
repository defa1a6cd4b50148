"""Each signal fires once per request, with the real app as sender and the documented arguments."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from flask_calltransfer import Callback
from flask_calltransfer import CallTransfer
from flask_calltransfer import DestinationChain
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
        "transfer-deferred",
        "transfer-failed",
        "request-rejected",
        "event-received",
        "transfer-outcome",
        "transfer-attempted",
        "destination-skipped",
        "transfer-finished",
        "callback-requested",
    }


# A receiver that raises is an observer's bug: it is logged and skipped, never the caller's problem.

SCENARIOS: dict[str, t.Callable[[Vapi], t.Any]] = {
    "transfer-requested": lambda vapi: vapi.ask(call_id="c-ok", text="sales"),
    "transfer-resolved": lambda vapi: vapi.ask(call_id="c-ok", text="sales"),
    "transfer-refused": lambda vapi: vapi.ask(call_id="c-no", text="closed"),
    "transfer-failed": lambda vapi: vapi.ask(call_id="c-bug", text="bug"),
    "transfer-deferred": lambda vapi: vapi.client.post(
        "/calltransfer/sipgate",
        data=testing.dumps(testing.sipgate_event("user_speak", session_id="s-later", text="later")),
        headers=testing.sipgate_headers(SIPGATE_TOKEN),
    ),
    "request-rejected": lambda vapi: vapi.post(b"{not json"),
    "event-received": lambda vapi: vapi.post(testing.vapi_event("speech-update", call_id="c-ev")),
    "transfer-attempted": lambda vapi: vapi.ask(call_id="c-chain", text="chain"),
    "destination-skipped": lambda vapi: vapi.ask(call_id="c-skip", text="skip"),
    "callback-requested": lambda vapi: vapi.ask(call_id="c-back", text="call me back"),
    "transfer-finished": lambda vapi: (
        vapi.ask(call_id="c-done", text="chain"),
        vapi.post(
            testing.vapi_event(
                "status-update", call_id="c-done", status="ended", endedReason="assistant-forwarded-call"
            )
        ),
    )[-1],
    "transfer-outcome": lambda vapi: (
        vapi.ask(call_id="c-out", text="sales"),
        vapi.post(
            testing.vapi_event(
                "status-update", call_id="c-out", status="ended", endedReason="assistant-forwarded-call"
            )
        ),
    )[-1],
}


SIPGATE_TOKEN = "signals-sipgate-token-0123"


def _routing(transfers: CallTransfer) -> None:
    transfers.add_destination("closed-line", NumberDestination("+31612345670"), available=lambda call: False)

    @transfers.on_request
    def route(call: TransferRequest) -> str | DestinationChain | Callback | None:
        if "chain" in call.text:
            return DestinationChain(["+31612345678", "+31612345679"])
        if "skip" in call.text:
            return DestinationChain(["closed-line", "+31612345679"])
        if "later" in call.text:
            return None
        if "call me back" in call.text:
            return Callback("We will call you back {when}.", reason="asked for it")
        if "closed" in call.text:
            refuse("We are closed.")
        if "bug" in call.text:
            raise LookupError("crm down")
        return "+31612345678"


def _answer(response: t.Any) -> tuple[int, bytes]:
    return response.status_code, response.get_data()


def test_signal_names_cover_every_signal() -> None:
    sent = {value.name for value in vars(signals).values() if isinstance(value, signals.ObserverSignal)}
    assert sent == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_raising_receiver_changes_nothing(
    make_app: t.Any, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = SCENARIOS[name]
    signal = next(s for s in vars(signals).values() if getattr(s, "name", None) == name)

    quiet = CallTransfer()
    _routing(quiet)
    quiet_app, _ = make_app(
        quiet, CALLTRANSFER_FALLBACK="+31687654321", CALLTRANSFER_SIPGATE_TOKEN=SIPGATE_TOKEN
    )
    # The outcome is tracked only while somebody listens, in both apps alike.
    with signals.transfer_outcome.connected_to(lambda *a, **k: None, sender=quiet_app):
        expected = _answer(scenario(Vapi(quiet_app.test_client())))

    transfers = CallTransfer()
    _routing(transfers)
    app, _ = make_app(
        transfers, CALLTRANSFER_FALLBACK="+31687654321", CALLTRANSFER_SIPGATE_TOKEN=SIPGATE_TOKEN
    )
    later: list[str] = []

    def broken(sender: Flask, **kwargs: t.Any) -> None:
        raise KeyError("no such table: transfers")

    def counting(sender: Flask, **kwargs: t.Any) -> None:
        later.append(name)

    with signal.connected_to(broken, sender=app), signal.connected_to(counting, sender=app):
        with signals.transfer_outcome.connected_to(lambda *a, **k: None, sender=app):
            got = _answer(scenario(Vapi(app.test_client())))
    assert got == expected
    assert later == [name]
    failures = [r for r in caplog.records if "of the " + repr(name) + " signal raised" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and "broken" in failures[0].getMessage()


def test_the_log_line_names_the_handler_that_raised(
    transfers: CallTransfer, vapi: Vapi, caplog: pytest.LogCaptureFixture
) -> None:
    @transfers.on_request(when=lambda call: "vip" in call.text)
    def vip(call: TransferRequest) -> None:
        return None

    @transfers.on_request
    def crm_lookup(call: TransferRequest) -> str:
        raise LookupError("crm down")

    @transfers.on_request
    def last_resort(call: TransferRequest) -> str:
        return "+31612345678"

    vapi.ask()
    line = next(r.getMessage() for r in caplog.records if "raised an exception" in r.getMessage())
    assert "crm_lookup" in line
    assert "vip" not in line and "last_resort" not in line


def test_the_log_line_names_a_raising_predicate(
    transfers: CallTransfer, vapi: Vapi, caplog: pytest.LogCaptureFixture
) -> None:
    @transfers.on_request(when=lambda call: call.metadata["tier"] == "gold")
    def gold(call: TransferRequest) -> str:
        return "+31612345678"

    vapi.ask()
    line = next(r.getMessage() for r in caplog.records if "raised an exception" in r.getMessage())
    assert "the when= predicate of" in line and "gold" in line
