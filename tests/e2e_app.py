"""The example app, plus a header naming the worker process that served each request."""

from __future__ import annotations

import os
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


def create_app() -> Flask:
    app = example_app.create_app()

    @app.after_request
    def served_by(response: Response) -> Response:
        response.headers["X-Served-By"] = str(os.getpid())
        return response

    return app
