"""A signal subscriber that appends every transfer decision to a JSON-lines file."""

from __future__ import annotations

import json
import pathlib
import threading
import time
import typing as t

from flask import Flask

from flask_calltransfer import Destination
from flask_calltransfer import TransferRequest
from flask_calltransfer import phone
from flask_calltransfer import signals


def log_transfers_to(app: Flask, path: pathlib.Path) -> None:
    """Write one JSON line per decision of ``app`` to ``path``; callers' numbers are masked."""
    lock = threading.Lock()

    def write(record: dict[str, t.Any]) -> None:
        record["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        path.parent.mkdir(parents=True, exist_ok=True)
        with lock, path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")

    def basics(call: TransferRequest) -> dict[str, t.Any]:
        return {"platform": call.platform, "call_id": call.call_id, "caller": phone.mask(call.caller)}

    # Kept on the app: blinker holds receivers weakly, and these must live as long as the app.
    def resolved(
        sender: Flask,
        call: TransferRequest,
        destination: Destination,
        handler: t.Any,
        elapsed: float,
        **extra: t.Any,
    ) -> None:
        write(
            {
                **basics(call),
                "outcome": "resolved",
                "destination": destination.describe(),
                "handler": getattr(handler, "__name__", None),
                "ms": round(elapsed * 1000, 2),
            }
        )

    def refused(sender: Flask, call: TransferRequest, reason: str, **extra: t.Any) -> None:
        write({**basics(call), "outcome": "refused", "reason": reason})

    def failed(
        sender: Flask, call: TransferRequest, exception: BaseException, stage: str, **extra: t.Any
    ) -> None:
        write({**basics(call), "outcome": "failed", "stage": stage, "error": type(exception).__name__})

    app.extensions["support_line_log"] = (resolved, refused, failed)
    signals.transfer_resolved.connect(resolved, sender=app)
    signals.transfer_refused.connect(refused, sender=app)
    signals.transfer_failed.connect(failed, sender=app)
