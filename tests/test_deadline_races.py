"""The deadline's exception arrives once, inside the deadline, never in a shielded section.

Each test runs many deadlines that end within microseconds of their handler, where a late timer
signal or a late asynchronous exception would escape into the code after the deadline (and, before
this design, end the process).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import typing as t

import pytest

from flask_calltransfer import HandlerTimeout
from flask_calltransfer.deadlines import call_with_deadline
from flask_calltransfer.deadlines import remaining
from flask_calltransfer.deadlines import shielded

METHODS = ["auto", "thread"]


def spin_until(moment: float) -> None:
    while time.monotonic() < moment:
        pass


def around_the_deadline(
    method: str, rounds: int, timeout: float = 0.002, jitter: float = 0.0004
) -> tuple[int, int]:
    """Handlers that end just before, at or just after their deadline; returns (answered, timed out)."""
    rng = random.Random(7)
    answered = timed_out = 0
    for _ in range(rounds):
        end = time.monotonic() + timeout + rng.uniform(-jitter, jitter)
        try:
            call_with_deadline(lambda end=end: spin_until(end), timeout, method=method)  # type: ignore[misc]
            answered += 1
        except HandlerTimeout:
            timed_out += 1
        # Anything still on its way would land in this loop, outside every deadline.
        for _ in range(200):
            pass
    return answered, timed_out


# The watchdog thread gets the GIL from a spinning handler only at the switch interval (5 ms), so
# its deadlines land within a few milliseconds: the thread method's handlers end over a wider band.
@pytest.mark.parametrize(
    ("method", "rounds", "timeout", "jitter"),
    [("auto", 1500, 0.002, 0.0004), ("thread", 500, 0.008, 0.007)],
)
def test_nothing_escapes_a_deadline_that_ends_with_its_handler(
    method: str, rounds: int, timeout: float, jitter: float
) -> None:
    answered, timed_out = around_the_deadline(method, rounds, timeout, jitter)
    assert answered + timed_out == rounds
    # Both sides of the race were exercised.
    assert answered > rounds // 20 and timed_out > rounds // 20
    time.sleep(0.05)


def test_thread_method_from_many_threads_at_once() -> None:
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(around_the_deadline("auto", 150, timeout=0.006, jitter=0.005))
        except BaseException as exc:  # noqa: BLE001 - anything here is the bug under test
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(a + b for a, b in results) == 600


def test_a_late_alarm_signal_is_ignored_not_fatal() -> None:
    call_with_deadline(lambda: None, 1.0)
    assert signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL
    # The default action of SIGALRM ends the process; a stray one must do nothing at all.
    os.kill(os.getpid(), signal.SIGALRM)
    time.sleep(0.01)
    assert call_with_deadline(lambda: 5, 1.0) == 5


@pytest.mark.parametrize("method", METHODS)
def test_a_deadline_inside_a_shielded_section_is_raised_when_it_ends(method: str) -> None:
    done: list[str] = []

    def handler() -> None:
        with shielded():
            spin_until(time.monotonic() + 0.2)
            time.sleep(0.05)
            done.append("section")
        done.append("after")  # never reached: the deadline is raised as the section ends

    started = time.monotonic()
    with pytest.raises(HandlerTimeout):
        call_with_deadline(handler, 0.05, method=method)
    assert done == ["section"]
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("method", METHODS)
def test_a_deadline_that_passed_before_a_section_stops_it_from_starting(method: str) -> None:
    done: list[str] = []

    def handler() -> None:
        try:
            spin_until(time.monotonic() + 0.2)
        except HandlerTimeout:
            pass  # a handler that swallows the deadline...
        with shielded():
            done.append("section")  # ...still runs its section: the deadline was raised once

    with pytest.raises(HandlerTimeout):
        call_with_deadline(handler, 0.05, method=method)
    assert done == ["section"]


@pytest.mark.parametrize("method", METHODS)
def test_shielded_sections_near_the_deadline_always_complete(method: str) -> None:
    # Each section either runs whole or not at all, however close to the deadline it starts.
    rng = random.Random(3)
    for _ in range(400):
        state = {"entered": 0, "finished": 0}

        def handler(state: dict[str, int] = state) -> None:
            spin_until(time.monotonic() + rng.uniform(0.0015, 0.0025))
            with shielded():
                state["entered"] += 1
                spin_until(time.monotonic() + 0.0005)
                state["finished"] += 1

        try:
            call_with_deadline(handler, 0.002, method=method)
        except HandlerTimeout:
            pass
        assert state["entered"] == state["finished"]


def test_remaining_counts_down_inside_a_deadline_only() -> None:
    assert remaining() is None
    left = call_with_deadline(remaining, 2.0)
    assert left is not None and 1.9 < left <= 2.0
    assert remaining() is None


def test_a_handler_that_swallows_the_deadline_still_times_out() -> None:
    def stubborn() -> str:
        try:
            spin_until(time.monotonic() + 0.2)
        except BaseException:
            pass
        return "late answer"

    with pytest.raises(HandlerTimeout):
        call_with_deadline(stubborn, 0.05)


# Found by an attacker's review of the design ------------------------------------------------------


def test_logging_while_the_deadline_passes_never_keeps_a_handler_lock() -> None:
    # logging.Handler.handle takes its lock before its try: a deadline between the two would keep
    # the lock, and every other thread that logs would wait forever.
    import io
    import logging

    handler = logging.StreamHandler(io.StringIO())
    log = logging.getLogger("tests.deadline-logging")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)

    def routing() -> None:
        while True:
            log.info("routing call %s", 123)

    def worker() -> None:
        stop = time.monotonic() + 1.5
        while time.monotonic() < stop:
            try:
                call_with_deadline(routing, 0.001, method="thread")
            except HandlerTimeout:
                pass

    try:
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads), "a thread waits for a logging lock"
        other = threading.Thread(target=lambda: log.info("the next request"), daemon=True)
        other.start()
        other.join(2)
        assert not other.is_alive()
    finally:
        log.removeHandler(handler)


@pytest.mark.parametrize("method", METHODS)
def test_a_nested_deadline_leaves_the_outer_one_in_charge(method: str) -> None:
    done: list[str] = []

    def inner() -> None:
        with shielded():
            spin_until(time.monotonic() + 0.3)  # the outer deadline passes in here
            done.append("section")

    with pytest.raises(HandlerTimeout) as info:
        call_with_deadline(lambda: call_with_deadline(inner, 5.0, method=method), 0.1, method=method)
    assert done == ["section"]
    assert info.value.timeout == 0.1


def test_a_section_that_outlives_its_deadline_ends_quietly() -> None:
    def steps() -> t.Iterator[int]:
        with shielded():
            yield 1
        yield 2

    results: list[t.Any] = []

    def in_a_thread() -> None:
        generator = steps()
        results.append(call_with_deadline(lambda: next(generator), 0.2, method="thread"))
        spin_until(time.monotonic() + 0.4)  # past the closed deadline
        results.append(next(generator))
        spin_until(time.monotonic() + 0.4)
        results.append("no escape")

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join(5)
    assert results == [1, 2, "no escape"]


def test_extreme_timeouts() -> None:
    errors: list[BaseException] = []

    def huge() -> None:
        try:
            assert call_with_deadline(lambda: "ok", 1e10, method="thread") == "ok"
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=huge)
    thread.start()
    thread.join(5)
    assert errors == []
    # The watchdog survived it and still enforces short deadlines.
    started = time.monotonic()
    with pytest.raises(HandlerTimeout):
        call_with_deadline(lambda: spin_until(time.monotonic() + 1), 0.05, method="thread")
    assert time.monotonic() - started < 0.5
    # Zero is "at once", not "never" (setitimer(0) would disarm the timer).
    for timeout in (0, -1):
        started = time.monotonic()
        with pytest.raises(HandlerTimeout):
            call_with_deadline(lambda: spin_until(time.monotonic() + 1), timeout)
        assert time.monotonic() - started < 0.5


def test_store_operations_from_a_mixin_are_guarded() -> None:
    from flask_calltransfer.store import MemoryStore
    from flask_calltransfer.store import Store

    class Operations:
        def get(self, key: str) -> str | None:
            return None

    class Mixed(Operations, MemoryStore):
        pass

    assert getattr(Mixed.get, "__calltransfer_guarded__", False)
    assert all(
        getattr(getattr(MemoryStore, name), "__calltransfer_guarded__", False) for name in ("set", "incr")
    )
    assert issubclass(Mixed, Store)
