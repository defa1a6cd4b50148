"""Twilio requests as Twilio sends them, signed with the twilio library's own RequestValidator."""

from __future__ import annotations

import typing as t
import urllib.parse

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

TOKEN = "twilio-auth-token-0123456789abcdef"
URL = "http://localhost/calltransfer/twilio"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def fields(**extra: str) -> dict[str, str]:
    """The standard parameters of a voice webhook for an inbound call, then ``extra``."""
    base = {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + "1" * 32,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": "+31612345678",
        "To": "+31850835037",
    }
    base.update(extra)
    return base


def handoff(
    text: str = "I want to talk to sales.", caller: str = "+31612345678", **extra: str
) -> dict[str, str]:
    """ConversationRelay's ``<Connect action>`` request after the app ended the session with
    ``handoffData`` carrying ``text`` as its reason."""
    params = fields(
        CallStatus="in-progress",
        From=caller,
        SessionId="VX" + "2" * 32,
        SessionStatus="ended",
        SessionDuration="42",
        HandoffData=f'{{"reason": "{text}", "reasonCode": "live-agent-handoff"}}',
    )
    params.update(extra)
    return params


def encode(params: t.Mapping[str, str] | t.Sequence[tuple[str, str]]) -> bytes:
    return urllib.parse.urlencode(params).encode()


def signature(body: bytes, url: str = URL, token: str = TOKEN) -> str:
    """What Twilio sends in ``X-Twilio-Signature`` for ``body`` posted to ``url``, computed by
    twilio-python (the form fields as Flask's MultiDict, as its docs pass them)."""
    try:
        pairs = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        pairs = []
    return str(RequestValidator(token).compute_signature(url, MultiDict(pairs)))


def signed(body: bytes, url: str = URL, token: str = TOKEN) -> dict[str, str]:
    return {**FORM, "X-Twilio-Signature": signature(body, url, token)}
