"""Failover on jambonz: a dial's actionHook that says it failed is answered with the next
destination of the call's chain, as verbs jambonz runs, once per delivery of the hook."""

from __future__ import annotations

import typing as t

from flask import Flask
from jambonz_support import SECRET
from jambonz_support import call_hook
from jambonz_support import dial_result
from jambonz_support import encode
from jambonz_support import signed
from jambonz_support import verb_problems

from flask_calltransfer import CallTransfer
from flask_calltransfer import DestinationChain
from flask_calltransfer import NumberDestination
from flask_calltransfer import testing

ANNA, BRAM = "+31207948451", "+31207948452"


def make(transfers: CallTransfer | None = None) -> Flask:
    """A jambonz app; by default anna, then bram, for every call."""
    app = Flask("jambonz_failover")
    app.config.update(
        TESTING=True,
        CALLTRANSFER_PLATFORMS=["jambonz"],
        CALLTRANSFER_STORE_URL="memory://",
        CALLTRANSFER_JAMBONZ_SECRET=SECRET,
    )
    if transfers is None:
        transfers = CallTransfer()
        transfers.add_destination("anna", NumberDestination(ANNA))
        transfers.add_destination("bram", NumberDestination(BRAM))
        transfers.on_request(lambda call: DestinationChain(["anna", "bram"]))
    transfers.init_app(app)
    return app


def post(app: Flask, body: bytes) -> t.Any:
    response = app.test_client().post("/calltransfer/jambonz", data=body, headers=signed(body))
    assert response.status_code == 200
    verbs = response.get_json()
    assert verb_problems(verbs) == []
    return verbs


def dialled(verbs: t.Any) -> list[str]:
    return [target["number"] for verb in verbs if verb["verb"] == "dial" for target in verb["target"]]


def test_a_failed_dial_is_answered_with_the_next_dial() -> None:
    app = make()
    with testing.record_signals(app) as heard:
        assert dialled(post(app, encode(call_hook()))) == [ANNA]
        busy = encode(dial_result("busy", 486))
        following = post(app, busy)
        assert dialled(following) == [BRAM] and following[0]["actionHook"].endswith("/calltransfer/jambonz")
        assert post(app, busy) == following
        assert post(app, encode(dial_result("no-answer", 480))) == []
    finished = heard.one("transfer-finished")
    assert (finished["outcome"], finished["destination"]) == ("no-answer", None)
    assert [(a.destination, a.outcome) for a in finished["attempts"]] == [
        ("anna", "busy"),
        ("bram", "no-answer"),
    ]


def test_a_callers_name_that_is_a_directory_name_leaves_the_chain_alone() -> None:
    app = make()
    # A SIP caller whose user part is "bram": the chain's entry "bram" stays a name.
    assert dialled(post(app, encode(call_hook(**{"from": "bram"})))) == [ANNA]
    assert dialled(post(app, encode(dial_result("busy", 486, **{"from": "bram"})))) == [BRAM]


def test_a_referred_call_keeps_its_place() -> None:
    from jambonz_support import refer_result

    from flask_calltransfer import TransferPlan

    transfers = CallTransfer()
    refer = TransferPlan(sip_verb="refer")
    transfers.add_destination("anna", NumberDestination(ANNA, transfer_plan=refer), max_concurrent=1)
    transfers.add_destination("bram", NumberDestination(BRAM, transfer_plan=refer))
    transfers.on_request(lambda call: DestinationChain(["anna", "bram"]))
    app = make(transfers)

    def referred(verbs: t.Any) -> list[str]:
        return [verb["referTo"] for verb in verbs if verb["verb"] == "sip:refer"]

    assert referred(post(app, encode(call_hook()))) == [ANNA]
    # Answered at the far end: the call goes on with anna, who is not free for another.
    post(app, encode(refer_result(202, 200)))
    other = call_hook(call_sid="c0ffee00-0000-4000-8000-000000000002")
    assert referred(post(app, encode(other))) == [BRAM]
