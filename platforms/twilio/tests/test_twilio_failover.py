"""Failover on Twilio: the <Dial action> callback of a failed dial is answered with the next
destination of the call's chain, and the same callback delivered again gets the same TwiML."""

from __future__ import annotations

from flask import Flask
from twilio_support import encode
from twilio_support import fields
from twilio_support import signed

from flask_calltransfer import CallTransfer
from flask_calltransfer import DestinationChain
from flask_calltransfer import NumberDestination
from flask_calltransfer import testing

ANNA, BRAM = "+31207948451", "+31207948452"


def post(app: Flask, body: bytes) -> str:
    response = app.test_client().post("/calltransfer/twilio", data=body, headers=signed(body))
    assert response.status_code == 200 and response.mimetype == "text/xml"
    return response.get_data(as_text=True)


def dialled(twiml: str) -> str | None:
    for number in (ANNA, BRAM):
        if f"<Number>{number}</Number>" in twiml:
            return number
    return None


def make(transfers: CallTransfer | None = None) -> Flask:
    """A Twilio app; by default anna (one call at once), then bram, for every call."""
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        CALLTRANSFER_TWILIO_AUTH_TOKEN="twilio-auth-token-0123456789abcdef",
        CALLTRANSFER_PLATFORMS=["twilio"],
        CALLTRANSFER_STORE_URL="memory://",
    )
    if transfers is None:
        transfers = CallTransfer()
        transfers.add_destination("anna", NumberDestination(ANNA), max_concurrent=1)
        transfers.add_destination("bram", NumberDestination(BRAM))
        transfers.on_request(lambda call: DestinationChain(["anna", "bram"]))
    transfers.init_app(app)
    return app


def test_a_busy_dial_is_answered_with_the_next_destination() -> None:
    app = make()
    with testing.record_signals(app) as heard:
        assert dialled(post(app, encode(fields()))) == ANNA
        busy = encode(fields(CallStatus="in-progress", DialCallStatus="busy", DialCallSid="CA" + "9" * 32))
        following = post(app, busy)
        assert dialled(following) == BRAM and 'action="http://localhost/calltransfer/twilio"' in following
        # Delivered again: the same next dial, not an empty answer that would hang up.
        assert post(app, busy) == following
        done = encode(
            fields(CallStatus="in-progress", DialCallStatus="completed", DialCallSid="CA" + "8" * 32)
        )
        assert dialled(post(app, done)) is None
    finished = heard.one("transfer-finished")
    assert (finished["outcome"], finished["destination"]) == ("connected", "bram")
    assert [(a.destination, a.outcome) for a in finished["attempts"]] == [
        ("anna", "busy"),
        ("bram", "connected"),
    ]


def test_a_connected_dial_gives_its_place_back_when_it_ends() -> None:
    app = make()
    first = fields(CallSid="CA" + "a" * 32)
    assert dialled(post(app, encode(first))) == ANNA
    # anna takes one call at once: a second caller gets bram while the first is on the line.
    assert dialled(post(app, encode(fields(CallSid="CA" + "b" * 32)))) == BRAM
    ended = fields(CallSid="CA" + "a" * 32, CallStatus="in-progress", DialCallStatus="completed")
    post(app, encode(ended))
    assert dialled(post(app, encode(fields(CallSid="CA" + "c" * 32)))) == ANNA


def test_a_caller_who_hung_up_while_it_rang_gets_nothing_more() -> None:
    app = make()
    with testing.record_signals(app) as heard:
        post(app, encode(fields()))
        gone = post(app, encode(fields(CallStatus="completed", DialCallStatus="canceled")))
    assert dialled(gone) is None
    assert heard.one("transfer-finished")["outcome"] == "cancelled"


def test_a_plain_destination_is_not_followed() -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: NumberDestination(ANNA))
    app = make(transfers)
    post(app, encode(fields()))
    # Not a chain: nothing to follow, and Twilio goes on with the call's TwiML after the dial.
    assert dialled(post(app, encode(fields(CallStatus="in-progress", DialCallStatus="busy")))) is None
