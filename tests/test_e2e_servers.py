"""Handlers in their request's own thread and context, under every server Flask users run.

A flaskr-shaped app (tests/e2e_flaskr.py) is served by ``flask run`` (threaded), gunicorn's sync,
gthread and gevent workers, and waitress. On each: the tutorial's ``get_db()`` with its teardown
and a Flask-SQLAlchemy session work inside handlers; a raising handler, a sleeping one and a
spinning one get the fallback; a store write that waits on another process's SQLite lock past the
deadline gets the fallback, and the store works again right after.
"""

from __future__ import annotations

import http.client
import json
import pathlib
import time
import typing as t

import pytest

from flask_calltransfer import testing
from tests import e2e_flaskr as flaskr
from tests.servers import SERVER_KINDS
from tests.servers import serve
from tests.servers import sqlite_locked

SECRET = "e2e-servers-secret-0123456789"
TIMEOUT = 0.5
SLOW = 1.5
#: Where a handler blocked in C (time.sleep) can be interrupted at its deadline: the main thread's
#: timer and gevent's hub can; a watchdog can reach another thread only when it is back in Python.
INTERRUPTS_SLEEP = {"gunicorn-sync", "gunicorn-gevent"}
#: Where a handler spinning in Python can be interrupted: everywhere but gevent, whose hub runs
#: only when the greenlet yields.
INTERRUPTS_SPIN = {"flask-run", "gunicorn-sync", "gunicorn-gthread", "waitress"}
MARGIN = 0.5


class Server(t.NamedTuple):
    kind: str
    address: tuple[str, int]
    instance: pathlib.Path


@pytest.fixture(scope="module", params=SERVER_KINDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Server]:
    instance = tmp_path_factory.mktemp(request.param)
    env = {
        "E2E_INSTANCE": str(instance),
        "E2E_SECRET": SECRET,
        "E2E_TIMEOUT": str(TIMEOUT),
        "E2E_SLOW_SECONDS": str(SLOW),
    }
    with serve(request.param, "tests.e2e_flaskr", "create_app", env=env) as address:
        yield Server(request.param, address, instance)


def ask(server: Server, text: str) -> tuple[int, t.Any, float]:
    body = testing.dumps(testing.vapi_transfer_request(text=text, caller=flaskr.VIP_CALLER))
    connection = http.client.HTTPConnection(*server.address, timeout=20)
    started = time.monotonic()
    try:
        connection.request(
            "POST", "/calltransfer/vapi", body=body, headers=testing.vapi_secret_headers(SECRET)
        )
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return response.status, json.loads(data) if data else None, time.monotonic() - started


def number(reply: t.Any) -> str:
    return str(reply["destination"]["number"])


def test_get_db_in_g_with_its_teardown(server: Server) -> None:
    status, reply, _ = ask(server, "vip please")
    assert status == 200
    assert number(reply) == flaskr.VIP_NUMBER
    log = (server.instance / "teardown.log").read_text().splitlines()
    assert log and set(log) == {"closed same-thread"}


def test_flask_sqlalchemy_session(server: Server) -> None:
    status, reply, _ = ask(server, "orm please")
    assert (status, number(reply)) == (200, flaskr.ORM_NUMBER)


def test_a_raising_handler_gets_the_fallback(server: Server) -> None:
    status, reply, _ = ask(server, "raise please")
    assert (status, number(reply)) == (200, flaskr.FALLBACK)


@pytest.mark.parametrize(("how", "interrupted_on"), [("sleep", INTERRUPTS_SLEEP), ("spin", INTERRUPTS_SPIN)])
def test_a_slow_handler_gets_the_fallback(server: Server, how: str, interrupted_on: set[str]) -> None:
    status, reply, elapsed = ask(server, f"{how} please")
    assert (status, number(reply)) == (200, flaskr.FALLBACK)
    if server.kind in interrupted_on:
        assert elapsed < TIMEOUT + MARGIN
    else:
        # Answered as soon as the handler is back, with the failure path, never its late answer.
        assert SLOW <= elapsed < SLOW + MARGIN


def writes(server: Server) -> int:
    connection = http.client.HTTPConnection(*server.address, timeout=10)
    try:
        connection.request("GET", "/store-writes")
        return int(json.loads(connection.getresponse().read())["writes"])
    finally:
        connection.close()


def test_a_store_write_behind_another_process_lock(server: Server) -> None:
    status, reply, _ = ask(server, "store please")
    assert (status, number(reply)) == (200, flaskr.STORE_NUMBER)
    before = writes(server)
    store = server.instance / "calltransfer.sqlite3"
    with sqlite_locked(store):
        status, reply, elapsed = ask(server, "store please")
        # The write gave up after the store's timeout (0.25 s) and rolled back; the handler's
        # StoreUnavailable sent the call to the fallback, well inside the deadline.
        assert (status, number(reply)) == (200, flaskr.FALLBACK)
        assert elapsed < TIMEOUT + MARGIN
    assert writes(server) == before
    # No transaction was left open: once the lock is gone (and the breaker's second has passed),
    # writes work again, and so do another process's.
    give_up = time.monotonic() + 5
    while True:
        status, reply, elapsed = ask(server, "store please")
        if number(reply) == flaskr.STORE_NUMBER:
            break
        assert time.monotonic() < give_up, "the store did not come back"
        time.sleep(0.2)
    assert elapsed < TIMEOUT
    assert writes(server) == before + 1
    with sqlite_locked(store):
        pass
