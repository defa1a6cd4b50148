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


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("call (020) 794 8450 now", "794 8"),
        ("(415) 555-0123", "555-0"),
        ("415.555.0123", "555.0"),
        ("+31\u00a020\u00a0794\u00a08450", "794"),
        ("020\u202f794\u202f8450", "794\u202f8"),
        ("+1 (415) 555-0123", "555-0"),
    ],
)
def test_numbers_in_every_national_format_are_masked(text: str, hidden: str) -> None:
    from flask_calltransfer import phone

    assert hidden not in phone.mask_text(text)


@pytest.mark.parametrize(
    "text", ["at 2026-12-02 06:56:28 in 12.3 ms", "from 127.0.0.1:8000 pid 12345", "took 1500 ms", "v1.2.3"]
)
def test_times_addresses_and_counts_are_left_alone(text: str) -> None:
    from flask_calltransfer import phone

    assert phone.mask_text(text) == text


def test_destination_reprs_mask_numbers() -> None:
    from flask_calltransfer import NumberDestination
    from flask_calltransfer import SipDestination

    assert "12345678" not in repr(NumberDestination("+31612345678"))
    assert "12345678" not in repr(SipDestination("sip:+31612345678@pbx.example.com"))
    assert repr(NumberDestination("+31612345678")) == "<NumberDestination number +3161****678>"


def test_httpx_request_lines_show_host_and_path_only(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from flask_calltransfer.clients import HttpClient
    from flask_calltransfer.clients import HttpSettings
    from tests.recorder import Recorder

    recorder = Recorder()
    try:
        with caplog.at_level(logging.INFO, logger="httpx"):
            HttpClient(HttpSettings()).request("POST", f"{recorder.url}/calls/+31612345678/control?token=abc")
    finally:
        recorder.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all("token=abc" not in line and "+31612345678" not in line for line in lines)
