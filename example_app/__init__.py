"""A support line wired with Flask-CallTransfer: run it with ``make run``.

Secrets and settings come from ``CALLTRANSFER_*`` environment variables, for example
``CALLTRANSFER_VAPI_SECRET``; values that look like JSON (``false``, ``["vapi"]``) are decoded.
Without them the app starts with local development credentials and says so in its log.
``SUPPORT_LINE_LOG`` names the JSON-lines file the transfer log is written to.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import typing as t

from flask import Flask

from . import analytics
from .routing import transfers

#: Used only when the environment sets no credentials, so the example runs on a fresh machine.
#: VoiceDock's ``transfer_call`` tool needs a Call Control API: in development it points at a
#: loopback port where nothing listens, so no request leaves the machine and the tool result says
#: the transfer could not be started. Settings the environment does give are kept.
DEVELOPMENT_CREDENTIALS = {
    "CALLTRANSFER_VAPI_SECRET": "local-dev-secret",
    "CALLTRANSFER_SIPGATE_TOKEN": "local-dev-token",
    "CALLTRANSFER_VOICEDOCK_SECRET": "local-dev-voicedock-secret",
    "CALLTRANSFER_VOICEDOCK_TOOLS": ["transfer_call"],
    "CALLTRANSFER_VOICEDOCK_API_KEY": "local-dev-api-key",
    "CALLTRANSFER_VOICEDOCK_API_URL": "http://127.0.0.1:9/api/v1",
}


def _from_environment() -> dict[str, t.Any]:
    settings: dict[str, t.Any] = {}
    for key, value in os.environ.items():
        if not key.startswith("CALLTRANSFER_"):
            continue
        try:
            settings[key] = json.loads(value)
        except ValueError:
            settings[key] = value
    return settings


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """The app factory: ``gunicorn 'example_app:create_app()'``."""
    app = Flask(__name__)
    app.config.update(CALLTRANSFER_DEFAULT_REGION="NL", CALLTRANSFER_FALLBACK="reception")
    app.config.update(_from_environment())
    if config:
        app.config.update(config)
    credentials = (
        "CALLTRANSFER_VAPI_SECRET",
        "CALLTRANSFER_VAPI_HMAC_SECRET",
        "CALLTRANSFER_SIPGATE_TOKEN",
        "CALLTRANSFER_VOICEDOCK_SECRET",
    )
    if not any(app.config.get(key) for key in credentials):
        logging.getLogger(__name__).warning(
            "No webhook credentials are set, so the support line uses the local development ones in"
            " example_app.DEVELOPMENT_CREDENTIALS. Set CALLTRANSFER_VAPI_SECRET and the other"
            " platforms' secrets before exposing it."
        )
        for key, value in DEVELOPMENT_CREDENTIALS.items():
            if app.config.get(key) is None:
                app.config[key] = value
    transfers.init_app(app)
    analytics.log_transfers_to(
        app,
        pathlib.Path(
            os.environ.get("SUPPORT_LINE_LOG") or pathlib.Path(app.instance_path) / "transfers.jsonl"
        ),
    )

    @app.get("/")
    def index() -> dict[str, t.Any]:
        return {"service": "support line", "webhooks": sorted(app.extensions["calltransfer"].platforms)}

    return app
