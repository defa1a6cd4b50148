"""The Twilio adapter, installed as its own distribution, under gunicorn with the shipped config:
signed hand-offs over real HTTP on loopback."""

from __future__ import annotations

import http.client
import pathlib
import typing as t

import pytest
from twilio_support import FORM
from twilio_support import TOKEN
from twilio_support import encode
from twilio_support import fields
from twilio_support import handoff
from twilio_support import signed

from tests.servers import gunicorn

HERE = pathlib.Path(__file__).resolve().parent
PUBLIC = "https://calls.example.com"


@pytest.fixture(scope="module")
def server() -> t.Iterator[tuple[str, int]]:
    env = {
        "PYTHONPATH": str(HERE),
        "CALLTRANSFER_TWILIO_AUTH_TOKEN": TOKEN,
        "CALLTRANSFER_TWILIO_PUBLIC_URL": PUBLIC,
        "CALLTRANSFER_PLATFORMS": '["twilio"]',
        "CALLTRANSFER_STORE_URL": "memory://",
    }
    with gunicorn("twilio_app:create_app()", env=env) as address:
        yield address


def post(server: tuple[str, int], body: bytes, headers: dict[str, str]) -> tuple[int, str, str]:
    connection = http.client.HTTPConnection(*server, timeout=10)
    try:
        connection.request("POST", "/calltransfer/twilio", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode()
    finally:
        connection.close()


def test_a_signed_handoff_is_dialled(server: tuple[str, int]) -> None:
    body = encode(handoff("Sales, please."))
    status, content_type, twiml = post(server, body, signed(body, PUBLIC + "/calltransfer/twilio"))
    assert (status, content_type) == (200, "text/xml; charset=utf-8")
    assert twiml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Connecting you to sales.</Say>'
        '<Dial action="https://calls.example.com/calltransfer/twilio" method="POST">'
        "<Number>+31207948450</Number></Dial></Response>"
    )


def test_a_signed_voice_call_reaches_sip(server: tuple[str, int]) -> None:
    body = encode(fields())
    status, _, twiml = post(server, body, signed(body, PUBLIC + "/calltransfer/twilio"))
    assert status == 200 and "<Sip>sip:desk@pbx.example.com</Sip>" in twiml


def test_a_refusal_is_said(server: tuple[str, int]) -> None:
    body = encode(handoff("I have a question."))
    _, _, twiml = post(server, body, signed(body, PUBLIC + "/calltransfer/twilio"))
    assert "<Say>Nobody can take your call right now.</Say><Hangup /></Response>" in twiml


def test_a_request_signed_for_the_inner_url_or_not_at_all_is_refused(server: tuple[str, int]) -> None:
    body = encode(handoff("Sales, please."))
    host, port = server
    assert post(server, body, signed(body, f"http://{host}:{port}/calltransfer/twilio"))[0] == 401
    assert post(server, body, dict(FORM))[0] == 401
