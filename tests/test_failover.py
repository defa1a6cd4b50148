"""Failover and availability: DestinationChain tried in order for one call, the attempts kept in
the store, capacity (max_concurrent) and availability checks, per platform."""

from __future__ import annotations

import json
import logging
import time
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import BusinessHours
from flask_calltransfer import CallTransfer
from flask_calltransfer import DestinationChain
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferPlan
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing
from flask_calltransfer.store import MemoryStore
from tests.conftest import TOKEN
from tests.conftest import MakeApp
from tests.conftest import Sipgate
from tests.conftest import Vapi
from tests.recorder import Recorder
from tests.recorder import Reply

VD_SECRET = "voicedock-webhook-secret"
ANNA, BRAM, DESK = "+31207948451", "+31207948452", "+31207948400"
CLOSED = BusinessHours({}, timezone="Europe/Amsterdam")


def directory(transfers: CallTransfer, **lines: t.Any) -> None:
    for name, number in (("anna", ANNA), ("bram", BRAM), ("desk", DESK)):
        transfers.add_destination(name, NumberDestination(number), **lines.get(name, {}))


def hunt_group(store: t.Any = None, **lines: t.Any) -> CallTransfer:
    """The directory, and every call asking for anna, then bram."""
    transfers = CallTransfer(store=store)
    directory(transfers, **lines)
    transfers.on_request(lambda call: DestinationChain(["anna", "bram"]))
    return transfers


def vapi_number(response: t.Any) -> str | None:
    data = response.get_json()
    assert response.status_code == 200, data
    return data.get("destination", {}).get("number")


class VoiceDock:
    """Signed VoiceDock webhooks; each status update its own event (VoiceDock stamps each)."""

    def __init__(self, app: Flask) -> None:
        self.client = app.test_client()
        self.last: tuple[bytes, dict[str, str]] = (b"", {})
        self.count = 0

    def post(self, body: dict[str, t.Any]) -> t.Any:
        data = testing.dumps(body)
        self.last = (data, testing.voicedock_headers(data, VD_SECRET))
        return self.again()

    def again(self) -> t.Any:
        """The last request once more, byte for byte: a retry, or a delivery to another worker."""
        data, headers = self.last
        return self.client.post("/calltransfer/voicedock", data=data, headers=headers)

    def tool_call(self, call_id: str, tool_call_id: str) -> t.Any:
        return self.post(testing.voicedock_tool_calls(call_id=call_id, tool_call_id=tool_call_id))

    def status(self, call_id: str, status: str) -> t.Any:
        self.count += 1
        return self.post(
            testing.voicedock_event("status-update", call_id=call_id, status=status, seq=self.count)
        )


# Vapi: the assistant stays on the call and asks again -------------------------------------------


def test_vapi_next_request_for_the_call_gets_the_next_destination(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    directory(transfers)
    seen: list[tuple[t.Any, ...]] = []

    @transfers.on_request
    def route(call: TransferRequest) -> DestinationChain:
        seen.append(call.attempts)
        return DestinationChain(["anna", "bram"], message="They are busy; one moment.")

    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="desk")
    vapi = Vapi(app.test_client())
    with testing.record_signals(app) as heard:
        first = vapi.ask(call_id="c-1")
        second = vapi.ask(call_id="c-1")
        third = vapi.ask(call_id="c-1")
        other = vapi.ask(call_id="c-2")
    assert [vapi_number(r) for r in (first, second, third, other)] == [ANNA, BRAM, DESK, ANNA]
    # The assistant stays on the call when the transfer fails, saying the chain's message.
    plan = first.get_json()["destination"]["transferPlan"]
    assert plan == {
        "mode": "blind-transfer",
        "fallbackPlan": {"message": "They are busy; one moment.", "endCallEnabled": False},
    }
    assert seen[0] == () and len(seen[1]) == 1
    earlier = seen[1][0]
    assert (earlier.number, earlier.destination, earlier.outcome, earlier.failed) == (
        1,
        "anna",
        "failed",
        True,
    )
    assert [a.destination for a in seen[2]] == ["anna", "bram"]
    attempted = [
        (s["call"].call_id, s["attempt"].number, s["attempt"].destination)
        for s in heard.named("transfer-attempted")
    ]
    assert attempted == [("c-1", 1, "anna"), ("c-1", 2, "bram"), ("c-2", 1, "anna")]
    finished = heard.named("transfer-finished")
    assert [(f["call_id"], f["outcome"], f["destination"]) for f in finished] == [("c-1", "exhausted", None)]
    assert [a.outcome for a in finished[0]["attempts"]] == ["failed", "failed"]


def test_vapi_reads_how_the_last_transfer_ended_from_the_request(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    directory(transfers)
    seen: list[t.Any] = []

    @transfers.on_request
    def route(call: TransferRequest) -> DestinationChain:
        seen.append(call.attempts)
        return DestinationChain(["anna", "bram"])

    app, _ = make_app(transfers)
    vapi = Vapi(app.test_client())
    vapi.ask(call_id="c-busy")
    artifact = {"transfers": [{"destination": {"type": "number", "number": ANNA}, "status": "busy"}]}
    assert vapi_number(vapi.ask(call_id="c-busy", artifact=artifact)) == BRAM
    assert [(a.outcome, a.detail) for a in seen[1]] == [("busy", "busy")]


def test_vapi_outcome_event_settles_the_attempt_and_a_connected_call_finishes(make_app: MakeApp) -> None:
    transfers = hunt_group()
    app, _ = make_app(transfers)
    vapi = Vapi(app.test_client())
    with testing.record_signals(app) as heard:
        vapi.ask(call_id="c-ok")
        ended = testing.vapi_event(
            "status-update", call_id="c-ok", status="ended", endedReason="assistant-forwarded-call"
        )
        vapi.post(ended)
        vapi.post(ended)
    finished = heard.named("transfer-finished")
    assert [(f["outcome"], f["destination"]) for f in finished] == [("connected", "anna")]
    assert [(a.destination, a.outcome) for a in finished[0]["attempts"]] == [("anna", "connected")]


def test_vapi_keeps_a_plan_of_the_apps_own(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    warm = NumberDestination(
        ANNA, transfer_plan=TransferPlan("warm-transfer-say-message", message="A caller.")
    )
    transfers.on_request(lambda call: DestinationChain([warm, BRAM]))
    app, _ = make_app(transfers)
    plan = Vapi(app.test_client()).ask(call_id="c-warm").get_json()["destination"]["transferPlan"]
    # Vapi gives the say-message mode no fallback plan: the destination is sent as the app made it.
    assert plan == {"mode": "warm-transfer-say-message", "message": "A caller."}


def test_handlers_see_attempts_and_decide_themselves(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    directory(transfers)

    seen: list[t.Any] = []

    @transfers.on_request
    def route(call: TransferRequest) -> t.Any:
        seen.append([(a.destination, a.outcome) for a in call.attempts])
        if any(attempt.failed for attempt in call.attempts):
            return "desk"
        return DestinationChain(["anna", "bram"])

    app, _ = make_app(transfers)
    vapi = Vapi(app.test_client())
    assert vapi_number(vapi.ask(call_id="c-own")) == ANNA
    artifact = {"transfers": [{"status": "no-answer"}]}
    assert vapi_number(vapi.ask(call_id="c-own", artifact=artifact)) == DESK
    assert seen == [[], [("anna", "no-answer")]]


# VoiceDock: a failed status update sends the next transfer through the API, once -----------------


def voicedock_config(recorder: Recorder) -> dict[str, t.Any]:
    """VoiceDock with its transfer tool, its Call Control API the recorder."""
    return {
        "CALLTRANSFER_VOICEDOCK_SECRET": VD_SECRET,
        "CALLTRANSFER_VOICEDOCK_TOOLS": ["transfer_call"],
        "CALLTRANSFER_VOICEDOCK_API_KEY": "vd-key",
        "CALLTRANSFER_VOICEDOCK_API_URL": recorder.url,
    }


@pytest.fixture
def voicedock(make_app: MakeApp, recorder: Recorder) -> tuple[Flask, VoiceDock]:
    transfers = hunt_group()
    app, _ = make_app(
        transfers,
        **voicedock_config(recorder),
    )
    return app, VoiceDock(app)


def destinations_sent(recorder: Recorder) -> list[str]:
    return [r.json["destination"] for r in recorder.received if r.path.endswith("/control")]


def test_voicedock_failed_status_sends_the_next_destination_once(
    voicedock: tuple[Flask, VoiceDock], recorder: Recorder
) -> None:
    app, vd = voicedock
    with testing.record_signals(app) as heard:
        assert vd.tool_call("vd-1", "tc-1").status_code == 200
        assert vd.status("vd-1", "failed").status_code == 200
        # The same news delivered again (a retry, or to another worker) sends nothing more.
        assert vd.again().status_code == 200
        assert vd.status("vd-1", "transferred").status_code == 200
    assert destinations_sent(recorder) == [ANNA, BRAM]
    assert all(r.path == "/calls/vd-1/control" for r in recorder.received)
    assert [s["attempt"].destination for s in heard.named("transfer-attempted")] == ["anna", "bram"]
    finished = heard.named("transfer-finished")
    assert [(f["outcome"], f["destination"]) for f in finished] == [("connected", "bram")]


def test_voicedock_chain_exhausted_and_ended_call(
    voicedock: tuple[Flask, VoiceDock], recorder: Recorder
) -> None:
    app, vd = voicedock
    with testing.record_signals(app) as heard:
        vd.tool_call("vd-2", "tc-2")
        vd.status("vd-2", "failed")
        vd.status("vd-2", "rejected")
        vd.tool_call("vd-3", "tc-3")
        vd.status("vd-3", "ended-with-error")
    # vd-2 ran out of destinations; vd-3's call ended: nothing follows on a call that is over.
    assert destinations_sent(recorder) == [ANNA, BRAM, ANNA]
    finished = [(f["call_id"], f["outcome"]) for f in heard.named("transfer-finished")]
    assert finished == [("vd-2", "failed"), ("vd-3", "failed")]


def test_voicedock_failed_next_delivery_is_answered_and_logged(
    voicedock: tuple[Flask, VoiceDock], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    app, vd = voicedock
    vd.tool_call("vd-4", "tc-4")
    recorder.script("/calls/vd-4/control", Reply(status=500, body={"error": "down"}))
    with testing.record_signals(app) as heard:
        response = vd.status("vd-4", "failed")
    assert response.status_code == 200 and response.get_json() == {}
    assert destinations_sent(recorder) == [ANNA, BRAM]
    assert [f["stage"] for f in heard.named("transfer-failed")] == ["deliver"]
    assert any("next destination" in r.getMessage() for r in caplog.records)


# Capacity and availability -----------------------------------------------------------------------


def test_a_third_concurrent_caller_skips_a_full_destination(make_app: MakeApp) -> None:
    transfers = hunt_group(anna={"max_concurrent": 2})
    app, _ = make_app(transfers)
    vapi = Vapi(app.test_client())
    with testing.record_signals(app) as heard:
        answers = [vapi_number(vapi.ask(call_id=f"cap-{i}")) for i in range(3)]
    assert answers == [ANNA, ANNA, BRAM]
    skipped = heard.named("destination-skipped")
    assert [(s["call"].call_id, s["destination"].directory_name, s["reason"]) for s in skipped] == [
        ("cap-2", "anna", "full")
    ]
    # A transfer that did not connect gives its place back.
    vapi.post(
        testing.vapi_event(
            "status-update", call_id="cap-0", status="ended", endedReason="call.forwarding.no-answer"
        )
    )
    assert vapi_number(vapi.ask(call_id="cap-3")) == ANNA
    # A connected one keeps it, until CALLTRANSFER_CAPACITY_HOLD.
    vapi.post(
        testing.vapi_event(
            "status-update", call_id="cap-1", status="ended", endedReason="assistant-forwarded-call"
        )
    )
    assert vapi_number(vapi.ask(call_id="cap-4")) == BRAM


def test_capacity_of_a_plain_answer_and_nobody_free_uses_the_fallback(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    directory(transfers, anna={"max_concurrent": 1})
    transfers.on_request(lambda call: "anna")
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="desk")
    vapi = Vapi(app.test_client())
    assert [vapi_number(vapi.ask(call_id=f"p-{i}")) for i in range(2)] == [ANNA, DESK]


def test_availability_checks_skip_and_a_failing_check_counts_as_available(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    transfers = CallTransfer()
    directory(transfers, bram={"available": CLOSED})
    away = {"anna"}

    @transfers.availability
    def free(destination: t.Any, call: TransferRequest) -> bool:
        if call.call_id == "broken":
            raise ConnectionError("presence system down")
        return destination.directory_name not in away

    transfers.on_request(lambda call: DestinationChain(["anna", "bram", "desk"]))
    app, _ = make_app(transfers)
    vapi = Vapi(app.test_client())
    with testing.record_signals(app) as heard:
        assert vapi_number(vapi.ask(call_id="a-1")) == DESK
    reasons = [(s["destination"].directory_name, s["reason"]) for s in heard.named("destination-skipped")]
    assert reasons == [("anna", "unavailable"), ("bram", "unavailable")]
    assert any("Skipped anna" in r.getMessage() for r in caplog.records)
    # The presence system is down: the first destination still takes the call (bram is closed).
    with caplog.at_level(logging.ERROR):
        assert vapi_number(vapi.ask(call_id="broken")) == ANNA
    failures = [
        r.getMessage() for r in caplog.records if "availability check" in r.getMessage() and r.exc_info
    ]
    # Named by the destination and the check, so the log says which one to fix.
    assert failures and "anna (number +3120****451)" in failures[0] and "free" in failures[0]


class _DeadStore(MemoryStore):
    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        raise OSError("store is down")


def test_a_store_outage_never_turns_a_destination_into_a_refusal(make_app: MakeApp) -> None:
    transfers = hunt_group(store=_DeadStore(), anna={"max_concurrent": 1})
    app, _ = make_app(transfers)
    vapi = Vapi(app.test_client())
    assert [vapi_number(vapi.ask(call_id=f"down-{i}")) for i in range(3)] == [ANNA, ANNA, ANNA]


# sipgate: no transfer feedback, so the first free destination ------------------------------------


def test_sipgate_uses_the_first_free_destination(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    directory(transfers, anna={"available": CLOSED})
    transfers.on_request(lambda call: DestinationChain(["anna", "bram", "desk"]))
    app, _ = make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN)
    sipgate = Sipgate(app.test_client())
    numbers = [
        sipgate.event("user_speak", session_id="s-1", text="a person").get_json()["target_phone_number"]
        for _ in range(2)
    ]
    # Nothing says a sipgate transfer failed: asked again, the session gets the same destination.
    assert numbers == [BRAM, BRAM]


# The chain itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ([[]], {}, ValueError, "at least one destination"),
        ([[42]], {}, TypeError, "not int"),
        ([["anna"]], {"name": ""}, ValueError, "name must be"),
        ([["anna"]], {"message": " "}, ValueError, "message must be"),
        ([["anna"]], {"message": "x" * 1001}, ValueError, "message must be"),
    ],
)
def test_chains_are_checked_when_built(
    args: list[t.Any], kwargs: dict[str, t.Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        DestinationChain(*args, **kwargs)


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2"])
def test_max_concurrent_is_checked(value: t.Any) -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        CallTransfer().add_destination("anna", NumberDestination(ANNA), max_concurrent=value)


def test_an_unknown_name_in_a_chain_is_skipped_and_logged(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: DestinationChain(["nobody", ANNA]))
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK=DESK)
    # A typo in one entry must not keep the caller from the others.
    assert vapi_number(Vapi(app.test_client()).ask(call_id="c-unknown")) == ANNA
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("is skipped" in e and "'nobody'" in e for e in errors)
    # A plain answer naming nobody still goes down the failure path.
    transfers = CallTransfer()
    transfers.add_destination("anna", NumberDestination(ANNA), max_concurrent=1)
    transfers.on_request(lambda call: "nobody")
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK=DESK)
    with testing.record_signals(app) as heard:
        assert vapi_number(Vapi(app.test_client()).ask(call_id="c-plain")) == DESK
    assert [f["stage"] for f in heard.named("transfer-failed")] == ["destination"]


def test_attempts_hold_no_caller_number(make_app: MakeApp) -> None:
    store = MemoryStore()
    transfers = CallTransfer(store=store)
    transfers.on_request(lambda call: DestinationChain([NumberDestination(ANNA), "sip:desk@pbx.example.com"]))
    app, _ = make_app(transfers)
    Vapi(app.test_client()).ask(call_id="c-store", caller="+14155550100")
    kept = json.dumps(store._data)  # noqa: SLF001 - what the store holds, every key and value
    assert "+14155550100" not in kept and "attempts:vapi:c-store" in kept


# The transfer log, stats and the dashboard ---------------------------------------------------------


def test_stats_show_how_often_the_first_choice_failed_and_who_took_the_call(make_app: MakeApp) -> None:
    transfers = hunt_group()
    app, _ = make_app(
        transfers, CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_DASHBOARD_TOKEN="dash-token-0123456789"
    )
    vapi = Vapi(app.test_client())

    def ended(call_id: str, reason: str) -> None:
        vapi.post(testing.vapi_event("status-update", call_id=call_id, status="ended", endedReason=reason))

    vapi.ask(call_id="s-1")
    vapi.ask(call_id="s-1")  # anna failed: bram
    ended("s-1", "assistant-forwarded-call")
    vapi.ask(call_id="s-2")
    ended("s-2", "assistant-forwarded-call")
    for _ in range(3):
        vapi.ask(call_id="s-3")  # nobody left after bram
    result = app.test_cli_runner().invoke(args=["calltransfer", "stats", "--json"])
    failover = json.loads(result.output)["failover"]
    assert failover == {
        "attempts": 5,
        "calls": 3,
        "first_choice_failed": 2,
        "first_choice_failure_rate": 2 / 3,
        "taken_by": {"anna": 1, "bram": 1},
        "not_taken": 1,
    }
    text = app.test_cli_runner().invoke(args=["calltransfer", "stats"]).output
    assert "the first choice failed for 2 (66.7%), 1 taken by nobody" in text and "taken by bram: 1" in text
    page = app.test_client().get(
        "/calltransfer/dashboard", headers={"Authorization": "Bearer dash-token-0123456789"}
    )
    assert page.status_code == 200
    assert "Failover: 3 calls, the first choice failed for\n2 (66.7%)" in page.get_data(as_text=True)


# What an attacker's review found --------------------------------------------------------------------


def test_a_new_tool_call_while_the_next_transfer_rings_starts_no_other(
    voicedock: tuple[Flask, VoiceDock], recorder: Recorder
) -> None:
    app, vd = voicedock
    vd.tool_call("vd-r", "tc-r1")
    vd.status("vd-r", "failed")
    # The assistant asks again while bram rings: told the transfer is under way, nothing sent.
    again = vd.tool_call("vd-r", "tc-r2").get_json()
    assert "already under way" in json.dumps(again)
    assert destinations_sent(recorder) == [ANNA, BRAM]


def test_news_of_an_earlier_vapi_transfer_does_not_settle_the_one_ringing(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    directory(transfers, bram={"max_concurrent": 1})
    transfers.on_request(
        lambda call: "bram" if call.call_id == "other" else DestinationChain(["anna", "bram"])
    )
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="desk")
    vapi = Vapi(app.test_client())
    busy = {"transfers": [{"status": "busy"}]}
    vapi.ask(call_id="c-late")
    assert vapi_number(vapi.ask(call_id="c-late", artifact=busy)) == BRAM
    # A late update still showing one transfer, busy: it is anna's, not bram's.
    vapi.post(testing.vapi_event("status-update", call_id="c-late", status="in-progress", artifact=busy))
    assert vapi_number(vapi.ask(call_id="other")) == DESK  # bram is still on c-late
    with testing.record_signals(app) as heard:
        ended = testing.vapi_event(
            "status-update", call_id="c-late", status="ended", endedReason="assistant-forwarded-call"
        )
        vapi.post(ended)
    assert [(f["outcome"], f["destination"]) for f in heard.named("transfer-finished")] == [
        ("connected", "bram")
    ]


def test_an_outcome_that_says_nothing_keeps_the_place(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    directory(transfers, bram={"max_concurrent": 1})
    transfers.on_request(lambda call: DestinationChain(["bram", "desk"]))
    app, _ = make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN)
    sipgate = Sipgate(app.test_client())

    def target(session: str) -> str:
        return str(
            sipgate.event("user_speak", session_id=session, text="hi").get_json()["target_phone_number"]
        )

    assert target("s-a") == BRAM
    # The session ends once the caller is transferred: bram is talking to them, not free.
    sipgate.event("session_end", session_id="s-a")
    assert target("s-b") == DESK


def test_destinations_that_mask_alike_are_told_apart(make_app: MakeApp) -> None:
    plan = TransferPlan("warm-transfer-say-message", message="A caller for you.")
    first, second = (
        SipDestination(f"sip:{who}@pbx.example.com", transfer_plan=plan) for who in ("anna", "bram")
    )
    assert first.describe() == second.describe()
    transfers = CallTransfer()
    transfers.on_request(lambda call: DestinationChain([first, second]))
    app, _ = make_app(transfers)
    vapi = Vapi(app.test_client())
    sent = [vapi.ask(call_id="c-mask").get_json()["destination"]["sipUri"] for _ in range(2)]
    assert sent == ["sip:anna@pbx.example.com", "sip:bram@pbx.example.com"]


def test_a_call_routed_twice_holds_one_place(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    directory(transfers, anna={"max_concurrent": 1})
    transfers.on_request(lambda call: "anna")
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="desk")
    vapi = Vapi(app.test_client())
    assert [vapi_number(vapi.ask(call_id="c-twice")) for _ in range(2)] == [ANNA, ANNA]
    vapi.post(
        testing.vapi_event(
            "status-update", call_id="c-twice", status="ended", endedReason="call.forwarding.no-answer"
        )
    )
    assert vapi_number(vapi.ask(call_id="c-next")) == ANNA


class _Blip(MemoryStore):
    fail_settle = False

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        if self.fail_settle and key.endswith(":settled"):
            self.fail_settle = False
            raise OSError("connection reset")
        return super().incr(key, amount, ttl=ttl)


def test_news_not_kept_in_a_store_blip_is_heard_when_sent_again(
    make_app: MakeApp, recorder: Recorder
) -> None:
    store = _Blip()
    transfers = hunt_group(store=store)
    app, _ = make_app(
        transfers,
        CALLTRANSFER_STORE_COOLDOWN=0.05,
        **voicedock_config(recorder),
    )
    vd = VoiceDock(app)
    vd.tool_call("vd-blip", "tc-blip")
    store.fail_settle = True
    assert vd.status("vd-blip", "failed").status_code == 200
    assert destinations_sent(recorder) == [ANNA]
    time.sleep(0.1)  # the breaker's cool-down
    assert vd.again().status_code == 200
    assert destinations_sent(recorder) == [ANNA, BRAM]


def test_a_broken_later_entry_is_skipped_on_voicedock_and_event_hooks_still_run(
    make_app: MakeApp, recorder: Recorder
) -> None:
    transfers = CallTransfer()
    directory(transfers)
    transfers.on_request(lambda call: DestinationChain(["anna", "anan", "desk"]))
    hooks: list[str] = []
    transfers.on_event("status-update")(lambda event: hooks.append(event.type))
    app, _ = make_app(
        transfers,
        **voicedock_config(recorder),
    )
    vd = VoiceDock(app)
    vd.tool_call("vd-typo", "tc-typo")
    assert vd.status("vd-typo", "failed").get_json() == {}
    assert destinations_sent(recorder) == [ANNA, DESK] and hooks == ["status-update"]


def test_the_callers_number_is_never_kept_with_the_chain(make_app: MakeApp) -> None:
    from flask_calltransfer.failover import Choice

    store = MemoryStore()
    app, transfers = make_app(CallTransfer(store=store))
    caller = "+31612345678"
    chain = DestinationChain(
        [
            NumberDestination(ANNA, caller_id=caller),
            SipDestination("sip:desk@pbx.example.com", headers={"X-Caller": caller}),
        ]
    )
    failover = app.extensions["calltransfer"].failover
    call = TransferRequest(platform="voicedock", event="tool-calls", call_id="vd-own", caller=caller)
    first = transfers.registry.coerce(chain.destinations[0], None)
    failover.record(call, Choice(first, "k", "anna", None, True), chain, keep_chain=True)
    assert caller not in json.dumps(store._data) and caller[1:] not in json.dumps(store._data)  # noqa: SLF001
    # The worker that sends the next attempt has the caller from the event, and puts it back.
    rebuilt = failover.chain(call)
    assert rebuilt is not None
    assert rebuilt.destinations[0].caller_id == caller
    assert rebuilt.destinations[1].headers == {"X-Caller": caller}
    # Without it, entries that need it are not rebuilt rather than sent wrong.
    nobody = TransferRequest(platform="voicedock", event="status-update", call_id="vd-own")
    assert failover.chain(nobody) is None


@pytest.mark.parametrize(
    ("suffix", "value"), [(":1", "{oops"), (":1", "[1, 2]"), (":n", "many"), (":n", "200000")]
)
def test_store_values_that_are_not_ours_never_cost_the_caller(
    make_app: MakeApp, suffix: str, value: str
) -> None:
    store = MemoryStore()
    transfers = hunt_group(store=store)
    app, _ = make_app(transfers)
    vapi = Vapi(app.test_client())
    vapi.ask(call_id="c-odd")
    store.set("attempts:vapi:c-odd" + suffix, value, ttl=600)
    with testing.record_signals(app) as heard:
        assert vapi_number(vapi.ask(call_id="c-odd")) in (ANNA, BRAM)
    assert heard.named("transfer-failed") == [] and heard.named("transfer-refused") == []


def test_a_chain_is_bounded() -> None:
    with pytest.raises(ValueError, match="at most 20"):
        DestinationChain([f"+3120794{n:04d}" for n in range(21)])


def test_a_place_is_given_back_only_while_it_is_surely_the_calls(make_app: MakeApp) -> None:
    store = MemoryStore()
    old = CallTransfer(store=store)
    directory(old, anna={"max_concurrent": 1})
    old.on_request(lambda call: DestinationChain(["anna", "bram"]))
    # An earlier deploy held places for 5.5 s: with the 5 s margin, a place is its own for 0.5 s.
    old_app, _ = make_app(old, CALLTRANSFER_CAPACITY_HOLD=5.5)
    assert vapi_number(Vapi(old_app.test_client()).ask(call_id="c-old")) == ANNA
    new = CallTransfer(store=store)
    directory(new, anna={"max_concurrent": 1})
    new.on_request(lambda call: DestinationChain(["anna", "bram"]))
    new_app, _ = make_app(new, CALLTRANSFER_CAPACITY_HOLD=1800)
    time.sleep(0.6)
    # The old call's late news, heard by the new deploy, must not free a place another call may
    # hold by now (judged by the hold it was claimed with, not today's).
    Vapi(new_app.test_client()).post(
        testing.vapi_event(
            "status-update", call_id="c-old", status="ended", endedReason="call.forwarding.no-answer"
        )
    )
    assert store.get("capacity:anna:1") is not None


def test_a_call_finishes_once(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    directory(transfers)
    transfers.on_request(lambda call: DestinationChain(["anna"]))
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="desk")
    vapi = Vapi(app.test_client())
    with testing.record_signals(app) as heard:
        for _ in range(4):  # asks on after its chain ran out
            vapi.ask(call_id="c-once")
    assert [f["outcome"] for f in heard.named("transfer-finished")] == ["exhausted"]


def test_an_attempt_record_without_a_time_is_read_as_an_old_one(
    make_app: MakeApp, recorder: Recorder
) -> None:
    store = MemoryStore()
    transfers = hunt_group(store=store)
    app, _ = make_app(transfers, **voicedock_config(recorder))
    vd = VoiceDock(app)
    vd.tool_call("vd-at", "tc-at1")
    record = json.loads(t.cast(str, store.get("attempts:voicedock:vd-at:1")))
    store.set("attempts:voicedock:vd-at:1", json.dumps({**record, "at": "yesterday"}), ttl=600)
    # Not refused as under way, not an internal failure: the silence counts as a failure.
    assert "transferring" in json.dumps(vd.tool_call("vd-at", "tc-at2").get_json())
    assert destinations_sent(recorder) == [ANNA, BRAM]
