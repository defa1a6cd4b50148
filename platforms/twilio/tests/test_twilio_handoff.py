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
    assert re.fullmatch(r"[0-9a-f]{10}", params["X-Handoff-Id"][0])
    assert params["User-to-User"] == [params["X-Handoff-Id"][0].encode().hex() + ";encoding=hex"]
    assert "X-Handoff-Account" not in params and "ACC-1042" not in sip.text


def test_a_number_dial_carries_nothing_but_goes_through() -> None:
    twiml = twiml_for(NumberDestination("+31207948450", handoff=HANDOFF))
    assert twiml.findtext("./Dial/Number") == "+31207948450"
    assert "Handoff" not in ElementTree.tostring(twiml, encoding="unicode")


def test_caller_dials_with_the_caller_s_own_number() -> None:
    dial = twiml_for(NumberDestination("+31207948450", caller_id=CALLER)).find("./Dial")
    assert dial is not None and dial.get("callerId") == "+31612345678"
