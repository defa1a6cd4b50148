"""The example app, plus a header naming the worker process that served each request."""

from __future__ import annotations

import os

from flask import Flask
from flask import Response

import example_app


def create_app() -> Flask:
    app = example_app.create_app()

    @app.after_request
    def served_by(response: Response) -> Response:
        response.headers["X-Served-By"] = str(os.getpid())
        return response

    return app
