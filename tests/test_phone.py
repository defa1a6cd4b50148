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


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "There is no destination named 'desk-+31612345678'.",
            "There is no destination named 'desk-+3161****678'.",
        ),
        ("to=%2B31612345678&x=1", "to=%2B31****678&x=1"),
        ("name+31612345678", "name+3161****678"),
        ("++31612345678", "++316****678"),
        # Ids are left alone, masked numbers too.
        ("call 0d8f3c1e-5b1a-4c3e-9f7a-123456789012", "call 0d8f3c1e-5b1a-4c3e-9f7a-123456789012"),
        ("+3161****678", "+3161****678"),
    ],
)
def test_numbers_in_text_are_masked_wherever_a_plus_starts_them(text: str, masked: str) -> None:
    assert phone.mask_text(text) == masked


def test_call_ids_that_are_uuids_take_the_short_way_and_lose_nothing() -> None:
    import random
    import uuid

    from flask_calltransfer.phone import _IN_TEXT

    def slow(text: str) -> str:
        return _IN_TEXT.sub(lambda match: phone.mask(match.group(0)), text)

    rng = random.Random(7)
    samples = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(2000)]
    # All digits: the short way must not take these, a number may hide in them.
    samples += ["01234567-1234-1234-1234-123456789012", "31612345-6789-0123-4567-890123456789"]
    samples += [s.upper() for s in samples[:50]]
    for text in samples:
        assert phone.mask_text(text) == slow(text), text
    assert phone.mask_text("01234567-1234-1234-1234-123456789012") != "01234567-1234-1234-1234-123456789012"
