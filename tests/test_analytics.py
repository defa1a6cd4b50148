"""The transfer log and flask calltransfer stats."""

from __future__ import annotations

import json
import time

import pytest

from flask_calltransfer import CallTransfer
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse
from flask_calltransfer import testing
from flask_calltransfer.analytics import TransferLog
from flask_calltransfer.analytics import stats
from flask_calltransfer.store import MemoryStore
from tests.conftest import MakeApp
from tests.conftest import Vapi


def busy_line(make_app: MakeApp, **config: object) -> tuple[object, Vapi]:
    transfers = CallTransfer()

    @transfers.on_request
    def route(call: TransferRequest) -> str | None:
        if "closed" in call.text:
            refuse("Closed.")
        if "crash" in call.text:
            raise RuntimeError("bug")
        return "+31207948450" if "sales" in call.text else "+31207948451"

    app, _ = make_app(transfers, CALLTRANSFER_LOG_TRANSFERS=True, SECRET_KEY="k", **config)
    return app, Vapi(app.test_client())


def test_log_records_decisions_and_outcomes(make_app: MakeApp) -> None:
    app, vapi = busy_line(make_app)
    for index, text in enumerate(["sales", "sales", "billing", "closed", "crash"]):
        vapi.ask(text=text, call_id=f"c{index}", caller="+31612345678")
    vapi.post(
        testing.vapi_event(
            "status-update", call_id="c0", status="ended", endedReason="assistant-forwarded-call"
        )
    )
    vapi.post(
        testing.vapi_event(
            "status-update", call_id="c1", status="ended", endedReason="call.forwarding.operator-busy"
        )
    )
    log = app.extensions["calltransfer"].transfer_log
    with app.app_context():
        records = log.records()
    assert [r["kind"] for r in records] == [
        "resolved",
        "resolved",
        "resolved",
        "refused",
        "failed",
        "refused",
        "outcome",
        "outcome",
    ]
    assert all(r.get("caller") in (None, "+3161****678") for r in records)
    figures = stats(records)
    assert figures["requests"] == 5 and figures["transferred"] == 3 and figures["refused"] == 2
    assert figures["refusal_rate"] == pytest.approx(0.4)
    assert figures["failures_by_stage"] == {"handler": 1}
    assert figures["by_destination"] == {"number +3120****450": 2, "number +3120****451": 1}
    assert figures["outcomes"] == {"connected": 1, "busy": 1}
    assert set(figures["latency_ms"]) == {"p50", "p90", "p99", "mean"}


def test_callers_can_be_hashed() -> None:
    log = TransferLog(MemoryStore(), retention=60, callers="hash", salt="k")
    assert log.caller("+31612345678") == log.caller("+31612345678") != log.caller("+31612345679")
    assert log.caller("+31612345678").startswith("h:") and "3161" not in log.caller("+31612345678")


def test_retention_expires_records() -> None:
    now = [1000.0]
    log = TransferLog(MemoryStore(clock=lambda: now[0]), retention=60)
    log.add({"kind": "refused", "at": 1})
    now[0] += 61
    log.add({"kind": "refused", "at": 2})
    assert [r["at"] for r in log.records()] == [2]


def test_stats_command(make_app: MakeApp) -> None:
    app, vapi = busy_line(make_app, CALLTRANSFER_LOG_CALLERS="hash")
    vapi.ask(text="sales")
    vapi.ask(text="closed")
    result = app.test_cli_runner().invoke(args=["calltransfer", "stats", "--since", "1h"])  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    assert "Transfer requests in the last 1h: 2" in result.output
    assert "refused 1 (50.0%)" in result.output
    assert "number +3120****450: 1" in result.output
    result = app.test_cli_runner().invoke(args=["calltransfer", "stats", "--json"])  # type: ignore[attr-defined]
    assert json.loads(result.output)["requests"] == 2
    result = app.test_cli_runner().invoke(args=["calltransfer", "stats", "--since", "soon"])  # type: ignore[attr-defined]
    assert result.exit_code != 0 and "not a period" in result.output


def test_stats_needs_the_log(make_app: MakeApp) -> None:
    app, _ = make_app()
    result = app.test_cli_runner().invoke(args=["calltransfer", "stats"])
    assert result.exit_code == 1 and "CALLTRANSFER_LOG_TRANSFERS" in result.output


def test_records_since(make_app: MakeApp) -> None:
    log = TransferLog(MemoryStore(), retention=3600)
    log.add({"kind": "refused", "at": time.time() - 7200})
    log.add({"kind": "refused"})
    assert len(log.records(since=time.time() - 3600)) == 1


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str) -> str | None:
        self.reads += 1
        return super().get(key)

    def counts(self, key: str) -> dict[str, int]:
        self.reads += 1
        return super().counts(key)


def test_a_dashboard_view_reads_the_same_whatever_the_number_of_records() -> None:
    reads = []
    for number in (300, 3000):
        store = CountingStore()
        log = TransferLog(store, retention=30 * 86400)
        now = time.time()
        expected: dict[str, int] = {"vapi": 0, "sipgate": 0}
        for index in range(number):
            at = now - (index % 48) * 3600
            if index % 3:
                log.add({"kind": "resolved", "platform": "vapi", "destination": "sales", "ms": 1.0, "at": at})
                expected["vapi"] += 1
            else:
                log.add({"kind": "refused", "platform": "sipgate", "at": at})
                expected["sipgate"] += 1
        store.reads = 0
        figures = log.figures(since=now - 7 * 86400, now=now)
        reads.append(store.reads)
        assert figures["requests"] == number and figures["by_platform"] == expected
    assert reads[0] == reads[1] == 7 * 24 + 1


def test_hourly_figures_match_the_records(make_app: MakeApp) -> None:
    app, vapi = busy_line(make_app)
    for index, text in enumerate(["sales", "sales", "billing", "closed", "crash"] * 3):
        vapi.ask(text=text, call_id=f"c{index}", caller="+31612345678")
    log = app.extensions["calltransfer"].transfer_log
    with app.app_context():
        exact = stats(log.records())
        hourly = log.figures(since=time.time() - 3600)
    assert hourly == exact and exact["requests"] == 15 and exact["failures_by_stage"] == {"handler": 3}


def test_latency_percentiles_are_within_five_percent() -> None:
    records = [{"kind": "resolved", "ms": ms / 10} for ms in range(1, 2001)]
    figures = stats(records)["latency_ms"]
    assert figures["p50"] == pytest.approx(100.0, rel=0.05)
    assert figures["p90"] == pytest.approx(180.0, rel=0.05)
    assert figures["p99"] == pytest.approx(198.0, rel=0.05)
    assert figures["mean"] == pytest.approx(100.05, rel=1e-6)
