"""One timer per webhook request: the body's deadline first, then the handlers'.

Each scenario runs with the main thread's timer signal, with the watchdog of other threads, and
under gevent (in a monkey-patched interpreter of its own).
"""

from __future__ import annotations

import concurrent.futures
import json
import signal
import subprocess
import sys
import textwrap
import time
import typing as t

import pytest

from flask_calltransfer import CallTransfer
from flask_calltransfer import HandlerTimeout
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing
from flask_calltransfer.deadlines import RequestDeadline
from flask_calltransfer.deadlines import remaining
from tests.conftest import TOKEN
from tests.conftest import MakeApp
from tests.conftest import Sipgate
from tests.conftest import Vapi

MARGIN = 0.35

# The scenarios, as source: the gevent run executes the same text in a patched interpreter.
SCENARIOS = textwrap.dedent(
    """
    import time
    from flask_calltransfer import HandlerTimeout
    from flask_calltransfer.deadlines import RequestDeadline, remaining

    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.005)

    def handler_past_the_body_timeout():
        # The body's 0.05 s must not cut a handler that has 0.4 s.
        deadline = RequestDeadline(0.05, 0.4)
        deadline.read(lambda: b"body")
        started = time.monotonic()
        return deadline.run(lambda: (spin(0.15), "answered")[1], started + 0.4)

    def handler_deadline_holds():
        deadline = RequestDeadline(0.05, 0.15)
        deadline.read(lambda: b"body")
        started = time.monotonic()
        try:
            deadline.run(lambda: spin(5), started + 0.15)
        except HandlerTimeout:
            return round(time.monotonic() - started, 3)
        return "not interrupted"

    def slow_body_gets_the_body_timeout():
        # A nearer handler deadline does not shorten the body's.
        deadline = RequestDeadline(0.25, 0.05)
        started = time.monotonic()
        try:
            deadline.read(lambda: spin(5))
        except HandlerTimeout:
            return round(time.monotonic() - started, 3)
        finally:
            deadline.close()
        return "not interrupted"

    def time_between_counts_and_is_never_interrupted():
        deadline = RequestDeadline(0.05, 0.1)
        started = time.monotonic()
        deadline.read(lambda: b"body")
        spin(0.2)  # parsing, verification, the store: shielded, so not interrupted
        left = remaining()
        ran = []
        try:
            deadline.run(lambda: ran.append("handler"), started + 0.1)
        except HandlerTimeout:
            return {"remaining": left, "ran": ran}
        return "no timeout"

    def pause_past_the_body_deadline():
        # A long parse of a big body ends after the body's deadline, well inside the handlers'.
        deadline = RequestDeadline(0.05, 0.5)
        started = time.monotonic()
        deadline.read(lambda: b"body")
        spin(0.15)
        return deadline.run(lambda: (spin(0.1), "answered")[1], started + 0.5)

    def remaining_counts_down_in_the_handlers_only():
        deadline = RequestDeadline(0.5, 2.0)
        deadline.read(lambda: b"body")
        between = remaining()
        inside = deadline.run(remaining, time.monotonic() + 2.0)
        return {"between": between, "inside": 0 < inside <= 2.0, "after": remaining()}
    """
)

NAMES = [
    "handler_past_the_body_timeout",
    "handler_deadline_holds",
    "slow_body_gets_the_body_timeout",
    "time_between_counts_and_is_never_interrupted",
    "pause_past_the_body_deadline",
    "remaining_counts_down_in_the_handlers_only",
]


def _scenarios() -> dict[str, t.Callable[[], t.Any]]:
    namespace: dict[str, t.Any] = {}
    exec(compile(SCENARIOS, "<scenarios>", "exec"), namespace)
    return {name: namespace[name] for name in NAMES}


def _in_main_thread() -> dict[str, t.Any]:
    return {name: run() for name, run in _scenarios().items()}


def _in_another_thread() -> dict[str, t.Any]:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(_in_main_thread).result()


def _under_gevent() -> dict[str, t.Any]:
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import gevent, json\n"
        + SCENARIOS
        + f"\nprint(json.dumps(gevent.spawn(lambda: {{n: globals()[n]() for n in {NAMES!r}}}).get()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return t.cast(dict[str, t.Any], json.loads(done.stdout))


RUNNERS = {"alarm": _in_main_thread, "thread": _in_another_thread, "gevent": _under_gevent}


@pytest.fixture(scope="module", params=list(RUNNERS))
def results(request: pytest.FixtureRequest) -> dict[str, t.Any]:
    return RUNNERS[request.param]()


def test_a_handler_may_run_past_the_body_timeout(results: dict[str, t.Any]) -> None:
    assert results["handler_past_the_body_timeout"] == "answered"


def test_the_handler_deadline_holds_after_the_body(results: dict[str, t.Any]) -> None:
    elapsed = results["handler_deadline_holds"]
    assert isinstance(elapsed, float)
    assert 0.15 <= elapsed < 0.15 + MARGIN


def test_a_slow_body_gets_the_body_timeout_not_the_nearer_handler_one(results: dict[str, t.Any]) -> None:
    elapsed = results["slow_body_gets_the_body_timeout"]
    assert isinstance(elapsed, float)
    assert 0.25 <= elapsed < 0.25 + MARGIN


def test_time_between_body_and_handlers_counts_and_is_not_interrupted(results: dict[str, t.Any]) -> None:
    # The handlers' deadline passed in between: they never start, and nothing was cut short.
    assert results["time_between_counts_and_is_never_interrupted"] == {"remaining": None, "ran": []}


def test_a_pause_past_the_body_deadline_leaves_the_handlers_their_time(results: dict[str, t.Any]) -> None:
    assert results["pause_past_the_body_deadline"] == "answered"


def test_remaining_is_the_handlers_deadline_only(results: dict[str, t.Any]) -> None:
    assert results["remaining_counts_down_in_the_handlers_only"] == {
        "between": None,
        "inside": True,
        "after": None,
    }


def test_a_webhook_answered_in_time_sets_the_timer_once_per_deadline(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each arming is a system call on the hot path. sipgate's handlers have 0.8 s, less than the
    # body's 2 s: one timer serves both (set, cleared). Vapi's 15 s come after the body's 2 s: the
    # timer is moved to them once the body is in, so no signal reaches a handler before its time.
    app, _ = make_app(CALLTRANSFER_SIPGATE_TOKEN=TOKEN)
    calls: list[float] = []
    real = signal.setitimer

    def counting(which: int, seconds: float, interval: float = 0.0) -> tuple[float, float]:
        calls.append(seconds)
        return real(which, seconds, interval)

    vapi, sipgate = Vapi(app.test_client()), Sipgate(app.test_client())
    vapi.ask()
    monkeypatch.setattr(signal, "setitimer", counting)
    assert sipgate.post(testing.sipgate_event("user_speak", text="sales")).status_code in (200, 204)
    assert len(calls) == 2 and calls[0] <= 0.8 and calls[-1] == 0
    calls.clear()
    assert vapi.ask().status_code == 200
    assert len(calls) == 3 and calls[0] == 2.0 and calls[1] > 14 and calls[-1] == 0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_handler_slower_than_the_body_timeout_is_answered(make_app: MakeApp) -> None:
    transfers = CallTransfer()

    @transfers.on_request
    def thorough(call: TransferRequest) -> str:
        time.sleep(0.3)
        return "+31687654321"

    app, _ = make_app(transfers, CALLTRANSFER_BODY_TIMEOUT=0.1, CALLTRANSFER_HANDLER_TIMEOUT=2)
    for run in (lambda f: f(), lambda f: concurrent.futures.ThreadPoolExecutor(1).submit(f).result()):
        response = run(lambda: Vapi(app.test_client()).ask())
        assert response.json["destination"]["number"] == "+31687654321"


def test_an_event_handler_gets_its_own_deadline_after_the_body(make_app: MakeApp) -> None:
    transfers = CallTransfer()

    @transfers.on_event("assistant-request", platform="vapi")
    def slow(event: t.Any) -> dict[str, t.Any]:
        time.sleep(5)
        return {"assistantId": "too-late"}

    app, _ = make_app(transfers, CALLTRANSFER_HANDLER_TIMEOUT=0.2)
    started = time.monotonic()
    response = Vapi(app.test_client()).post({"message": {"type": "assistant-request", "call": {"id": "c1"}}})
    assert response.status_code == 200 and response.json == {}
    assert time.monotonic() - started < 0.2 + MARGIN


def test_closing_twice_and_before_reading_is_harmless() -> None:
    deadline = RequestDeadline(1.0, 1.0)
    deadline.close()
    assert deadline.read(lambda: "body") == "body"
    deadline.close()
    deadline.close()
    assert remaining() is None
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with pytest.raises(HandlerTimeout):
        # Closed: run() falls back to a deadline of its own.
        deadline.run(lambda: time.sleep(2), time.monotonic() + 0.05)


def _deadline_state() -> tuple[t.Any, t.Any, tuple[float, float], str]:
    import threading

    from flask_calltransfer import deadlines

    return (
        deadlines._alarm[0],
        deadlines._current.get(),
        signal.getitimer(signal.ITIMER_REAL),
        deadlines._method(threading.get_ident()),
    )


def test_a_deadline_landing_on_close_still_closes_the_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    # The timer's signal runs at the first bytecode of close() after the handler: close did
    # nothing, and a scope left installed turned every later request away from the timer.
    from flask_calltransfer import deadlines

    real_close = deadlines._Scope.close
    landed: list[bool] = []

    def interrupted(scope: t.Any) -> None:
        if not landed and not scope.closed and not scope.raised:
            landed.append(True)
            raise deadlines._Expired(scope)
        real_close(scope)

    monkeypatch.setattr(deadlines._Scope, "close", interrupted)
    deadline = RequestDeadline(1.0, 1.0)
    deadline.read(lambda: b"body")
    with pytest.raises(HandlerTimeout):
        deadline.run(lambda: "answered", time.monotonic() + 1.0)
    deadline.close()
    assert landed
    assert _deadline_state() == (None, None, (0.0, 0.0), "alarm")


@pytest.mark.parametrize("where", ["main", "thread"])
def test_a_body_read_that_fails_leaves_no_deadline_behind(where: str) -> None:
    # A body too large or a client gone: the view answers it, with no timer still armed behind.
    def attempt() -> tuple[t.Any, ...]:
        deadline = RequestDeadline(0.05, 0.05)
        with pytest.raises(ValueError):
            deadline.read(lambda: (_ for _ in ()).throw(ValueError("too large")))
        time.sleep(0.1)  # past the deadline: nothing may land here
        deadline.close()
        from flask_calltransfer import deadlines

        return deadlines._current.get(), deadlines.remaining()

    if where == "main":
        assert attempt() == (None, None)
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    else:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            assert pool.submit(attempt).result() == (None, None)


def test_a_deadline_between_body_and_handlers_gets_its_own() -> None:
    # A signal receiver or a platform's own code may bound a call of its own while the request
    # is paused; the paused request's deadline must not swallow it.
    from flask_calltransfer.deadlines import call_with_deadline

    def spin() -> None:
        end = time.monotonic() + 1
        while time.monotonic() < end:
            pass

    deadline = RequestDeadline(1.0, 1.0)
    deadline.read(lambda: b"body")
    started = time.monotonic()
    with pytest.raises(HandlerTimeout):
        # The paused request holds the timer: this one is the watchdog's, which interrupts
        # Python code (a blocking C call when it returns).
        call_with_deadline(spin, 0.1)
    assert time.monotonic() - started < 0.1 + MARGIN
    assert deadline.run(lambda: "answered", time.monotonic() + 1.0) == "answered"
    deadline.close()
    assert _deadline_state()[:3] == (None, None, (0.0, 0.0))


def test_no_timer_signal_reaches_a_handler_before_its_own_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # C code does not retry a system call a signal interrupted: the body's deadline must not send
    # one into a handler that still has most of its time.
    from flask_calltransfer import deadlines

    fired: list[float] = []
    real = deadlines._Scope._alarm_fire

    def recording(scope: t.Any) -> None:
        fired.append(time.monotonic())
        real(scope)

    monkeypatch.setattr(deadlines._Scope, "_alarm_fire", recording)
    deadline = RequestDeadline(0.05, 0.6)
    deadline.read(lambda: b"body")
    assert deadline.run(lambda: (time.sleep(0.2), "answered")[1], time.monotonic() + 0.6) == "answered"
    deadline.close()
    assert fired == []
