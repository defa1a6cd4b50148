"""The jambonz adapter under a real gunicorn with the shipped config, over real HTTP."""

from __future__ import annotations

import http.client
import json
import pathlib
import typing as t

import pytest
from jambonz_support import JSON_HEADERS
from jambonz_support import SECRET
from jambonz_support import call_hook
from jambonz_support import encode
from jambonz_support import gather
from jambonz_support import signed

from tests.servers import ROOT
from tests.servers import gunicorn

HERE = pathlib.Path(__file__).resolve().parent
PATH = "/calltransfer/jambonz"


@pytest.fixture(scope="module")
def server() -> t.Iterator[tuple[str, int]]:
    env = {
        "PYTHONPATH": f"{HERE}:{ROOT}",
        "CALLTRANSFER_JAMBONZ_SECRET": SECRET,
        "CALLTRANSFER_JAMBONZ_CALLER_NAME": "Acme Support",
        "CALLTRANSFER_STORE_URL": "memory://",
    }
    with gunicorn("jambonz_app:create_app()", env=env, workers=1) as address:
        yield address


def send(server: tuple[str, int], body: bytes, headers: dict[str, str]) -> tuple[int, str, t.Any]:
    connection = http.client.HTTPConnection(*server, timeout=10)
    try:
        connection.request("POST", PATH, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, response.getheader("Content-Type", ""), json.loads(data) if data else None
    finally:
        connection.close()


def test_a_signed_call_hook_is_answered_with_verbs(server: tuple[str, int]) -> None:
    body = encode(call_hook())
    status, content_type, answer = send(server, body, signed(body))
    host, port = server
    assert (status, content_type) == (200, "application/json")
    assert answer == [
        {"verb": "say", "text": "Connecting you now."},
        {
            "verb": "dial",
            "target": [{"type": "phone", "number": "+31207948450"}],
            "callerName": "Acme Support",
            "actionHook": f"http://{host}:{port}{PATH}",
        },
    ]


def test_a_signed_gather_is_answered_with_verbs(server: tuple[str, int]) -> None:
    body = encode(gather("Sales, please."))
    status, _, answer = send(server, body, signed(body))
    host, port = server
    assert status == 200
    assert answer == [
        {
            "verb": "dial",
            "target": [{"type": "sip", "sipUri": "sip:sales@pbx.example.com"}],
            "callerName": "Acme Support",
            "headers": {"X-Desk": "sales"},
            "actionHook": f"http://{host}:{port}{PATH}",
        }
    ]
    body = encode(gather("Opening hours?", call_sid="c-hours"))
    assert send(server, body, signed(body))[2] == [
        {"verb": "say", "text": "Sorry, I can only put you through to sales."}
    ]


def test_an_unsigned_hook_is_401(server: tuple[str, int]) -> None:
    body = encode(gather("Sales, please.", call_sid="c-unsigned"))
    status, _, _ = send(server, body, dict(JSON_HEADERS))
    assert status == 401
    wrong = signed(body, "wh_secret_not_ours")
    assert send(server, body, wrong)[0] == 401
