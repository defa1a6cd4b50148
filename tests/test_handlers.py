"""The handler model: ordered dispatch, filters, shorthands, refusals and the failure path."""

from __future__ import annotations

import asyncio
import logging
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import AssistantDestination
from flask_calltransfer import CallTransfer
from flask_calltransfer import InvalidDestination
from flask_calltransfer import NumberDestination
from flask_calltransfer import PlatformEvent
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRefused
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse
from flask_calltransfer import testing
from tests.conftest import MakeApp
from tests.conftest import Vapi

REFUSAL = {"error": "I'm sorry, I can't transfer your call right now."}


def number(response: t.Any) -> str:
    return t.cast(str, response.json["destination"]["number"])


def test_decorators_return_the_function_unchanged(transfers: CallTransfer) -> None:
    def route(call: TransferRequest) -> None:
        return None

    def failed(call: TransferRequest, exc: Exception) -> None:
        return None

    def event(e: PlatformEvent) -> None:
        return None

    assert transfers.on_request(route) is route
    assert transfers.on_request(platform="vapi")(route) is route
    assert transfers.on_error(failed) is failed
    assert transfers.on_event("assistant-request")(event) is event


def test_first_non_none_answer_wins_in_registration_order(transfers: CallTransfer, vapi: Vapi) -> None:
    calls: list[str] = []

    @transfers.on_request
    def first(call: TransferRequest) -> None:
        calls.append("first")

    @transfers.on_request
    def second(call: TransferRequest) -> str:
        calls.append("second")
        return "+31612345678"

    @transfers.on_request
    def third(call: TransferRequest) -> str:
        calls.append("third")
        return "+31687654321"

    assert number(vapi.ask()) == "+31612345678"
    assert calls == ["first", "second"]


def test_platform_filter(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(platform="sipgate")(lambda call: "+31687654321")
    transfers.on_request(platform=["voicedock", "vapi"])(lambda call: "+31612345678")
    assert number(vapi.ask()) == "+31612345678"


def test_when_predicate(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(when=lambda call: "sales" in call.text)(lambda call: "+31612345678")
    transfers.on_request(lambda call: "+31687654321")
    assert number(vapi.ask(text="sales please")) == "+31612345678"
    assert number(vapi.ask(text="billing please")) == "+31687654321"


def test_registration_arguments_are_checked(transfers: CallTransfer) -> None:
    with pytest.raises(TypeError, match="platform= must be"):
        transfers.on_request(platform=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="when= must be a callable"):
        transfers.on_request(when="sales")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="event type"):
        transfers.on_event("")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("+31 6 12345678", {"type": "number", "number": "+31612345678", "numberE164CheckEnabled": True}),
        ("06-12345678", {"type": "number", "number": "+31612345678", "numberE164CheckEnabled": True}),
        ("sip:desk@pbx.example.com", {"type": "sip", "sipUri": "sip:desk@pbx.example.com"}),
        ("sales", {"type": "number", "number": "+31207948450", "numberE164CheckEnabled": True}),
        ("bot", {"type": "assistant", "assistantName": "Billing Assistant"}),
    ],
)
def test_string_shorthands(make_app: MakeApp, answer: str, expected: dict[str, t.Any]) -> None:
    transfers = CallTransfer()
    transfers.add_destination("sales", NumberDestination("+31207948450"))
    transfers.add_destination("bot", AssistantDestination("Billing Assistant"))
    transfers.on_request(lambda call: answer)
    app, _ = make_app(transfers, CALLTRANSFER_DEFAULT_REGION="NL")
    assert Vapi(app.test_client()).ask().json == {"destination": expected}


def test_directory_is_read_only_and_validated(transfers: CallTransfer) -> None:
    transfers.add_destination("sales", NumberDestination("+31207948450"))
    assert dict(transfers.destinations) == {"sales": NumberDestination("+31207948450")}
    with pytest.raises(TypeError):
        transfers.destinations["x"] = NumberDestination("+31207948450")  # type: ignore[index]
    with pytest.raises(TypeError, match="add_destination"):
        transfers.add_destination("x", "+31207948450")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        transfers.add_destination(" ", NumberDestination("+31207948450"))


def test_refuse_is_spoken_and_skips_the_fallback(make_app: MakeApp) -> None:
    transfers = CallTransfer()

    @transfers.on_request
    def closed(call: TransferRequest) -> None:
        refuse("Our support team is closed right now.")

    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="+31612345678")
    with testing.record_signals(app) as heard:
        response = Vapi(app.test_client()).ask()
    assert (response.status_code, response.json) == (200, {"error": "Our support team is closed right now."})
    assert heard.one("transfer-refused")["reason"] == "Our support team is closed right now."
    assert heard.named("transfer-resolved") == []


def test_refuse_needs_a_sentence() -> None:
    with pytest.raises(ValueError, match="non-empty sentence"):
        refuse("  ")


def test_nobody_answers_uses_the_fallback(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: None)
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="+31612345678")
    with testing.record_signals(app) as heard:
        response = Vapi(app.test_client()).ask()
    assert number(response) == "+31612345678"
    assert heard.one("transfer-resolved")["handler"] is None


def test_nobody_answers_without_fallback_is_the_refusal_message(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: None)
    app, _ = make_app(transfers, CALLTRANSFER_REFUSAL_MESSAGE="Please call back later.")
    assert Vapi(app.test_client()).ask().json == {"error": "Please call back later."}


def test_no_handlers_at_all_warns_with_a_snippet(vapi: Vapi, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_calltransfer"):
        assert vapi.ask().json == REFUSAL
    assert any("@transfers.on_request" in r.getMessage() for r in caplog.records)


def boom(call: TransferRequest) -> t.NoReturn:
    raise RuntimeError("database down")


def test_handler_exception_goes_to_on_error(transfers: CallTransfer, vapi: Vapi, app: Flask) -> None:
    received: list[tuple[TransferRequest, Exception]] = []
    transfers.on_request(boom)

    @transfers.on_error
    def failed(call: TransferRequest, exc: Exception) -> str:
        received.append((call, exc))
        return "+31612345678"

    with testing.record_signals(app) as heard:
        response = vapi.ask()
    assert (response.status_code, number(response)) == (200, "+31612345678")
    assert isinstance(received[0][1], RuntimeError)
    assert heard.one("transfer-failed")["stage"] == "handler"
    assert heard.one("transfer-resolved")["handler"] is failed
    assert heard.names() == ["transfer-requested", "transfer-failed", "transfer-resolved"]


def test_handler_exception_is_logged_with_traceback(
    transfers: CallTransfer, vapi: Vapi, caplog: pytest.LogCaptureFixture
) -> None:
    transfers.on_request(boom)
    with caplog.at_level(logging.ERROR, logger="flask_calltransfer"):
        assert vapi.ask().json == REFUSAL
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "boom" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_handler_exception_without_on_error_uses_fallback(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(boom)
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="sip:desk@pbx.example.com")
    response = Vapi(app.test_client()).ask()
    assert response.json == {"destination": {"type": "sip", "sipUri": "sip:desk@pbx.example.com"}}


def test_on_error_returning_none_falls_back_then_refuses(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(boom)
    transfers.on_error(lambda call, exc: None)
    response = vapi.ask()
    assert (response.status_code, response.json) == (200, REFUSAL)


def test_on_error_that_raises_still_answers(transfers: CallTransfer, vapi: Vapi, app: Flask) -> None:
    transfers.on_request(boom)

    @transfers.on_error
    def broken(call: TransferRequest, exc: Exception) -> t.NoReturn:
        raise KeyError("also broken")

    with testing.record_signals(app) as heard:
        response = vapi.ask()
    assert (response.status_code, response.json) == (200, REFUSAL)
    assert [s["stage"] for s in heard.named("transfer-failed")] == ["handler", "on_error"]
    assert heard.one("transfer-refused")["reason"] == REFUSAL["error"]


def test_on_error_may_refuse(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(boom)

    @transfers.on_error
    def closed(call: TransferRequest, exc: Exception) -> None:
        refuse("We are having trouble; please call back in ten minutes.")

    assert vapi.ask().json == {"error": "We are having trouble; please call back in ten minutes."}


def test_on_error_returning_a_bad_destination(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(boom)
    transfers.on_error(lambda call, exc: "no-such-name")
    assert vapi.ask().json == REFUSAL


@pytest.mark.parametrize(
    "answer",
    [42, ["+31612345678"], "no-such-department", "+31 6 1234"],
)
def test_invalid_answers_take_the_failure_path(
    transfers: CallTransfer, vapi: Vapi, app: Flask, answer: t.Any
) -> None:
    transfers.on_request(lambda call: answer)
    seen: list[Exception] = []
    transfers.on_error(lambda call, exc: seen.append(exc))
    with testing.record_signals(app) as heard:
        response = vapi.ask()
    assert (response.status_code, response.json) == (200, REFUSAL)
    assert isinstance(seen[0], InvalidDestination)
    assert heard.one("transfer-failed")["stage"] == "destination"


def test_invalid_destination_built_in_handler(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(lambda call: NumberDestination("+1 555"))
    response = vapi.ask()
    assert (response.status_code, response.json) == (200, REFUSAL)


def test_predicate_that_raises_takes_the_failure_path(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(when=lambda call: 1 / 0 == 0)(lambda call: "+31687654321")
    transfers.on_error(lambda call, exc: "+31612345678" if isinstance(exc, ZeroDivisionError) else None)
    assert number(vapi.ask()) == "+31612345678"


def test_unsupported_fallback_falls_through_to_refusal(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.add_destination("named", NumberDestination("+31612345678", caller_id_name="Sales"))
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="named")
    with testing.record_signals(app) as heard:
        response = Vapi(app.test_client()).ask()
    assert response.json == REFUSAL
    assert heard.one("transfer-failed")["stage"] == "fallback"


def test_async_handlers(transfers: CallTransfer, vapi: Vapi) -> None:
    @transfers.on_request
    async def lookup(call: TransferRequest) -> str:
        await asyncio.sleep(0)
        return "+31612345678"

    assert number(vapi.ask()) == "+31612345678"


def test_async_on_error(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(boom)

    @transfers.on_error
    async def failed(call: TransferRequest, exc: Exception) -> str:
        await asyncio.sleep(0)
        return "sip:desk@pbx.example.com"

    assert vapi.ask().json["destination"]["sipUri"] == "sip:desk@pbx.example.com"


def test_handlers_can_use_flask_context(transfers: CallTransfer, vapi: Vapi) -> None:
    from flask import current_app
    from flask import request

    @transfers.on_request
    def route(call: TransferRequest) -> str | None:
        assert request.path == "/calltransfer/vapi"
        return current_app.config["SALES"]  # type: ignore[no-any-return]

    vapi.client.application.config["SALES"] = "+31612345678"
    assert number(vapi.ask()) == "+31612345678"


# resolve(): routing without HTTP ------------------------------------------------------------------


def call(text: str = "") -> TransferRequest:
    return TransferRequest(platform="vapi", event="transfer-destination-request", text=text)


def test_resolve_returns_the_destination(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.add_destination("sales", NumberDestination("+31207948450"))
    transfers.on_request(lambda c: "sales" if "sales" in c.text else None)
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="+31612345678")
    with app.app_context():
        assert transfers.resolve(call("sales")) == NumberDestination("+31207948450")
        assert transfers.resolve(call("other")) == NumberDestination("+31612345678")


def test_resolve_raises_refusals(make_app: MakeApp) -> None:
    app, transfers = make_app()
    with app.app_context(), pytest.raises(TransferRefused) as info:
        transfers.resolve(call())
    assert info.value.reason == REFUSAL["error"]


# on_event -----------------------------------------------------------------------------------------


def test_on_event_reply(transfers: CallTransfer, vapi: Vapi) -> None:
    seen: list[PlatformEvent] = []

    @transfers.on_event("assistant-request", platform="vapi")
    def choose(event: PlatformEvent) -> dict[str, t.Any]:
        seen.append(event)
        return {"assistantId": "a-1"}

    response = vapi.post(testing.vapi_event("assistant-request", call_id="c-1"))
    assert (response.status_code, response.json) == (200, {"assistantId": "a-1"})
    assert (seen[0].platform, seen[0].type, seen[0].call_id) == ("vapi", "assistant-request", "c-1")
    assert seen[0].payload["type"] == "assistant-request"


def test_on_event_filters_and_order(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_event("assistant-request", platform="sipgate")(lambda e: {"wrong": "platform"})
    transfers.on_event("status-update")(lambda e: {"wrong": "type"})
    transfers.on_event("assistant-request")(lambda e: None)
    transfers.on_event("assistant-request")(lambda e: {"assistantId": "second"})
    assert vapi.post(testing.vapi_event("assistant-request")).json == {"assistantId": "second"}


@pytest.mark.parametrize(
    "handler",
    [lambda e: 1 / 0, lambda e: ["not", "a", "dict"], lambda e: {"bad": object()}],
)
def test_failing_on_event_gives_the_no_op(transfers: CallTransfer, vapi: Vapi, handler: t.Any) -> None:
    transfers.on_event("assistant-request")(handler)
    response = vapi.post(testing.vapi_event("assistant-request"))
    assert (response.status_code, response.json) == (200, {})


def test_async_on_event(transfers: CallTransfer, vapi: Vapi) -> None:
    @transfers.on_event("assistant-request")
    async def choose(event: PlatformEvent) -> dict[str, t.Any]:
        await asyncio.sleep(0)
        return {"destination": {"type": "number", "number": "+31612345678"}}

    assert vapi.post(testing.vapi_event("assistant-request")).json["destination"]["type"] == "number"


def test_transfer_requests_never_reach_on_event(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_event("transfer-destination-request")(lambda e: {"hijacked": True})
    transfers.on_request(lambda call: "+31612345678")
    assert number(vapi.ask()) == "+31612345678"


def test_sip_destination_from_handler(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(lambda call: SipDestination("sip:vip@pbx.example.com", headers={"X-Account": "7"}))
    assert vapi.ask().json["destination"]["sipHeaders"] == {"X-Account": "7"}
