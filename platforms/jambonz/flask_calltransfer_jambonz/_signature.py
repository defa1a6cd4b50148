"""The ``Jambonz-Signature`` header: ``t=<unix seconds>,v1=<hex>``, where v1 is the lowercase hex
HMAC-SHA256 of ``"<t>." + raw body`` under the account's webhook secret.

jambonz-feature-server builds it in ``lib/utils/base-requestor.js`` (``_generateSigHeader``) and
posts ``JSON.stringify(payload)`` as the body, so the signed bytes are exactly the raw body: it is
never re-serialised here.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import typing as t

from flask_calltransfer import RequestVerificationFailed

from . import _messages as msg

#: The header jambonz signs its webhooks with; werkzeug looks it up case-insensitively.
HEADER: t.Final = "Jambonz-Signature"

# Unix seconds, as jambonz writes them (Math.floor(Date.now() / 1000)): digits only, so the
# signed prefix is the header's own text and int() never sees a sign, a space or an underscore.
_MAX_TIMESTAMP_DIGITS = 12


class _Request(t.Protocol):
    @property
    def headers(self) -> t.Mapping[str, str]: ...

    @property
    def body(self) -> bytes: ...


def parse_header(header: str) -> tuple[str, list[bytes]]:
    """The timestamp and every ``v1`` signature of a ``Jambonz-Signature`` header.

    jambonz sends one ``v1``; jambonz's Node verifiers accept any of several (as Stripe's scheme
    does, for a signer that holds two secrets at once), so every one is kept. Unknown schemes are
    ignored, for the same reason.

    :raises RequestVerificationFailed: if the header has no single timestamp or no ``v1``.
    """
    timestamps: list[str] = []
    signatures: list[bytes] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise RequestVerificationFailed(msg.signature_malformed(HEADER, f"{key[:20]!r} has no '='"))
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            # Hex, lowercase as jambonz writes it; an uppercase copy is the same signature.
            signatures.append(value.strip().lower().encode("utf-8", "surrogateescape"))
    if len(timestamps) != 1:
        raise RequestVerificationFailed(
            msg.signature_malformed(HEADER, f"it has {len(timestamps)} timestamps (t=) instead of one")
        )
    timestamp = timestamps[0]
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS):
        raise RequestVerificationFailed(msg.signature_malformed(HEADER, "t= is not a number of seconds"))
    if not signatures:
        raise RequestVerificationFailed(msg.signature_malformed(HEADER, "it has no v1= signature"))
    return timestamp, signatures


class JambonzSignatureVerifier:
    """Accepts a request whose ``Jambonz-Signature`` carries a ``v1`` signature of its raw body
    under any of ``secrets``, with a timestamp at most ``max_age`` seconds from now, either way.

    jambonz's older Node verifier let future timestamps through and the Python SDK does too; the
    newer Node SDK (``@jambonz/sdk``) checks ``|now - t|``, as this does: a signature made for
    later is a replay prepared in advance.

    :param secrets: the accepted webhook secrets: the current one, and the previous one while a
        rotation is under way (jambonz replaces the secret at once, with no overlap of its own).
    :param max_age: the window in seconds, both ways.
    :param clock: the time source, for tests.

    .. versionadded:: 0.1
    """

    def __init__(
        self, secrets: t.Sequence[str], *, max_age: float = 300, clock: t.Callable[[], float] = time.time
    ) -> None:
        # One keyed HMAC per secret, copied per request: the key schedule is done once.
        self._keyed = tuple(hmac.new(secret.encode(), digestmod=hashlib.sha256) for secret in secrets)
        self._max_age = max_age
        self._clock = clock

    def verify(self, request: _Request) -> None:
        """Return if the request is signed; raise :class:`~flask_calltransfer.RequestVerificationFailed`
        with a sentence for the log if not."""
        header = request.headers.get(HEADER)
        if not header:
            raise RequestVerificationFailed(msg.signature_missing(HEADER), credential_sent=False)
        timestamp, signatures = parse_header(header)
        # Checked before the HMAC: a stale request costs no hashing. jambonz retries a webhook with
        # its first attempt's header, seconds later, well inside the window.
        age = self._clock() - int(timestamp)
        if abs(age) > self._max_age:
            raise RequestVerificationFailed(msg.timestamp_outside(HEADER, age, self._max_age))
        message = timestamp.encode() + b"." + request.body
        found = False
        for keyed in self._keyed:
            mac = keyed.copy()
            mac.update(message)
            expected = mac.hexdigest().encode()
            # Every secret against every signature: the time taken tells nothing about which matched.
            for signature in signatures:
                found |= hmac.compare_digest(signature, expected)
        if not found:
            raise RequestVerificationFailed(msg.signature_mismatch(HEADER))
