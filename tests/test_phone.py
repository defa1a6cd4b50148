"""Number helpers: masking for logs, tolerant normalisation of payload numbers."""

from __future__ import annotations

import pytest

from flask_calltransfer import phone


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+31612345678", "+3161****678"),
        ("+14155550100", "+1415****100"),
        ("12345678", "****"),
        ("", "-"),
        (None, "-"),
        ("sip:+31612345678@pbx.example.com", "sip:+3161****678@pbx.example.com"),
        ("sip:pbx.example.com", "sip:****"),
    ],
)
def test_mask(value: object, masked: str) -> None:
    assert phone.mask(value) == masked


def test_to_e164_or_raw() -> None:
    assert phone.to_e164_or_raw("+31612345678") == "+31612345678"
    assert phone.to_e164_or_raw("06 12345678", "NL") == "+31612345678"
    assert phone.to_e164_or_raw("06 12345678") == "06 12345678"
    assert phone.to_e164_or_raw("anonymous") == "anonymous"
    assert phone.to_e164_or_raw("  ") is None
    assert phone.to_e164_or_raw(None) is None
    assert phone.to_e164_or_raw(42) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+31 6 1234", True),
        ("020-794 8400", True),
        ("(415) 555", True),
        ("sales", False),
        ("2nd line", False),
    ],
)
def test_looks_like_number(text: str, expected: bool) -> None:
    assert phone.looks_like_number(text) is expected
