"""Decoding webhook bodies within bounds: JSON objects and HTML form fields.

A body that passed the size limit can still cost far more to decode than to receive: a million
tiny JSON values, nesting deep enough to exhaust the stack, or a form of a million empty fields.
Each decoder refuses those before it builds them, with :class:`~flask_calltransfer.PayloadTooLarge`
or :class:`~flask_calltransfer.InvalidPayload`.
"""

from __future__ import annotations

import json
import re
import typing as t
import urllib.parse

from . import messages
from .exceptions import InvalidPayload
from .exceptions import PayloadTooLarge


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every request; NaN and Infinity are not JSON and no platform sends them.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


# A JSON string, escapes included: what is inside one is text, not structure. Possessive, and an
# unterminated string runs to the end: otherwise every later quote starts a scan to the end of
# the body again, and a body of escaped quotes takes minutes (quadratic time, holding the GIL).
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.S)


def _values_at_most(body: bytes, limit: int) -> bool:
    """Whether ``body`` holds at most ``limit`` JSON values, decided without building any.

    Every value but the first follows a ``[``, a ``{`` or a ``,``, and takes at least two bytes
    with its separator: ``n`` bytes hold at most ``n // 2 + 1`` values. So a body under
    ``2 * limit`` bytes is never scanned, and a larger one is counted from its start only until
    the count so far plus that bound for the bytes not yet counted falls under the limit: a fifth
    of a 500 KB Vapi artifact instead of all of it, where counting was a tenth of the request.
    """
    size = len(body)
    counted = end = 0
    while end < size:
        room = limit - counted - 2
        if (size - end) // 2 < room:
            return True
        # As far as would settle it were the next bytes free of openings, and at least 64 KB so
        # a dense stretch is not counted in slivers.
        stop = min(size, max(size - 2 * room + 2, end + 65_536))
        counted += _openings(body[end:stop])
        end = stop
    if counted < limit:
        return True
    # Commas and brackets inside strings counted too: count again without the strings.
    return _openings(_STRING.sub(b"", body)) < limit


def _openings(data: bytes) -> int:
    # One pass in C over the body instead of three counts: half the time on a 500 KB body.
    return len(data) - len(data.translate(None, b",[{"))


def decode_json(body: bytes, max_values: int | None = None) -> dict[str, t.Any]:
    """Decode a webhook body into a JSON object, or raise :class:`InvalidPayload` (or
    :class:`PayloadTooLarge` for more than ``max_values`` JSON values)."""
    if not body or body.isspace():
        raise InvalidPayload(messages.body_empty(), {"_body": ["Empty body."]})
    if max_values is not None and len(body) >= 2 * max_values and not _values_at_most(body, max_values):
        raise PayloadTooLarge(messages.body_too_many_values(max_values))
    try:
        payload = _DECODER.decode(body.decode("utf-8"))
    except RecursionError:
        raise InvalidPayload(messages.body_too_deep(), {"_body": ["Nested too deeply."]}) from None
    except ValueError as exc:
        # UnicodeDecodeError is a ValueError too: bodies that are not UTF-8 land here.
        detail = str(exc).splitlines()[0][:120]
        raise InvalidPayload(messages.body_not_json(detail), {"_body": ["Not valid JSON."]}) from None
    if not isinstance(payload, dict):
        raise InvalidPayload(messages.body_not_object(), {"_body": ["Not a JSON object."]})
    return payload


def decode_form(body: bytes, max_values: int | None = None) -> dict[str, str | list[str]]:
    """Decode an ``application/x-www-form-urlencoded`` body into its fields, or raise
    :class:`InvalidPayload` (or :class:`PayloadTooLarge` for more than ``max_values`` fields).

    A field sent once maps to its value, a field sent several times to the list of its values in
    the order sent. Blank values are kept: a signature over the fields counts them.

    .. versionadded:: 0.1
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload(messages.body_not_form(), {"_body": ["Not UTF-8 form data."]}) from None
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=max_values)
    except ValueError:
        raise PayloadTooLarge(messages.body_too_many_values(max_values or 0)) from None
    fields: dict[str, str | list[str]] = {}
    for name, value in pairs:
        seen = fields.get(name)
        if seen is None:
            fields[name] = value
        elif isinstance(seen, list):
            seen.append(value)
        else:
            fields[name] = [seen, value]
    return fields
