"""The store going away, against real parts: Redis and PostgreSQL stopped, paused (SIGSTOP) and
restarted, and the SQLite file locked by another process, made read-only, or on a full file system.

During each fault, every platform still gets a valid answer within its budget that still
transfers: Vapi its destination, a VoiceDock tool call one control request and a reply with its
tool call id, an announced sipgate transfer sent unannounced, a DestinationPool a destination.
Bookkeeping (the transfer log, outcome tracking) is skipped and counted. When the fault ends the
store works again.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import sqlite3
import subprocess
import time
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import DestinationPool
from flask_calltransfer import NumberDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import signals
from flask_calltransfer import testing
from tests.conftest import SECRET
from tests.conftest import TOKEN
from tests.recorder import Recorder
from tests.servers import PostgresCluster
from tests.servers import postgres_cluster
from tests.servers import redis_process
from tests.servers import redis_sentinels
from tests.servers import sqlite_locked

VOICEDOCK_SECRET = "voicedock-webhook-secret"
SALES = "+31207948450"
#: sipgate waits about a second; everything else waits longer.
BUDGET = 1.0

pool = DestinationPool("support", ["+31612345678", "+31687654321"])


def make(store_url: str, recorder: Recorder, instance: pathlib.Path) -> Flask:
    transfers = CallTransfer()
    transfers.add_destination("sales", NumberDestination(SALES, message="Connecting you to sales."))

    @transfers.on_request
    def route(call: TransferRequest) -> t.Any:
        if "support" in call.text:
            return pool.next()
        return "sales"

    app = Flask(__name__, instance_path=str(instance))
    app.config.update(
        CALLTRANSFER_STORE_URL=store_url,
        CALLTRANSFER_VAPI_SECRET=SECRET,
        CALLTRANSFER_SIPGATE_TOKEN=TOKEN,
        CALLTRANSFER_VOICEDOCK_SECRET=VOICEDOCK_SECRET,
        CALLTRANSFER_VOICEDOCK_TOOLS=["transfer_call"],
        CALLTRANSFER_VOICEDOCK_API_KEY="vd-api-key",
        CALLTRANSFER_VOICEDOCK_API_URL=f"{recorder.url}/api/v1",
        CALLTRANSFER_LOG_TRANSFERS=True,
        SECRET_KEY="faults",
    )
    transfers.init_app(app)
    # Outcome tracking is bookkeeping that only runs while someone listens.
    signals.transfer_outcome.connect(lambda *a, **k: None, sender=app, weak=False)
    return app


def timed(func: t.Callable[[], t.Any]) -> tuple[t.Any, float]:
    started = time.monotonic()
    return func(), time.monotonic() - started


def every_platform_still_transfers(app: Flask, recorder: Recorder) -> None:
    client = app.test_client()
    body = testing.dumps(testing.vapi_transfer_request(text="sales please"))
    response, elapsed = timed(
        lambda: client.post("/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers(SECRET))
    )
    assert response.json["destination"]["number"] == SALES
    assert elapsed < BUDGET

    body = testing.dumps(testing.vapi_transfer_request(text="support please"))
    response = client.post("/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers(SECRET))
    assert response.json["destination"]["number"] in pool.destinations

    session = f"s-{time.monotonic_ns()}"
    body = testing.dumps(testing.sipgate_event("user_speak", session_id=session, text="sales please"))
    response, elapsed = timed(
        lambda: client.post("/calltransfer/sipgate", data=body, headers=testing.sipgate_headers(TOKEN))
    )
    # The announcement needs the store to hand over later: the transfer goes now instead.
    assert response.json["type"] == "transfer"
    assert response.json["target_phone_number"] == SALES
    assert elapsed < BUDGET

    call_id = f"vd-{time.monotonic_ns()}"
    tool_call_id = f"tool_{time.monotonic_ns()}"
    body = testing.dumps(
        testing.voicedock_tool_calls("transfer_call", {}, tool_call_id=tool_call_id, call_id=call_id)
    )
    headers = testing.voicedock_headers(body, VOICEDOCK_SECRET)
    response, elapsed = timed(lambda: client.post("/calltransfer/voicedock", data=body, headers=headers))
    assert response.json["results"] == [{"tool_call_id": tool_call_id, "result": {"status": "transferring"}}]
    assert elapsed < BUDGET
    # A repeat to the same worker while the store is down is not sent again.
    again = client.post("/calltransfer/voicedock", data=body, headers=headers)
    assert again.json["results"][0]["tool_call_id"] == tool_call_id
    assert len(recorder.to(f"/api/v1/calls/{call_id}/control")) == 1


def the_store_works(app: Flask) -> None:
    """Announce-then-transfer needs the store: it works only when the store does."""
    client = app.test_client()
    session = f"s-{time.monotonic_ns()}"
    headers = testing.sipgate_headers(TOKEN)
    give_up = time.monotonic() + 5
    while True:
        body = testing.dumps(testing.sipgate_event("user_speak", session_id=session, text="sales please"))
        first = client.post("/calltransfer/sipgate", data=body, headers=headers)
        if first.json["type"] == "speak":
            break
        assert time.monotonic() < give_up, "the store did not come back"
        time.sleep(0.2)
    body = testing.dumps(testing.sipgate_event("assistant_speech_ended", session_id=session))
    assert client.post("/calltransfer/sipgate", data=body, headers=headers).json["type"] == "transfer"


def faults_counted(app: Flask) -> int:
    return sum(app.extensions["calltransfer"].services.store.faults.values())


# Redis --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["stopped", "paused"])
def test_redis_going_away(fault: str, recorder: Recorder, tmp_path: pathlib.Path) -> None:
    with redis_process() as (url, process):
        app = make(url, recorder, tmp_path)
        the_store_works(app)
        if fault == "stopped":
            process.terminate()
            process.wait(timeout=10)
        else:
            process.send_signal(signal.SIGSTOP)
        try:
            every_platform_still_transfers(app, recorder)
        finally:
            process.send_signal(signal.SIGCONT)
        assert faults_counted(app) > 0
        if fault == "paused":
            the_store_works(app)


def test_redis_restarted(recorder: Recorder, tmp_path: pathlib.Path) -> None:
    with redis_process() as (url, process):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        app = make(url, recorder, tmp_path)
        the_store_works(app)
        process.terminate()
        process.wait(timeout=10)
        every_platform_still_transfers(app, recorder)
    with redis_process(port):
        the_store_works(app)


def answers_stay_valid(app: Flask, recorder: Recorder) -> None:
    """One round of every platform with the store in any state (working, failing, coming back):
    each answer valid and in time, each tool call delivered once."""
    client = app.test_client()
    body = testing.dumps(testing.vapi_transfer_request(text="sales please"))
    response, elapsed = timed(
        lambda: client.post("/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers(SECRET))
    )
    assert response.json["destination"]["number"] == SALES and elapsed < BUDGET
    session = f"s-{time.monotonic_ns()}"
    body = testing.dumps(testing.sipgate_event("user_speak", session_id=session, text="sales please"))
    response, elapsed = timed(
        lambda: client.post("/calltransfer/sipgate", data=body, headers=testing.sipgate_headers(TOKEN))
    )
    assert response.json["type"] in ("speak", "transfer") and elapsed < BUDGET
    if response.json["type"] == "transfer":
        assert response.json["target_phone_number"] == SALES
    call_id, tool_call_id = f"vd-{time.monotonic_ns()}", f"tool_{time.monotonic_ns()}"
    body = testing.dumps(
        testing.voicedock_tool_calls("transfer_call", {}, tool_call_id=tool_call_id, call_id=call_id)
    )
    headers = testing.voicedock_headers(body, VOICEDOCK_SECRET)
    response, elapsed = timed(lambda: client.post("/calltransfer/voicedock", data=body, headers=headers))
    assert response.json["results"][0]["tool_call_id"] == tool_call_id and elapsed < BUDGET
    assert len(recorder.to(f"/api/v1/calls/{call_id}/control")) == 1


def test_redis_primary_killed_with_sentinels_watching(recorder: Recorder, tmp_path: pathlib.Path) -> None:
    with redis_sentinels() as sentinels:
        app = make(sentinels.url, recorder, tmp_path)
        the_store_works(app)
        old = sentinels.kill_primary()
        rounds = 0
        # Through the whole failover (the sentinels notice in half a second, then elect and
        # promote), and a moment after it.
        settled: float | None = None
        give_up = time.monotonic() + 30
        while settled is None or time.monotonic() < settled + 1.5:
            answers_stay_valid(app, recorder)
            rounds += 1
            if settled is None and sentinels.primary_port() not in (None, old):
                settled = time.monotonic()
            assert time.monotonic() < give_up, "the sentinels did not promote the replica"
        assert rounds >= 3 and faults_counted(app) > 0
        the_store_works(app)  # on the new primary, without restarting the app


# PostgreSQL ---------------------------------------------------------------------------------------


def _postgres_app(cluster: PostgresCluster, recorder: Recorder, tmp_path: pathlib.Path) -> Flask:
    from flask_calltransfer.store.postgres import create_tables

    app = make(cluster.url, recorder, tmp_path)
    with app.app_context():
        create_tables(app.extensions["calltransfer"].services.store.engine)
    return app


@pytest.mark.parametrize("fault", ["stopped", "paused"])
def test_postgres_going_away(fault: str, recorder: Recorder, tmp_path: pathlib.Path) -> None:
    with postgres_cluster() as cluster:
        app = _postgres_app(cluster, recorder, tmp_path)
        the_store_works(app)
        # Paused, the server and every backend stop answering, sockets open: only the store's own
        # bound on each wait (and on each new connection) keeps a webhook inside its budget.
        if fault == "stopped":
            cluster.stop()
        else:
            cluster.pause()
        try:
            every_platform_still_transfers(app, recorder)
            # Past the breaker's cool-down the store is tried again, and still answers in time.
            time.sleep(app.extensions["calltransfer"].services.store.cooldown + 0.1)
            every_platform_still_transfers(app, recorder)
        finally:
            if fault == "paused":
                cluster.resume()
        assert faults_counted(app) > 0
        if fault == "stopped":
            cluster.start()
        the_store_works(app)
        app.extensions["calltransfer"].services.store.close()


# SQLite -------------------------------------------------------------------------------------------


def test_sqlite_locked_by_another_process(recorder: Recorder, tmp_path: pathlib.Path) -> None:
    app = make("sqlite:///calltransfer.sqlite3", recorder, tmp_path)
    the_store_works(app)
    with sqlite_locked(tmp_path / "calltransfer.sqlite3"):
        every_platform_still_transfers(app, recorder)
    assert faults_counted(app) > 0
    the_store_works(app)


@contextlib.contextmanager
def small_filesystem(path: pathlib.Path, size: str) -> t.Iterator[bool]:
    """A tmpfs of ``size`` at ``path``; yields whether it is one (mounting needs root)."""
    path.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=True)


def test_sqlite_read_only(recorder: Recorder, tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "store"
    with small_filesystem(folder, "4m") as mounted:
        app = make(f"sqlite:///{folder}/calltransfer.sqlite3", recorder, tmp_path)
        the_store_works(app)
        # A file system with files open for writing cannot become read-only: the store reopens.
        app.extensions["calltransfer"].services.store.close()
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:
            for name in os.listdir(folder):
                os.chmod(folder / name, 0o444)
            os.chmod(folder, 0o555)
        every_platform_still_transfers(app, recorder)
        assert faults_counted(app) > 0
        app.extensions["calltransfer"].services.store.close()
        if mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        else:
            os.chmod(folder, 0o755)
            for name in os.listdir(folder):
                os.chmod(folder / name, 0o644)
        the_store_works(app)


def test_sqlite_on_a_full_filesystem(recorder: Recorder, tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "store"
    with small_filesystem(folder, "1m") as mounted:
        if not mounted:
            pytest.skip("A full file system needs a tmpfs mount, which needs root; make test runs as root.")
        app = make(f"sqlite:///{folder}/calltransfer.sqlite3", recorder, tmp_path)
        the_store_works(app)
        # Fill what is left, then grow the database until it cannot grow.
        with contextlib.suppress(OSError), open(folder / "filler", "wb") as filler:
            while True:
                filler.write(b"\\0" * 4096)
                filler.flush()
        with contextlib.suppress(sqlite3.Error):
            connection = sqlite3.connect(folder / "calltransfer.sqlite3")
            for number in range(100_000):
                connection.execute(
                    "INSERT INTO calltransfer_kv VALUES (?, ?, NULL)", (f"pad:{number}", "x" * 1000)
                )
                connection.commit()
        every_platform_still_transfers(app, recorder)
        assert faults_counted(app) > 0
        (folder / "filler").unlink()
        the_store_works(app)


def test_a_paused_redis_costs_no_more_than_the_deadline_left(tmp_path: pathlib.Path) -> None:
    from flask_calltransfer import StoreUnavailable
    from flask_calltransfer.deadlines import call_with_deadline
    from flask_calltransfer.store import from_url

    with redis_process() as (url, process):
        store = from_url(url, instance_path=str(tmp_path), timeout=0.25)
        store.set("k", "v")
        process.send_signal(signal.SIGSTOP)
        try:

            def late_in_the_deadline() -> float:
                time.sleep(0.35)  # 0.15 s of the deadline left: less than the store's 0.25 s
                started = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    store.get("k")
                return time.monotonic() - started

            waited = call_with_deadline(late_in_the_deadline, 0.5, method="thread")
        except BaseException:
            process.send_signal(signal.SIGCONT)
            raise
        process.send_signal(signal.SIGCONT)
        assert waited < 0.2
        # Outside a deadline the store's own timeout applies, and it works again once resumed.
        store._breaker.clear()
        assert store.get("k") == "v"
        store.close()


def test_a_tool_call_claimed_during_an_outage_is_not_sent_again_after_it(
    recorder: Recorder, tmp_path: pathlib.Path
) -> None:
    app = make("sqlite:///calltransfer.sqlite3", recorder, tmp_path)
    the_store_works(app)
    client = app.test_client()
    body = testing.dumps(
        testing.voicedock_tool_calls("transfer_call", {}, tool_call_id="tool_o", call_id="vd-o")
    )
    headers = testing.voicedock_headers(body, VOICEDOCK_SECRET)
    with sqlite_locked(tmp_path / "calltransfer.sqlite3"):
        assert client.post("/calltransfer/voicedock", data=body, headers=headers).status_code == 200
    time.sleep(1.1)  # the breaker's cool-down
    the_store_works(app)
    again = client.post("/calltransfer/voicedock", data=body, headers=headers)
    assert again.json["results"][0]["tool_call_id"] == "tool_o"
    assert len(recorder.to("/api/v1/calls/vd-o/control")) == 1


def test_a_store_that_fails_in_any_way_still_lets_every_platform_transfer(
    recorder: Recorder, tmp_path: pathlib.Path
) -> None:
    # Not an outage error: a value the backend cannot hold, or a bug in a custom store.
    from flask_calltransfer.store import MemoryStore

    class Broken(MemoryStore):
        def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

        def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
            raise ValueError("WRONGTYPE Operation against a key holding the wrong kind of value")

    app = make("memory://", recorder, tmp_path)
    app.extensions["calltransfer"].services.store.__class__ = Broken
    every_platform_still_transfers(app, recorder)
    assert app.extensions["calltransfer"].services.store.faults["error: set"] > 0
