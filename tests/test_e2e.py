"""End to end over Vapi: the example app under a real gunicorn on a loopback port."""

from __future__ import annotations

import http.client
import json
import time
import typing as t

import pytest

from flask_calltransfer import testing
from tests.servers import ROOT
from tests.servers import gunicorn

SECRET = "e2e-secret-0123456789"
HMAC_SECRET = "e2e-hmac-secret"


@pytest.fixture(scope="module")
def server() -> t.Iterator[tuple[str, int]]:
    env = {
        "CALLTRANSFER_VAPI_SECRET": SECRET,
        "CALLTRANSFER_VAPI_HMAC_SECRET": HMAC_SECRET,
        "CALLTRANSFER_MAX_BODY_BYTES": "65536",
        "CALLTRANSFER_STORE_URL": "memory://",
        "CALLTRANSFER_HANDLER_TIMEOUT": '{"vapi": 0.5}',
    }
    with gunicorn("tests.e2e_app:create_app()", env=env) as address:
        yield address


def request(
    server: tuple[str, int], body: bytes, headers: dict[str, str], *, chunked: bool = False
) -> tuple[int, t.Any]:
    connection = http.client.HTTPConnection(*server, timeout=10)
    try:
        if chunked:
            connection.putrequest("POST", "/calltransfer/vapi")
            for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
                connection.putheader(name, value)
            connection.endheaders()
            try:
                for start in range(0, len(body), 8192):
                    piece = body[start : start + 8192]
                    connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                connection.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer 413 and close before the whole body is sent.
                pass
        else:
            connection.request("POST", "/calltransfer/vapi", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        connection.close()


def test_signed_request_gets_the_sales_destination(server: tuple[str, int]) -> None:
    body = (ROOT / "tests/payloads/vapi_wrapped_sales.json").read_bytes()
    status, reply = request(server, body, testing.vapi_secret_headers(SECRET))
    assert status == 200
    assert reply == {
        "destination": {
            "type": "number",
            "number": "+31207948450",
            "numberE164CheckEnabled": True,
            "message": "Connecting you to sales.",
            "description": "Pricing and quotes",
        }
    }


def test_hmac_signed_request_and_vip_routing(server: tuple[str, int]) -> None:
    body = testing.dumps(testing.vapi_transfer_request(caller="+31612345678", text="hello"))
    status, reply = request(server, body, testing.vapi_hmac_headers(body, HMAC_SECRET))
    assert status == 200
    assert reply["destination"]["type"] == "sip"
    assert reply["destination"]["sipHeaders"] == {"X-Account": "ACME-0042"}


def test_fallback_and_refusal_over_http(server: tuple[str, int]) -> None:
    body = testing.dumps(testing.vapi_transfer_request(text="what's the weather"))
    status, reply = request(server, body, testing.vapi_bearer_headers(SECRET))
    assert (status, reply["destination"]["number"]) == (200, "+31207948400")  # the reception fallback
    body = testing.dumps(testing.vapi_transfer_request(text="I have a complaint"))
    status, reply = request(server, body, testing.vapi_secret_headers(SECRET))
    assert status == 200 and reply["error"].startswith("I'm sorry, complaints")


def test_bad_secret_and_bad_json(server: tuple[str, int]) -> None:
    body = testing.dumps(testing.vapi_transfer_request())
    status, reply = request(server, body, testing.vapi_secret_headers("wrong"))
    assert (status, reply["code"]) == (401, 401)
    status, reply = request(server, b"{", testing.vapi_secret_headers(SECRET))
    assert (status, reply["code"]) == (400, 400)


def test_oversized_chunked_body_is_413(server: tuple[str, int]) -> None:
    body = testing.dumps(testing.vapi_transfer_request(text="x" * 100_000))
    status, reply = request(server, body, testing.vapi_secret_headers(SECRET), chunked=True)
    assert (status, reply["code"]) == (413, 413)
    small = testing.dumps(testing.vapi_transfer_request(text="sales"))
    status, reply = request(server, small, testing.vapi_secret_headers(SECRET), chunked=True)
    assert (status, reply["destination"]["number"]) == (200, "+31207948450")


def test_a_declared_length_is_held_to_the_limit_under_gunicorn(server: tuple[str, int]) -> None:
    # gunicorn ends the stream itself, so the view reads the Content-Length from the environ and
    # reads the body directly: one byte over the limit is refused, one at the limit is routed.
    def padded(size: int) -> bytes:
        payload = testing.vapi_transfer_request(text="sales")
        payload["message"]["padding"] = ""
        payload["message"]["padding"] = " " * (size - len(testing.dumps(payload)))
        body = testing.dumps(payload)
        assert len(body) == size
        return body

    status, reply = request(server, padded(65_537), testing.vapi_secret_headers(SECRET))
    assert (status, reply["code"]) == (413, 413)
    at = padded(65_536)
    status, reply = request(server, at, testing.vapi_secret_headers(SECRET))
    assert (status, reply["destination"]["number"]) == (200, "+31207948450")


def test_a_handler_that_never_returns_still_gets_an_answer(server: tuple[str, int]) -> None:
    body = testing.dumps(testing.vapi_transfer_request(text="please hang on"))
    started = time.monotonic()
    status, reply = request(server, body, testing.vapi_secret_headers(SECRET))
    elapsed = time.monotonic() - started
    assert (status, reply["destination"]["number"]) == (200, "+31207948400")  # the reception fallback
    assert elapsed < 0.5 + 0.5
    # The worker is free again afterwards.
    status, reply = request(
        server,
        testing.dumps(testing.vapi_transfer_request(text="sales")),
        testing.vapi_secret_headers(SECRET),
    )
    assert reply["destination"]["number"] == "+31207948450"


def test_a_handler_holding_the_gil_is_bounded_by_the_shipped_worker_timeout() -> None:
    # The shipped config ties gunicorn's timeout to the platforms' budgets (21 s); 2 s here keeps
    # the test short. Nothing in Python can interrupt sum() over a range: gunicorn ends the worker, the
    # caller of that one request gets no answer, and the next webhook is answered by a new worker.
    env = {"CALLTRANSFER_VAPI_SECRET": SECRET, "CALLTRANSFER_STORE_URL": "memory://", "GUNICORN_TIMEOUT": "2"}
    with gunicorn("tests.e2e_app:create_app()", env=env, workers=1) as address:
        body = testing.dumps(testing.vapi_transfer_request(text="crunch the numbers"))
        started = time.monotonic()
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            request(address, body, testing.vapi_secret_headers(SECRET))
        assert time.monotonic() - started < 2 + 3
        sales = testing.dumps(testing.vapi_transfer_request(text="sales"))
        deadline = time.monotonic() + 10
        while True:
            try:
                status, reply = request(address, sales, testing.vapi_secret_headers(SECRET))
                break
            except ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert (status, reply["destination"]["number"]) == (200, "+31207948450")


def test_the_shipped_worker_timeout_follows_the_platforms_budgets() -> None:
    from flask_calltransfer.platforms import BUILTIN_PLATFORMS
    from flask_calltransfer.platforms import worker_timeout

    budgets = {name: cls.reply_budget for name, cls in BUILTIN_PLATFORMS.items()}
    assert budgets == {"vapi": 20.0, "sipgate": 1.0, "voicedock": 10.0}
    assert all(cls.handler_timeout < cls.reply_budget for cls in BUILTIN_PLATFORMS.values())
    assert worker_timeout() == 21
    namespace: dict[str, t.Any] = {}
    exec((ROOT / "example_app/gunicorn.conf.py").read_text(), namespace)
    assert namespace["timeout"] == 21
