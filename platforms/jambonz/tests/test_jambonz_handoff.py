"""Hand-off context on jambonz: dial and sip:refer carry the X-Handoff-* and User-to-User headers
for any target, a refer may carry User-to-User inside its Refer-To, and CALLER is the caller."""

from __future__ import annotations

import typing as t
import urllib.parse

from flask import Flask
from jambonz_support import CALLER
from jambonz_support import SECRET
from jambonz_support import call_hook
from jambonz_support import encode
from jambonz_support import signed
from jambonz_support import verb_problems

from flask_calltransfer import CALLER as ORIGINAL_CALLER
from flask_calltransfer import CallTransfer
from flask_calltransfer import Handoff
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferPlan

HANDOFF = Handoff(
    "Disputes an invoice", account="ACC-1042", ticket="T-77", sensitive={"ticket"}, refer_to=True
)


def verbs_for(destination: t.Any) -> list[dict[str, t.Any]]:
    app = Flask("jambonz_handoff")
    app.config.update(
        TESTING=True,
        CALLTRANSFER_PLATFORMS=["jambonz"],
        CALLTRANSFER_STORE_URL="memory://",
        CALLTRANSFER_JAMBONZ_SECRET=SECRET,
    )
    transfers = CallTransfer(app)
    transfers.on_request(lambda call: destination)
    body = encode(call_hook())
    response = app.test_client().post("/calltransfer/jambonz", data=body, headers=signed(body))
    assert response.status_code == 200
    verbs = response.get_json()
    assert verb_problems(verbs) == []
    return t.cast(list[dict[str, t.Any]], verbs)


def test_a_number_dial_carries_the_hand_off_headers() -> None:
    (dial,) = [
        verb
        for verb in verbs_for(NumberDestination("+31207948450", handoff=HANDOFF))
        if verb["verb"] == "dial"
    ]
    headers = dial["headers"]
    assert (headers["X-Handoff-Caller"], headers["X-Handoff-Account"]) == (CALLER, "ACC-1042")
    assert headers["User-to-User"] == headers["X-Handoff-Id"].encode().hex() + ";encoding=hex"
    assert "X-Handoff-Ticket" not in headers and "T-77" not in str(dial)


def test_a_sip_dial_keeps_its_own_headers_next_to_the_hand_off() -> None:
    destination = SipDestination("sip:desk@pbx.example.com", headers={"X-Queue": "billing"}, handoff=HANDOFF)
    (dial,) = [verb for verb in verbs_for(destination) if verb["verb"] == "dial"]
    assert (
        dial["headers"]["X-Queue"] == "billing"
        and dial["headers"]["X-Handoff-Reason"] == "Disputes an invoice"
    )


def test_a_refer_carries_user_to_user_inside_its_refer_to() -> None:
    destination = SipDestination(
        "sip:desk@pbx.example.com", transfer_plan=TransferPlan(sip_verb="refer"), handoff=HANDOFF
    )
    (refer,) = [verb for verb in verbs_for(destination) if verb["verb"] == "sip:refer"]
    uri, _, query = refer["referTo"].partition("?")
    assert uri == "sip:desk@pbx.example.com"
    assert urllib.parse.parse_qs(query)["User-to-User"] == [refer["headers"]["User-to-User"]]
    # Without refer_to the URI stays as it was.
    plain = destination.with_handoff(Handoff("Disputes an invoice"))
    (refer,) = [verb for verb in verbs_for(plain) if verb["verb"] == "sip:refer"]
    assert refer["referTo"] == "sip:desk@pbx.example.com" and refer["headers"]["X-Handoff-Id"]


def test_caller_dials_with_the_caller_s_own_number() -> None:
    (dial,) = [
        verb
        for verb in verbs_for(NumberDestination("+31207948450", caller_id=ORIGINAL_CALLER))
        if verb["verb"] == "dial"
    ]
    assert dial["callerId"] == CALLER
