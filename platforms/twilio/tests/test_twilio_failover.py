"""Failover on Twilio: the <Dial action> callback of a failed dial is answered with the next
destination of the call's chain, and the same callback delivered again gets the same TwiML."""

from __future__ import annotations

import typing as t

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


def make(transfers: CallTransfer | None = None, **config: t.Any) -> Flask:
    """A Twilio app; by default anna (one call at once), then bram, for every call."""
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        CALLTRANSFER_TWILIO_AUTH_TOKEN="twilio-auth-token-0123456789abcdef",
        CALLTRANSFER_PLATFORMS=["twilio"],
        CALLTRANSFER_STORE_URL="memory://",
    )
    app.config.update(config)
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


def busy_callback(**extra: str) -> bytes:
    return encode(
        fields(CallStatus="in-progress", DialCallStatus="busy", DialCallSid="CA" + "9" * 32, **extra)
    )


def test_a_chain_that_shows_the_callers_number_still_fails_over() -> None:
    transfers = CallTransfer()
    transfers.on_request(
        lambda call: DestinationChain(
            [NumberDestination(ANNA, caller_id=call.caller), NumberDestination(BRAM, caller_id=call.caller)]
        )
    )
    app = make(transfers)
    assert dialled(post(app, encode(fields()))) == ANNA
    following = post(app, busy_callback())
    assert dialled(following) == BRAM and 'callerId="+31612345678"' in following


def test_the_same_callback_while_the_first_is_still_answered_gets_the_same_dial() -> None:
    import concurrent.futures
    import time

    transfers = CallTransfer()
    transfers.add_destination("anna", NumberDestination(ANNA))
    transfers.add_destination("bram", NumberDestination(BRAM), available=lambda call: time.sleep(0.5) or True)
    transfers.on_request(lambda call: DestinationChain(["anna", "bram"]))
    app = make(transfers)
    post(app, encode(fields()))
    body = busy_callback()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, app, body)
        time.sleep(0.1)
        second = pool.submit(post, app, body)
        answers = [first.result(), second.result()]
    assert answers[0] == answers[1] and dialled(answers[0]) == BRAM


def test_asked_again_for_the_call_is_routed_not_refused() -> None:
    app = make()
    assert dialled(post(app, encode(fields()))) == ANNA
    # A Fallback URL, a retry or a <Redirect>: the dial is not running any more.
    again = post(app, encode(fields(CallStatus="in-progress")))
    assert dialled(again) == BRAM and "under way" not in again


def test_a_store_outage_when_a_dial_fails_dials_the_fallback() -> None:
    from flask_calltransfer.store import MemoryStore

    class Flaky(MemoryStore):
        down = False

        def get(self, key: str) -> str | None:
            if self.down:
                raise OSError("store is down")
            return super().get(key)

    store = Flaky()
    transfers = CallTransfer(store=store)
    transfers.add_destination("anna", NumberDestination(ANNA))
    transfers.add_destination("bram", NumberDestination(BRAM))
    transfers.on_request(lambda call: DestinationChain(["anna", "bram"]))
    # The store is the flaky one given to the extension, not one from a URL.
    app = make(transfers, CALLTRANSFER_STORE_URL=None, CALLTRANSFER_FALLBACK="+31207948400")
    post(app, encode(fields()))
    store.down = True
    answer = post(app, busy_callback())
    assert "<Number>+31207948400</Number>" in answer
    # A plain call's completed dial is not followed by anything, store or not.
    assert "<Dial" not in post(app, encode(fields(CallStatus="in-progress", DialCallStatus="completed")))


def test_when_the_chain_runs_out_the_fallback_is_dialled() -> None:
    app = make(CALLTRANSFER_FALLBACK="+31207948400")
    post(app, encode(fields()))
    assert dialled(post(app, busy_callback())) == BRAM
    last = post(
        app, encode(fields(CallStatus="in-progress", DialCallStatus="no-answer", DialCallSid="CA" + "7" * 32))
    )
    assert "<Number>+31207948400</Number>" in last
