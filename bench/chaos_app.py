"""The app of bench/chaos.py: every handler ends within milliseconds of its own deadline.

The caller's words say how (``"chaos <kind> <offset>"``): ``kind`` is ``spin`` (Python code),
``sleep`` (blocked in C) or ``store`` (a store write that starts right at the deadline), and
``offset`` is where the handler ends, in seconds after the deadline (negative: before it).
"""

from __future__ import annotations

import os
import time

from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import TransferRequest

ANSWER = "+31612345678"
FALLBACK = "+31687654321"
transfers = CallTransfer()


@transfers.on_request
def around_the_deadline(call: TransferRequest) -> str:
    _, kind, offset = call.text.split()
    end = call.received + float(os.environ["CHAOS_TIMEOUT"]) + float(offset)
    if kind == "sleep":
        time.sleep(max(end - time.monotonic(), 0))
    else:
        while time.monotonic() < end:
            pass
    if kind == "store":
        transfers.store.incr("chaos:writes")
    return ANSWER


def create_app() -> Flask:
    app = Flask(__name__, instance_path=os.environ["CHAOS_INSTANCE"])
    app.config.update(
        CALLTRANSFER_VAPI_SECRET=os.environ["CHAOS_SECRET"],
        CALLTRANSFER_HANDLER_TIMEOUT=float(os.environ["CHAOS_TIMEOUT"]),
        CALLTRANSFER_FALLBACK=FALLBACK,
    )
    transfers.init_app(app)
    return app
