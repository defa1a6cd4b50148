"""A jambonz app as an adapter's user writes one, configured from the environment, for the
end-to-end test under gunicorn."""

from __future__ import annotations

import json
import os
import typing as t

from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse

transfers = CallTransfer()
transfers.add_destination("reception", NumberDestination("+31207948450", message="Connecting you now."))


@transfers.on_request(platform="jambonz")
def route(call: TransferRequest) -> str | SipDestination:
    if call.event == "call":
        return "reception"
    if "sales" in call.text.lower():
        return SipDestination("sip:sales@pbx.example.com", headers={"X-Desk": "sales"})
    refuse("Sorry, I can only put you through to sales.")


def _from_environment() -> dict[str, t.Any]:
    # CALLTRANSFER_JAMBONZ_SECRET, CALLTRANSFER_STORE_URL, ...: JSON where it parses, else text.
    config: dict[str, t.Any] = {}
    for key, value in os.environ.items():
        if key.startswith("CALLTRANSFER_"):
            try:
                config[key] = json.loads(value)
            except ValueError:
                config[key] = value
    return config


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(_from_environment())
    transfers.init_app(app)
    return app
