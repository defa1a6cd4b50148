"""A Flask app that answers Twilio's hand-offs, as a user deploys it with the shipped gunicorn
config; its settings come from CALLTRANSFER_* environment variables."""

from __future__ import annotations

import json
import os

from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse

transfers = CallTransfer()
transfers.add_destination("sales", NumberDestination("+31 20 794 8450", message="Connecting you to sales."))


@transfers.on_request(platform="twilio")
def route(call: TransferRequest) -> str | None:
    if "sales" in call.text.lower():
        return "sales"
    if call.event == "call":
        return "sip:desk@pbx.example.com"
    refuse("Nobody can take your call right now.")


def create_app() -> Flask:
    app = Flask(__name__)
    for key, value in os.environ.items():
        if key.startswith("CALLTRANSFER_"):
            # Lists and numbers arrive as JSON, the way the example app reads them.
            app.config[key] = json.loads(value) if value[:1] in "[{0123456789" else value
    transfers.init_app(app)
    return app
