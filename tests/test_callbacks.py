"""Callbacks: "we will call you back" as a routing result. The caller hears when, in each
platform's own "no transfer, say this" answer; one task per call is kept, once across repeated
deliveries and workers, and claimed by exactly one person."""

from __future__ import annotations

import datetime
import json
import logging
import threading
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import BusinessHours
from flask_calltransfer import Callback
from flask_calltransfer import CallTransfer
from flask_calltransfer import DestinationChain
from flask_calltransfer import Handoff
from flask_calltransfer import InvalidDestination
from flask_calltransfer import NumberDestination
from flask_calltransfer import testing
from flask_calltransfer.callbacks import when
from flask_calltransfer.cli import cli
from flask_calltransfer.store import MemoryStore
from flask_calltransfer.store import SqliteStore
from tests.conftest import TOKEN
from tests.conftest import MakeApp
from tests.conftest import Vapi
from tests.recorder import Recorder
from tests.test_failover import ANNA
from tests.test_failover import BRAM
from tests.test_failover import VoiceDock
from tests.test_failover import directory
from tests.test_failover import voicedock_config

AMSTERDAM = datetime.timezone(datetime.timedelta(hours=1))
OFFICE = BusinessHours({"mon-fri": "09:00-17:00"}, timezone="Europe/Amsterdam", holidays=["2026-12-25"])
NEVER = BusinessHours({}, timezone="Europe/Amsterdam")


def at(day: int, hour: int, minute: int = 0) -> datetime.datetime:
    """A moment in December 2026, Amsterdam time (the 4th is a Friday)."""
    return datetime.datetime(2026, 12, day, hour, minute, tzinfo=AMSTERDAM)


# What the caller hears ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "heard"),
    [
        (at(4, 10), "We will call you back as soon as someone is free."),
        (at(4, 7, 30), "We will call you back today at 09:00."),
        (at(3, 18), "We will call you back tomorrow at 09:00."),
        (at(4, 17), "We will call you back on Monday at 09:00."),
        # Christmas is a holiday: the next opening is the 28th.
        (at(24, 17), "We will call you back on Monday at 09:00."),
    ],
)
def test_the_caller_hears_when_they_will_be_called_back(now: datetime.datetime, heard: str) -> None:
    assert Callback(hours=OFFICE).words(now).endswith(heard)


def test_when_reads_as_a_date_beyond_a_week() -> None:
    slot = datetime.datetime(2027, 1, 5, 9, 0, tzinfo=AMSTERDAM)
    assert when(slot, at(4, 10)) == "on 5 January at 09:00"


def test_a_schedule_that_never_opens_calls_back_as_soon_as_someone_is_free() -> None:
    assert NEVER.next_open(at(4, 10)) is None
    assert "as soon as someone is free" in Callback(hours=NEVER).words(at(4, 10))


def test_next_open_with_midnight_and_several_ranges() -> None:
    late = BusinessHours({"fri": ["08:00-12:00", "13:00-24:00"]}, timezone="Europe/Amsterdam")
    assert late.next_open(at(4, 12, 30)) == datetime.datetime(2026, 12, 4, 13, 0, tzinfo=late.timezone)
    assert late.next_open(at(4, 23, 59)) == at(4, 23, 59).astimezone(late.timezone)
    # Built again from its own description, as a chain's callback is from the store.
    assert BusinessHours(**late.arguments()).hours == late.hours


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"message": "Call {name}"}, "one placeholder, {when}"),
        ({"message": "Call {"}, "one placeholder, {when}"),
        ({"message": ""}, "1 to 1000 characters"),
        ({"message": "x" * 1001}, "1 to 1000 characters"),
        ({"reason": "two\nlines"}, "one line"),
        ({"reason": "r" * 201}, "at most 200"),
        ({"hours": "09:00-17:00"}, "must be a BusinessHours"),
        ({"handoff": {"reason": "x"}}, "must be a Handoff"),
    ],
)
def test_a_bad_callback_is_refused_where_it_is_built(kwargs: dict[str, t.Any], words: str) -> None:
    with pytest.raises(InvalidDestination, match=words.replace("{", r"\{").replace("}", r"\}")):
        Callback(**kwargs)


def test_a_chain_takes_only_a_callback() -> None:
    with pytest.raises(TypeError, match="must be a Callback"):
        DestinationChain([ANNA], callback="call them back")  # type: ignore[arg-type]


# Per platform, and once per call ------------------------------------------------------------------


def full_desk(make_app: MakeApp, store: t.Any = None, **config: t.Any) -> tuple[Flask, CallTransfer]:
    transfers = CallTransfer(store=store)
    transfers.add_destination("anna", NumberDestination(ANNA), max_concurrent=1)
    offer = Callback(reason="Billing question", handoff=Handoff("Invoice", account="ACC-1"))
    transfers.on_request(lambda call: DestinationChain(["anna"], callback=offer))
    app, _ = make_app(transfers, **config)
    return app, transfers


def test_every_destination_full_offers_the_callback_once_per_call(make_app: MakeApp) -> None:
    app, _ = full_desk(make_app)
    vapi = Vapi(app.test_client())
    with testing.record_signals(app) as heard:
        assert vapi.ask(call_id="taken").get_json()["destination"]["number"] == ANNA
        first = vapi.ask(call_id="waiting", caller="+31612345678").get_json()
        again = vapi.ask(call_id="waiting", caller="+31612345678").get_json()
    assert (
        first
        == again
        == {"error": "Nobody can take your call right now. We will call you back as soon as someone is free."}
    )
    (requested,) = heard.named("callback-requested")
    task = requested["task"]
    assert (task["id"], task["call_id"], task["caller"], task["reason"]) == (
        1,
        "waiting",
        "+31612345678",
        "Billing question",
    )
    assert task["handoff"]["account"] == "ACC-1" and task["status"] == "open"
    # Each request still ends in exactly one outcome signal: what the caller heard.
    assert [r["reason"] for r in heard.named("transfer-refused")] == [first["error"]] * 2
    assert [t["id"] for t in app.extensions["calltransfer"].callbacks.tasks()] == [1]


def test_a_handler_may_answer_with_a_callback_on_every_platform(
    make_app: MakeApp, recorder: Recorder
) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: Callback("Our team calls you back {when}.", hours=None))
    app, _ = make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN, **voicedock_config(recorder))
    client = app.test_client()
    said = "Our team calls you back as soon as someone is free."
    assert Vapi(client).ask(call_id="v-1").get_json() == {"error": said}
    body = testing.dumps(testing.sipgate_event("user_speak", session_id="s-1", text="hello"))
    speak = client.post("/calltransfer/sipgate", data=body, headers=testing.sipgate_headers(TOKEN)).get_json()
    assert (speak["type"], speak["text"]) == ("speak", said)
    reply = VoiceDock(app).tool_call("d-1", "tc-1").get_json()
    assert reply["results"][0]["result"]["error"] == said and recorder.received == []
    tasks = app.extensions["calltransfer"].callbacks.tasks()
    assert [(task["platform"], task["call_id"]) for task in tasks] == [
        ("vapi", "v-1"),
        ("sipgate", "s-1"),
        ("voicedock", "d-1"),
    ]


def test_voicedock_chain_that_runs_out_keeps_the_callback(make_app: MakeApp, recorder: Recorder) -> None:
    # The chain, its hand-off and its callback come back from the store for the failure event.
    transfers = CallTransfer()
    directory(transfers)
    offer = Callback(reason="Wants sales", hours=OFFICE, handoff=Handoff("Pricing"))
    handoff = Handoff("Pricing", account="ACC-9")
    chain = DestinationChain([NumberDestination(ANNA, handoff=handoff), "bram"], callback=offer)
    transfers.on_request(lambda call: chain)
    app, _ = make_app(transfers, **voicedock_config(recorder))
    vd = VoiceDock(app)
    with testing.record_signals(app) as heard:
        vd.tool_call("vd-9", "tc-9")
        vd.status("vd-9", "failed")
        vd.status("vd-9", "failed")
        vd.again()
    assert [r.json["destination"] for r in recorder.received] == [ANNA, BRAM]
    (requested,) = heard.named("callback-requested")
    assert requested["task"]["reason"] == "Wants sales" and requested["task"]["slot"] is not None
    assert requested["offer"].hours.timezone.key == "Europe/Amsterdam"


def test_a_store_outage_still_tells_the_caller_and_the_signal_gets_the_call(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    class Down(MemoryStore):
        def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
            if key.startswith("callbacks:"):
                raise OSError("connection refused")
            return super().incr(key, amount, ttl=ttl)

    transfers = CallTransfer(store=Down())
    transfers.on_request(lambda call: Callback())
    app, _ = make_app(transfers)
    with testing.record_signals(app) as heard, caplog.at_level(logging.INFO):
        reply = Vapi(app.test_client()).ask(call_id="down", caller="+31612345678")
    assert reply.status_code == 200 and "call you back" in reply.get_json()["error"]
    assert heard.one("callback-requested")["task"] is None
    assert "could not be kept in the store" in caplog.text and "+31612345678" not in caplog.text


# Claiming and completing ---------------------------------------------------------------------------


def test_twenty_concurrent_claims_of_one_task_give_one_winner(tmp_path: t.Any, make_app: MakeApp) -> None:
    app, _ = full_desk(make_app, SqliteStore(str(tmp_path / "store.sqlite3")))
    vapi = Vapi(app.test_client())
    vapi.ask(call_id="taken")
    vapi.ask(call_id="waiting")
    book = app.extensions["calltransfer"].callbacks
    barrier, won = threading.Barrier(20), []

    def claim(name: str) -> None:
        barrier.wait()
        with app.app_context():
            if book.claim(1, name) is not None:
                won.append(name)

    threads = [threading.Thread(target=claim, args=(f"agent-{i}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(won) == 1
    assert book.get(1)["claimed_by"] == won[0] and book.get(1)["status"] == "claimed"


def test_the_cli_lists_claims_and_completes_tasks(make_app: MakeApp) -> None:
    app, _ = full_desk(make_app)
    vapi = Vapi(app.test_client())
    vapi.ask(call_id="taken")
    vapi.ask(call_id="waiting", caller="+31612345678")
    runner = app.test_cli_runner()
    listed = runner.invoke(cli, ["callbacks"])
    assert listed.exit_code == 0 and "#1 open, +31612345678 (vapi), waiting 0 min" in listed.output
    assert "Billing question" in listed.output
    claimed = runner.invoke(cli, ["callbacks", "claim", "1", "--by", "Ines"])
    assert claimed.exit_code == 0 and "Task #1 is yours, Ines" in claimed.output
    second = runner.invoke(cli, ["callbacks", "claim", "1", "--by", "Olaf"])
    assert second.exit_code == 1 and "someone claimed it first" in second.output
    assert "No open callback tasks." in runner.invoke(cli, ["callbacks"]).output
    assert runner.invoke(cli, ["callbacks", "done", "1"]).exit_code == 0
    done = json.loads(runner.invoke(cli, ["callbacks", "--status", "done", "--json"]).output)
    assert [(task["id"], task["status"], task["claimed_by"]) for task in done] == [(1, "done", "Ines")]
    assert runner.invoke(cli, ["callbacks", "done", "1"]).exit_code == 1
    assert runner.invoke(cli, ["callbacks", "claim", "7", "--by", "Ines"]).exit_code == 1


def test_the_dashboard_shows_open_callbacks(make_app: MakeApp) -> None:
    app, _ = full_desk(
        make_app, CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_DASHBOARD_TOKEN="dash-token-0123456789"
    )
    vapi = Vapi(app.test_client())
    vapi.ask(call_id="taken")
    vapi.ask(call_id="waiting")
    client = app.test_client()
    client.post("/calltransfer/dashboard/sign-in", data={"token": "dash-token-0123456789"})
    page = client.get("/calltransfer/dashboard").get_data(as_text=True)
    assert "Open callbacks: 1, the longest waiting 0 min." in page
