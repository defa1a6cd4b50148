"""The example app, plus a header naming the worker process that served each request."""

from __future__ import annotations

import logging
import os
import sys
import threading

from flask import Flask
from flask import Response

import example_app
from flask_calltransfer import TransferRequest


@example_app.transfers.on_request(when=lambda call: "hang" in call.text)
def never_returns(call: TransferRequest) -> None:
    """A handler stuck on a dead backend: the deadline must still answer the platform."""
    threading.Event().wait()


@example_app.transfers.on_request(when=lambda call: "crunch" in call.text)
def holds_the_gil(call: TransferRequest) -> None:
    """C code that holds the GIL and checks no signal, out of every deadline's reach."""
    sum(range(10**11))


@example_app.transfers.on_request(when=lambda call: "explode" in call.text)
def explodes(call: TransferRequest) -> None:
    """A handler bug whose message carries the caller's number, as real bugs' messages do."""
    raise LookupError(f"No account for caller {call.caller}")


@example_app.transfers.on_request(when=lambda call: "unreachable" in call.text)
def returns_an_invalid_number(call: TransferRequest) -> str:
    """A destination built from the caller's number that phonenumbers refuses."""
    return f"{call.caller}99999"


def create_app() -> Flask:
    level = os.environ.get("E2E_LOG_LEVEL")
    if level:
        # As an app with logging.basicConfig(level=DEBUG) runs it: every library's records printed.
        logging.basicConfig(level=level, stream=sys.stderr, force=True)
    app = example_app.create_app()

    @app.after_request
    def served_by(response: Response) -> Response:
        response.headers["X-Served-By"] = str(os.getpid())
        return response

    return app
