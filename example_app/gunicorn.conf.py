"""gunicorn settings for the example app.

``gunicorn -c example_app/gunicorn.conf.py 'example_app:create_app()'``
"""

from __future__ import annotations

import os
import typing as t

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Webhooks answer in milliseconds; a worker stuck for 30 s is a bug worth restarting.
timeout = 30
accesslog = "-"
loglevel = "info"


def when_ready(server: t.Any) -> None:
    for address in server.cfg.bind:
        server.log.info("Vapi webhook: POST http://%s/calltransfer/vapi", address)
        server.log.info("sipgate AI Flow webhook: POST http://%s/calltransfer/sipgate", address)
        server.log.info(
            "Try: flask --app example_app calltransfer simulate vapi 'I want sales' --url http://%s", address
        )
