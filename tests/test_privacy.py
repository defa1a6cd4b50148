"""Privacy: numbers are masked and secrets never appear, in every log line and rejection signal."""

from __future__ import annotations

import logging
import typing as t

import pytest

from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing
from flask_calltransfer.logs import MaskNumbers
from tests.conftest import SECRET
from tests.conftest import TOKEN
from tests.conftest import MakeApp
from tests.conftest import Sipgate
from tests.conftest import Vapi
from tests.conftest import log_violations

CALLER = "+31612345678"


def leaky(call: TransferRequest) -> t.Any:
    """A handler whose failures carry the caller's number in their text."""
    if "raise" in call.text:
        raise LookupError(f"No CRM record for {call.caller}")
    if "invalid" in call.text:
        return NumberDestination(f"{call.caller}99999")
    if "unknown" in call.text:
        return f"desk {call.caller}"
    return None


def test_every_scenario_logs_masked_numbers_and_no_secrets(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    transfers = CallTransfer()
    transfers.on_request(leaky)
    app, _ = make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN, CALLTRANSFER_FALLBACK="+31207948400")
    vapi, sipgate = Vapi(app.test_client()), Sipgate(app.test_client())
    with caplog.at_level(logging.DEBUG, logger="flask_calltransfer"), testing.record_signals(app) as heard:
        for text in ("raise", "invalid", "unknown", "nothing"):
            vapi.ask(text=text, caller=CALLER)
            sipgate.event("user_speak", text=text, caller=CALLER)
        vapi.post(testing.vapi_transfer_request(caller=CALLER), headers={"X-Vapi-Secret": SECRET + "x"})
        sipgate.post(testing.sipgate_event("user_speak", caller=CALLER), headers={"X-API-TOKEN": TOKEN[:-1]})
        vapi.post(b'{"message": {"type": "transfer-destination-request", "customer": "+31612345678"}}')
        vapi.post(b'{"caller": "+31612345678"')
    lines = [logging.Formatter("%(message)s").format(record) for record in caplog.records]
    assert len(lines) > 10
    assert any("+3161****678" in line for line in lines)
    assert any("No CRM record" in line for line in lines)  # the traceback was logged, masked
    assert log_violations(lines) == []
    assert all(CALLER not in line for line in lines)
    rejected = heard.named("request-rejected")
    assert len(rejected) == 4
    assert all(CALLER not in repr(r) and SECRET not in repr(r) and TOKEN not in repr(r) for r in rejected)


def test_the_filter_masks_messages_arguments_and_tracebacks() -> None:
    record = logging.LogRecord(
        "flask_calltransfer", logging.ERROR, __file__, 1, "call from %s", (CALLER,), None
    )
    MaskNumbers().filter(record)
    assert record.getMessage() == "call from +3161****678"
    try:
        raise ValueError(f"bad number {CALLER}")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "flask_calltransfer", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    MaskNumbers().filter(record)
    formatted = logging.Formatter().format(record)
    assert "bad number +3161****678" in formatted and CALLER not in formatted


def test_the_scan_catches_a_leak() -> None:
    assert log_violations(["INFO caller +31612345678", f"WARNING secret {SECRET}"]) == [
        "INFO caller +31612345678",
        f"WARNING secret {SECRET}",
    ]
    assert log_violations(["INFO caller +3161****678", "INFO call 6a1f-446655440000"]) == []
