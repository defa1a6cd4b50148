"""Phone numbers: normalise to E.164, validate, and mask for log lines.

This is the only module that imports :mod:`phonenumbers`, so the rest of the package deals in plain
E.164 strings.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import phonenumbers

from . import messages
from .exceptions import InvalidDestination

#: Characters people write inside phone numbers besides digits. A string made of digits and these
#: (optionally after a leading ``+``) is treated as a number, anything else as a name.
_NUMBER_LIKE = re.compile(r"^\+?[0-9(][0-9 ().\-/]*$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
#: Vapi's pattern for numbers sent with ``numberE164CheckEnabled: false`` (trunk short codes).
_NON_E164 = re.compile(r"^\+?[a-zA-Z0-9]+$")


def looks_like_number(text: str) -> bool:
    """Whether ``text`` is written like a phone number rather than like a name."""
    return bool(_NUMBER_LIKE.match(text.strip()))


def is_region(region: str) -> bool:
    """Whether ``region`` is a two-letter region code phonenumbers knows, such as ``"NL"``."""
    return region.upper() in phonenumbers.SUPPORTED_REGIONS


def normalise(number: str, region: str | None = None) -> str:
    """Return ``number`` in E.164 form, or raise :class:`InvalidDestination`.

    :param number: an international number (``"+31 6 12345678"``) or, with ``region``, a national
        one (``"06 12345678"``).
    :param region: the two-letter region used for national numbers.
    """
    if not isinstance(number, str) or not number.strip():
        raise InvalidDestination(messages.number_empty())
    text = number.strip()
    if not text.startswith("+") and region is None:
        if looks_like_number(text):
            raise InvalidDestination(messages.number_needs_region(text))
        raise InvalidDestination(messages.number_unparseable(text, "it is not written as a number"))
    try:
        parsed = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidDestination(messages.number_unparseable(text, str(exc))) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidDestination(messages.number_invalid(text))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_non_e164(number: str) -> str:
    """Validate a number sent without the E.164 check, the form Vapi allows for SIP trunks."""
    text = number.strip() if isinstance(number, str) else ""
    if not (3 <= len(text) <= 40) or not _NON_E164.match(text):
        raise InvalidDestination(messages.number_non_e164_invalid(text))
    return text


@functools.lru_cache(maxsize=4096)
def to_e164_or_raw(number: str | None, region: str | None = None) -> str | None:
    """Normalise a number from a payload without ever raising.

    Returns the E.164 form when the number parses, the stripped original otherwise, and ``None``
    for an absent or empty value. Callers repeat across a call, hence the small cache.
    """
    if not isinstance(number, str):
        return None
    text = number.strip()
    if not text:
        return None
    if _E164.match(text):
        return text
    try:
        parsed = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(parsed):
        return text
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


#: Phone numbers inside free text: international (``+31 6 1234 5678``), long digit runs, and
#: national numbers starting with 0. Runs inside ids (``...-446655440000``) are left alone.
# International (+31 20 ...), national with a trunk 0 (020 794 8450), with the area code in
# brackets ((020) 794 8450, (415) 555-0123), North American with dots or dashes (415.555.0123),
# and bare digit runs; any Unicode space (no-break spaces too) may separate the groups.
_IN_TEXT = re.compile(
    # A "+" starts a number wherever it stands, after a word or dash too ("desk-+31612345678"), and
    # so does its URL-encoded form; the other forms only where no word, id or number runs into them.
    r"(?<![*+])(?:\++|%2[Bb])\d[\d\s().\-/]{5,}\d(?![\w\-*])"
    r"|(?<![\w\-*+.])(?:"
    r"\(\d{2,5}\)[\s.\-]*\d[\d\s.\-]{4,}\d"
    r"|0\d[\d\s.\-/]{6,}\d"
    r"|\d{3}[.\-\s]\d{3}[.\-\s]\d{4}"
    r"|\d{9,15}"
    r")(?![\w\-*])"
)


#: Any run of digits and the separators people and transcripts write numbers with. Stricter than
#: the log masker: a hand-off goes to another person, so a run of seven digits or more is
#: withheld even where a log line would keep it.
_DIGIT_RUN = re.compile(r"\+?[\d(][\d\s().\-/\u00b7_]*\d")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _own_forms(number: str | None) -> frozenset[str]:
    """The digit strings the caller's own number may be written as: international, with 00, and
    national with or without its trunk 0."""
    if not number:
        return frozenset()
    digits = re.sub(r"\D", "", number)
    forms = {digits, "00" + digits}
    try:
        national = str(phonenumbers.parse(number).national_number)
    except phonenumbers.NumberParseException:
        return frozenset(forms)
    return frozenset(forms | {national, "0" + national})


def withhold_numbers(text: str, *, keep: str | None, replacement: str) -> str:
    """``text`` with every run of seven or more digits (a phone number in any form: spaced out,
    dotted, bracketed, fullwidth) replaced by ``replacement``, except the number ``keep`` in any
    of its own forms and ISO dates. The text is NFKC-normalised first, so fullwidth digits and
    signs count as digits."""
    text = unicodedata.normalize("NFKC", text)
    own = _own_forms(keep)

    def swap(match: re.Match[str]) -> str:
        found = match.group(0)
        digits = re.sub(r"\D", "", found)
        if len(digits) < 7 or digits in own or _ISO_DATE.fullmatch(found):
            return found
        return replacement

    return _DIGIT_RUN.sub(swap, text)


_TYPES = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "fixed line",
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed line or mobile",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared cost",
    phonenumbers.PhoneNumberType.VOIP: "VoIP",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.UAN: "UAN",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail",
}


def number_type(number: str) -> str:
    """The kind of an E.164 number, such as ``"mobile"`` or ``"premium rate"``; ``"unknown"``."""
    try:
        return _TYPES.get(phonenumbers.number_type(phonenumbers.parse(number)), "unknown")
    except phonenumbers.NumberParseException:
        return "unknown"


#: A UUID with at least one letter (nearly every platform's call id): no number can be found in
#: it, since a number must start at its beginning and run to its end, and a letter breaks it.
_PLAIN_UUID = re.compile(
    r"(?=[0-9a-f-]*[a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


def mask_text(text: str) -> str:
    """Mask every phone number found in ``text``, for log lines whose content we do not control."""
    if len(text) == 36 and _PLAIN_UUID.fullmatch(text):
        # A fifth of the time of the search below, on the call id of every decision line.
        return text
    return _IN_TEXT.sub(lambda match: mask(match.group(0)), text)


def mask(number: object) -> str:
    """Mask a phone number for a log line: ``"+31612345678"`` becomes ``"+3161****678"``.

    Anything that is not a string comes back as ``"-"``; short values are masked completely, so no
    more than eight characters of any value ever reach a log line.
    """
    if not isinstance(number, str) or not number:
        return "-"
    if number.startswith(("sip:", "sips:")):
        scheme, _, rest = number.partition(":")
        user, at, host = rest.partition("@")
        return f"{scheme}:{mask(user) if at else '****'}{at}{host if at else ''}"
    if len(number) <= 8:
        return "****"
    return f"{number[:5]}****{number[-3:]}"
