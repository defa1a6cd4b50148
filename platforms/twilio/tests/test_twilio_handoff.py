"""Hand-off context on Twilio: a <Sip> dial carries X-Handoff-* and User-to-User as URI parameters,
a <Number> carries nothing (Twilio has no channel for it), and CALLER dials with the caller's number."""

from __future__ import annotations

import re
import urllib.parse
from xml.etree import ElementTree

from flask import Flask
from twilio_support import encode
from twilio_support import fields
from twilio_support import signed

from flask_calltransfer import CALLER
from flask_calltransfer import CallTransfer
from flask_calltransfer import Destination
from flask_calltransfer import Handoff
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination

HANDOFF = Handoff("Disputes an invoice", account="ACC-1042", fields={"Note": "Grüße"}, sensitive={"account"})


def twiml_for(destination: Destination) -> ElementTree.Element:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        CALLTRANSFER_TWILIO_AUTH_TOKEN="twilio-auth-token-0123456789abcdef",
        CALLTRANSFER_PLATFORMS=["twilio"],
        CALLTRANSFER_STORE_URL="memory://",
    )
    transfers = CallTransfer(app)
    transfers.on_request(lambda call: destination)
    body = encode(fields())
    response = app.test_client().post("/calltransfer/twilio", data=body, headers=signed(body))
    assert response.status_code == 200 and response.mimetype == "text/xml"
    return ElementTree.fromstring(response.data)


def test_a_sip_dial_carries_the_hand_off_as_uri_parameters() -> None:
    sip = twiml_for(SipDestination("sip:desk@pbx.example.com", handoff=HANDOFF)).find("./Dial/Sip")
    assert sip is not None and sip.text is not None
    uri, _, query = sip.text.partition("?")
    assert uri == "sip:desk@pbx.example.com"
    params = urllib.parse.parse_qs(query)
    assert params["X-Handoff-Caller"] == ["+31612345678"] and params["X-Handoff-Note"] == ["Gr%C3%BC%C3%9Fe"]
    assert re.fullmatch(r"[0-9a-f]{12}", params["X-Handoff-Id"][0])
    assert params["User-to-User"] == [params["X-Handoff-Id"][0].encode().hex() + ";encoding=hex"]
    assert "X-Handoff-Account" not in params and "ACC-1042" not in sip.text


def test_a_number_dial_carries_nothing_but_goes_through() -> None:
    twiml = twiml_for(NumberDestination("+31207948450", handoff=HANDOFF))
    assert twiml.findtext("./Dial/Number") == "+31207948450"
    assert "Handoff" not in ElementTree.tostring(twiml, encoding="unicode")


def test_caller_dials_with_the_caller_s_own_number() -> None:
    dial = twiml_for(NumberDestination("+31207948450", caller_id=CALLER)).find("./Dial")
    assert dial is not None and dial.get("callerId") == "+31612345678"


def test_a_chain_that_runs_out_says_the_callback() -> None:
    from flask_calltransfer import Callback
    from flask_calltransfer import DestinationChain
    from flask_calltransfer import testing

    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        CALLTRANSFER_TWILIO_AUTH_TOKEN="twilio-auth-token-0123456789abcdef",
        CALLTRANSFER_PLATFORMS=["twilio"],
        CALLTRANSFER_STORE_URL="memory://",
    )
    transfers = CallTransfer(app)
    offer = Callback("We will ring you back {when}.", reason="Sales")
    transfers.on_request(lambda call: DestinationChain(["+31207948451"], callback=offer))
    client = app.test_client()

    def post(body: bytes) -> str:
        response = client.post("/calltransfer/twilio", data=body, headers=signed(body))
        assert response.status_code == 200
        return response.get_data(as_text=True)

    with testing.record_signals(app) as heard:
        assert "<Number>+31207948451</Number>" in post(encode(fields()))
        busy = encode(fields(CallStatus="in-progress", DialCallStatus="busy", DialCallSid="CA" + "9" * 32))
        said = post(busy)
        # Delivered again: the same words, and still one task.
        assert post(busy) == said
    assert "<Say>We will ring you back as soon as someone is free.</Say>" in said and "<Dial" not in said
    (requested,) = heard.named("callback-requested")
    assert (requested["task"]["caller"], requested["task"]["reason"]) == ("+31612345678", "Sales")


def test_a_hand_off_never_turns_a_sip_dial_into_a_refusal() -> None:
    # <Sip> URIs stay under 255 characters: what does not fit is left out, the link first, the id
    # and User-to-User last, and the app's own headers are kept.
    long = Handoff("r" * 120, account="A" * 60, ticket="T" * 60, fields={"Plan": "Business"})
    own = {"X-Queue": "billing"}
    sip = twiml_for(SipDestination("sip:desk@pbx.example.com", headers=own, handoff=long)).find("./Dial/Sip")
    assert sip is not None and sip.text is not None and len(sip.text) < 255
    params = urllib.parse.parse_qs(sip.text.partition("?")[2])
    assert params["X-Queue"] == ["billing"] and params["X-Handoff-Id"] and params["User-to-User"]
    assert "X-Handoff-Plan" not in params


def test_failover_keeps_the_hand_off_and_moves_on() -> None:
    from flask_calltransfer import DestinationChain

    handoff = Handoff("Wants to cancel", account="ACC-7")
    chain = DestinationChain(
        [
            SipDestination("sip:anna@pbx.example.com", handoff=handoff),
            SipDestination("sip:bram@pbx.example.com", handoff=handoff),
        ]
    )
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        CALLTRANSFER_TWILIO_AUTH_TOKEN="twilio-auth-token-0123456789abcdef",
        CALLTRANSFER_PLATFORMS=["twilio"],
        CALLTRANSFER_STORE_URL="memory://",
    )
    transfers = CallTransfer(app)
    transfers.on_request(lambda call: chain)
    client = app.test_client()

    def dialled(body: bytes) -> tuple[str, dict[str, list[str]]] | None:
        response = client.post("/calltransfer/twilio", data=body, headers=signed(body))
        sip = ElementTree.fromstring(response.data).find("./Dial/Sip")
        if sip is None or sip.text is None:
            return None
        uri, _, query = sip.text.partition("?")
        return uri, urllib.parse.parse_qs(query)

    first = dialled(encode(fields()))
    busy = encode(fields(CallStatus="in-progress", DialCallStatus="busy", DialCallSid="CA" + "9" * 32))
    second = dialled(busy)
    assert first is not None and second is not None
    assert (first[0], second[0]) == ("sip:anna@pbx.example.com", "sip:bram@pbx.example.com")
    assert second[1]["X-Handoff-Account"] == ["ACC-7"]
    assert second[1]["X-Handoff-Id"] != first[1]["X-Handoff-Id"]
    busy_again = encode(fields(CallStatus="in-progress", DialCallStatus="busy", DialCallSid="CA" + "8" * 32))
    assert dialled(busy_again) is None
