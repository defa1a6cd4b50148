"""Handler deadlines: a slow or stuck handler still gives the platform a valid answer in time."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import HandlerTimeout
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing
from flask_calltransfer.deadlines import call_with_deadline
from tests.conftest import TOKEN
from tests.conftest import MakeApp
from tests.conftest import Sipgate
from tests.conftest import Vapi

REFUSAL = {"error": "I'm sorry, I can't transfer your call right now."}
MARGIN = 0.35


def timed(func: t.Callable[[], t.Any]) -> tuple[t.Any, float]:
    started = time.monotonic()
    result = func()
    return result, time.monotonic() - started


def sleeper(call: TransferRequest) -> str:
    time.sleep(30)
    return "+31687654321"


def busy(call: TransferRequest) -> str:
    while True:
        pass


def swallower(call: TransferRequest) -> str:
    # Catching Exception must not keep a handler alive past its deadline.
    while True:
        try:
            time.sleep(30)
        except Exception:
            pass


async def async_sleeper(call: TransferRequest) -> str:
    await asyncio.sleep(30)
    return "+31687654321"


@pytest.mark.parametrize("handler", [sleeper, busy, swallower, async_sleeper])
def test_overrunning_handler_gets_the_failure_path(make_app: MakeApp, handler: t.Any) -> None:
    transfers = CallTransfer()
    transfers.on_request(handler)
    app, _ = make_app(transfers, CALLTRANSFER_HANDLER_TIMEOUT=0.3)
    with testing.record_signals(app) as heard:
        response, elapsed = timed(lambda: Vapi(app.test_client()).ask())
    assert (response.status_code, response.json) == (200, REFUSAL)
    assert elapsed < 0.3 + MARGIN
    failed = heard.one("transfer-failed")
    assert failed["stage"] == "timeout"
    assert isinstance(failed["exception"], HandlerTimeout)
    time.sleep(0.12)  # the timer is off: nothing fires after the request


def test_timeout_then_on_error_then_fallback(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(sleeper)
    seen: list[BaseException] = []

    @transfers.on_error
    def failed(call: TransferRequest, exc: BaseException) -> str:
        seen.append(exc)
        return "+31612345678"

    app, _ = make_app(transfers, CALLTRANSFER_HANDLER_TIMEOUT=0.2)
    response, elapsed = timed(lambda: Vapi(app.test_client()).ask())
    assert response.json["destination"]["number"] == "+31612345678"
    assert isinstance(seen[0], HandlerTimeout) and seen[0].timeout == 0.2
    assert elapsed < 0.2 + MARGIN


def test_a_slow_on_error_gets_a_short_grace_then_the_fallback(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(sleeper)
    transfers.on_error(lambda call, exc: sleeper(call))
    app, _ = make_app(transfers, CALLTRANSFER_HANDLER_TIMEOUT=0.4, CALLTRANSFER_FALLBACK="+31612345678")
    with testing.record_signals(app) as heard:
        response, elapsed = timed(lambda: Vapi(app.test_client()).ask())
    assert response.json["destination"]["number"] == "+31612345678"
    assert elapsed < 0.4 + 0.1 + MARGIN  # the grace is a quarter of the timeout
    assert [s["stage"] for s in heard.named("transfer-failed")] == ["timeout", "on_error"]


def test_thread_method_when_not_in_the_main_thread(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(busy)
    app, _ = make_app(transfers, CALLTRANSFER_HANDLER_TIMEOUT=0.3)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        response, elapsed = pool.submit(timed, lambda: Vapi(app.test_client()).ask()).result()
    assert response.json == REFUSAL
    assert elapsed < 0.3 + MARGIN


def test_a_thread_blocked_in_c_is_interrupted_when_the_call_returns(make_app: MakeApp) -> None:
    # Nothing can interrupt a thread waiting in C; the deadline is raised as soon as it is back in
    # Python, so the handler's late answer is never used.
    transfers = CallTransfer()

    @transfers.on_request
    def blocked(call: TransferRequest) -> str:
        time.sleep(0.7)
        return "+31687654321"

    app, _ = make_app(transfers, CALLTRANSFER_HANDLER_TIMEOUT=0.2, CALLTRANSFER_FALLBACK="+31612345678")
    with testing.record_signals(app) as heard:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            response, elapsed = pool.submit(timed, lambda: Vapi(app.test_client()).ask()).result()
    assert response.json["destination"]["number"] == "+31612345678"
    assert 0.7 <= elapsed < 0.7 + MARGIN
    assert heard.one("transfer-failed")["stage"] == "timeout"


def test_thread_method_keeps_the_flask_context(make_app: MakeApp) -> None:
    from flask import current_app
    from flask import request

    transfers = CallTransfer()
    transfers.on_request(
        lambda call: current_app.config["TARGET"] if request.path.endswith("/vapi") else None
    )
    app, _ = make_app(transfers, CALLTRANSFER_HANDLER_TIMEOUT=2)
    app.config["TARGET"] = "+31612345678"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        response = pool.submit(lambda: Vapi(app.test_client()).ask()).result()
    assert response.json["destination"]["number"] == "+31612345678"


def test_handler_exceptions_pass_through_both_methods() -> None:
    def fail() -> None:
        raise LookupError("x")

    with pytest.raises(LookupError):
        call_with_deadline(fail, 1.0)
    with pytest.raises(LookupError):
        call_with_deadline(fail, 1.0, method="thread")
    assert call_with_deadline(lambda: 5, 1.0, method="thread") == 5
    assert call_with_deadline(lambda: 6, None) == 6


def test_the_timer_leaves_other_alarm_users_alone() -> None:
    import signal

    previous = signal.signal(signal.SIGALRM, lambda *a: None)
    try:
        # With someone else's handler installed, the thread method is used instead.
        started = time.monotonic()
        with pytest.raises(HandlerTimeout):
            call_with_deadline(lambda: busy(t.cast(TransferRequest, None)), 0.1)
        assert time.monotonic() - started < 0.5
        assert signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_sipgate_default_is_under_a_second(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(sleeper)
    app, _ = make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN)
    assert app.extensions["calltransfer"].timeouts["sipgate"] == 0.8
    response, elapsed = timed(lambda: Sipgate(app.test_client()).event("user_speak", text="hi"))
    assert response.json["type"] == "speak"
    assert elapsed < 0.8 + MARGIN


def test_per_platform_defaults_and_overrides(make_app: MakeApp) -> None:
    app, _ = make_app(CALLTRANSFER_SIPGATE_TOKEN=TOKEN, CALLTRANSFER_VOICEDOCK_SECRET="s")
    assert app.extensions["calltransfer"].timeouts == {"vapi": 15.0, "sipgate": 0.8, "voicedock": 6.0}
    app, _ = make_app(CALLTRANSFER_SIPGATE_TOKEN=TOKEN, CALLTRANSFER_HANDLER_TIMEOUT=2)
    assert app.extensions["calltransfer"].timeouts == {"vapi": 2.0, "sipgate": 2.0}
    app, _ = make_app(CALLTRANSFER_SIPGATE_TOKEN=TOKEN, CALLTRANSFER_HANDLER_TIMEOUT={"sipgate": 0.5})
    assert app.extensions["calltransfer"].timeouts == {"vapi": 15.0, "sipgate": 0.5}


@pytest.mark.parametrize("value", [0, -1, "5", True, 301, {"vapi": 0}, {"twilio": 1}])
def test_invalid_timeouts(make_app: MakeApp, value: t.Any) -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_HANDLER_TIMEOUT"):
        make_app(CALLTRANSFER_HANDLER_TIMEOUT=value)


def test_fast_handlers_are_unaffected(app: Flask, transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(lambda call: "+31612345678")
    for _ in range(50):
        assert vapi.ask().json["destination"]["number"] == "+31612345678"


def test_an_async_handlers_own_timeout_error_is_a_failure_not_the_deadline(make_app: MakeApp) -> None:
    transfers = CallTransfer()

    async def crm(call: TransferRequest) -> str:
        raise TimeoutError("The CRM's socket read timed out.")

    transfers.on_request(crm)
    app, _ = make_app(transfers, CALLTRANSFER_HANDLER_TIMEOUT=2)
    with testing.record_signals(app) as heard:
        Vapi(app.test_client()).ask()
    assert heard.one("transfer-failed")["stage"] == "handler"
