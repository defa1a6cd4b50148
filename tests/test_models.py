"""Destinations validate themselves when built; TransferRequest is immutable and lazy."""

from __future__ import annotations

import dataclasses
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import AssistantDestination
from flask_calltransfer import InvalidDestination
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer.models import TRANSFER_MODES


@pytest.mark.parametrize(
    ("given", "region", "expected"),
    [
        ("+31 6 12345678", None, "+31612345678"),
        ("+31 (0)6-1234 5678", None, "+31612345678"),
        ("06 12345678", "NL", "+31612345678"),
        ("(415) 555-2671", "us", "+14155552671"),
        ("  +14155552671 ", None, "+14155552671"),
    ],
)
def test_numbers_are_normalised_to_e164(given: str, region: str | None, expected: str) -> None:
    assert NumberDestination(given, region=region).number == expected


def test_default_region_comes_from_the_app_config() -> None:
    app = Flask(__name__)
    app.config["CALLTRANSFER_DEFAULT_REGION"] = "DE"
    with app.app_context():
        assert NumberDestination("030 1234567").number == "+49301234567"


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ("", "empty"),
        ("0612345678", "no country code"),
        ("+31 6 1234", "not a valid phone number"),
        ("call me maybe", "could not be read"),
        ("+999 1234567", "could not be read|not a valid"),
    ],
)
def test_invalid_numbers_raise_with_a_fix(given: str, match: str) -> None:
    with pytest.raises(InvalidDestination, match=match):
        NumberDestination(given)


def test_invalid_destination_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        NumberDestination("nope")


def test_non_e164_numbers() -> None:
    assert NumberDestination("+8001", e164=False).number == "+8001"
    assert NumberDestination("trunk42", e164=False).number == "trunk42"
    for bad in ("80", "80 01", "x" * 41, "+80-01"):
        with pytest.raises(InvalidDestination, match="without the E.164 check"):
            NumberDestination(bad, e164=False)


@pytest.mark.parametrize("extension", ["1", "1234567890"])
def test_extension_ok(extension: str) -> None:
    assert NumberDestination("+31612345678", extension=extension).extension == extension


@pytest.mark.parametrize("extension", ["", "12345678901", "12a", 101, "1 2"])
def test_extension_must_be_1_to_10_digits(extension: t.Any) -> None:
    with pytest.raises(InvalidDestination, match="1 to 10 digits"):
        NumberDestination("+31612345678", extension=extension)


def test_caller_id_forms() -> None:
    assert NumberDestination("+31612345678", caller_id="+31 20 794 8400").caller_id == "+31207948400"
    assert NumberDestination("+31612345678", caller_id="{{phoneNumber.number}}").caller_id == (
        "{{phoneNumber.number}}"
    )
    with pytest.raises(InvalidDestination):
        NumberDestination("+31612345678", caller_id="{{not closed")


@pytest.mark.parametrize("mode", sorted(TRANSFER_MODES))
def test_every_vapi_mode_is_accepted(mode: str) -> None:
    assert NumberDestination("+31612345678", mode=mode).mode == mode
    assert SipDestination("sip:a@b.example", mode=mode).mode == mode


def test_the_mode_list_is_vapis_complete_list() -> None:
    assert len(TRANSFER_MODES) == 8
    assert "warm-transfer-wait-for-operator-to-speak-first-and-then-say-summary" in TRANSFER_MODES


@pytest.mark.parametrize("mode", ["warm", "warm-transfer-with-summary", "BLIND-TRANSFER", ""])
def test_unknown_modes_are_rejected(mode: str) -> None:
    with pytest.raises(InvalidDestination, match="not one of Vapi's modes"):
        NumberDestination("+31612345678", mode=mode)


def test_text_attributes_are_checked() -> None:
    with pytest.raises(InvalidDestination, match="message must be a string"):
        NumberDestination("+31612345678", message=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidDestination, match="longer than 1000"):
        NumberDestination("+31612345678", message="x" * 1001)
    with pytest.raises(InvalidDestination, match="caller_id_name is empty"):
        NumberDestination("+31612345678", caller_id_name=" ")
    assert NumberDestination("+31612345678", message="").message == ""


@pytest.mark.parametrize(
    "uri",
    [
        "sip:support@example.com",
        "sips:desk@pbx.example.com:5061",
        "sip:+31612345678@sip.telnyx.com;user=phone",
        "sip:pbx.example.com",
        "sip:alice@[2001:db8::1]",
    ],
)
def test_valid_sip_uris(uri: str) -> None:
    assert SipDestination(uri).uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "support@example.com",
        "tel:+31612345678",
        "sip:",
        "sip:a b@example.com",
        "<sip:a@b.com>",
        "sip:a@b.com\r\nX: y",
        5,
    ],
)
def test_invalid_sip_uris(uri: t.Any) -> None:
    with pytest.raises(InvalidDestination, match="not a valid SIP URI"):
        SipDestination(uri)


def test_sip_headers_are_validated_and_frozen() -> None:
    headers = {"X-Account": "42"}
    destination = SipDestination("sip:a@b.example", headers=headers)
    headers["X-Account"] = "changed"
    assert destination.headers == {"X-Account": "42"}
    with pytest.raises(TypeError):
        destination.headers["X-New"] = "1"  # type: ignore[index]
    assert hash(destination) == hash(SipDestination("sip:a@b.example", headers={"X-Account": "42"}))
    with pytest.raises(InvalidDestination, match="not a valid SIP header name"):
        SipDestination("sip:a@b.example", headers={"X Account": "1"})
    with pytest.raises(InvalidDestination, match="without line breaks"):
        SipDestination("sip:a@b.example", headers={"X-Account": "1\r\nVia: evil"})
    for control in ("\x00", "\x0b", "\x7f", "\n"):
        with pytest.raises(InvalidDestination, match="control characters"):
            SipDestination("sip:a@b.example", headers={"X-Account": f"1{control}2"})
    assert SipDestination("sip:a@b.example", headers={"X-Note": "a\tb"}).headers == {"X-Note": "a\tb"}
    with pytest.raises(InvalidDestination, match="must be a dict"):
        SipDestination("sip:a@b.example", headers=[("X-A", "1")])  # type: ignore[arg-type]


def test_assistant_destination() -> None:
    assert AssistantDestination("Billing", history="rolling-history").history == "rolling-history"
    with pytest.raises(InvalidDestination, match="history mode"):
        AssistantDestination("Billing", history="keep-it")
    with pytest.raises(InvalidDestination, match="name is empty"):
        AssistantDestination("")


def test_destinations_are_immutable() -> None:
    destination = NumberDestination("+31612345678")
    with pytest.raises(dataclasses.FrozenInstanceError):
        destination.number = "+31687654321"  # type: ignore[misc]


def test_describe_masks_numbers() -> None:
    assert NumberDestination("+31612345678").describe() == "number +3161****678"
    assert SipDestination("sip:+31612345678@pbx.example.com").describe() == (
        "SIP sip:+3161****678@pbx.example.com"
    )


def test_transfer_request_is_frozen_and_defaults_are_empty() -> None:
    call = TransferRequest(platform="vapi", event="transfer-destination-request", caller="+31612345678")
    assert (call.text, call.transcript, call.messages, call.arguments, call.metadata, call.raw) == (
        "",
        "",
        [],
        {},
        {},
        {},
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.call_id = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del call.platform
    assert "+31612345678" not in repr(call)
    assert "+3161****678" in repr(call)


def test_a_caller_id_name_is_one_line_of_printable_characters() -> None:
    # It travels in a SIP From header: a line break there would start a header of the caller's.
    for name in ("Sales\r\nX-Injected: 1", "Sales\x00", "Sales\x0b"):
        with pytest.raises(InvalidDestination, match="control characters"):
            NumberDestination("+31612345678", caller_id_name=name)
    assert NumberDestination("+31612345678", caller_id_name="Sales \u00e9").caller_id_name == "Sales \u00e9"
