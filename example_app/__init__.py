"""A support line wired with Flask-CallTransfer: run it with ``make run``.

Secrets and settings come from ``CALLTRANSFER_*`` environment variables, for example
``CALLTRANSFER_VAPI_SECRET``. Values that look like JSON (``false``, ``["vapi"]``) are decoded.
"""

from __future__ import annotations

import json
import os
import typing as t

from flask import Flask

from .routing import transfers


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
    transfers.init_app(app)

    @app.get("/")
    def index() -> dict[str, t.Any]:
        return {"service": "support line", "webhooks": sorted(app.extensions["calltransfer"].platforms)}

    return app
