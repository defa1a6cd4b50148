"""Request verifiers: shared secrets and HMAC signatures.

Every comparison is constant-time and every secret setting takes a list, so a secret can be rotated
without downtime: configure the old and the new one, switch the platform, then drop the old one.
Verifiers read the raw body bytes, never re-serialised JSON, because a signature covers the exact
bytes the platform sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import string
import time
import typing as t

from . import messages
from .exceptions import RequestVerificationFailed


class RequestParts(t.Protocol):
    """The parts of a request a verifier reads (:class:`~flask_calltransfer.platforms.Inbound`).

    :meta private:
    """

    @property
    def headers(self) -> t.Mapping[str, str]: ...

    @property
    def body(self) -> bytes: ...

    @property
    def method(self) -> str: ...

    @property
    def url(self) -> str: ...


class Verifier(t.Protocol):
    """What a platform's request verifier does.

    :meta private:
    """

    def verify(self, request: RequestParts) -> None:
        """Return if the request is authentic; raise :class:`RequestVerificationFailed` if not."""


def matches_any(candidate: bytes, expected: t.Iterable[bytes]) -> bool:
    """Constant-time check of ``candidate`` against every expected value.

    All values are compared, so the time taken does not reveal which secret matched.
    """
    found = False
    for value in expected:
        found |= hmac.compare_digest(candidate, value)
    return found


class SharedSecretVerifier:
    """Accepts a request that carries one of the secrets in a header, or as a Bearer token.

    :param secrets: the accepted secrets.
    :param header: the header that carries the secret as-is (Vapi ``X-Vapi-Secret``, sipgate
        ``X-API-TOKEN``).
    :param bearer: also accept ``Authorization: Bearer <secret>``.
    """

    def __init__(self, secrets: t.Sequence[str], *, header: str, bearer: bool = False) -> None:
        self._secrets = tuple(s.encode() for s in secrets)
        self._header = header
        self._bearer = bearer

    def verify(self, request: RequestParts) -> None:
        headers = request.headers
        sent = headers.get(self._header)
        where = self._header
        if sent is None and self._bearer:
            scheme, _, token = headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and token:
                sent, where = token.strip(), "Authorization"
        if not sent:
            where = f"{self._header} or Authorization" if self._bearer else self._header
            raise RequestVerificationFailed(messages.secret_missing(where), credential_sent=False)
        if not matches_any(sent.encode("utf-8", "surrogateescape"), self._secrets):
            raise RequestVerificationFailed(messages.secret_mismatch(where))


#: Placeholders an HMAC payload format may use.
PAYLOAD_PLACEHOLDERS: t.Final[frozenset[str]] = frozenset({"timestamp", "body", "method", "url"})
ALGORITHMS: t.Final[frozenset[str]] = frozenset({"sha1", "sha256", "sha512"})
ENCODINGS: t.Final[frozenset[str]] = frozenset({"hex", "base64"})


def placeholders(payload_format: str) -> set[str]:
    """The ``{names}`` used by an HMAC payload format."""
    return {name for _, name, _, _ in string.Formatter().parse(payload_format) if name is not None}


class HmacVerifier:
    """Accepts a request whose signature header is an HMAC of the formatted payload.

    :param secrets: the accepted signing secrets.
    :param algorithm: ``"sha256"``, ``"sha512"`` or ``"sha1"``.
    :param signature_header: the header carrying the signature.
    :param timestamp_header: the header carrying the timestamp, or ``None`` if none is signed.
    :param payload_format: what is signed, with ``{timestamp}``, ``{body}``, ``{method}`` and ``{url}``.
    :param encoding: ``"hex"`` or ``"base64"``.
    :param prefix: a prefix in front of the signature, such as ``"sha256="``; optional on input.
    :param max_age: reject timestamps further than this many seconds from now; ``None`` disables
        the replay window. Timestamps in milliseconds are recognised.
    :param clock: the time source, for tests.
    """

    def __init__(
        self,
        secrets: t.Sequence[str],
        *,
        algorithm: str = "sha256",
        signature_header: str,
        timestamp_header: str | None,
        payload_format: str = "{timestamp}.{body}",
        encoding: str = "hex",
        prefix: str = "",
        max_age: float | None = 300,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        self._secrets = tuple(s.encode() for s in secrets)
        # An unknown name fails here, at init_app, not at the first request.
        getattr(hashlib, algorithm)
        # One keyed HMAC per secret, copied for each request: the key schedule and OpenSSL's
        # look-up of the digest by name are done once, not on every webhook.
        self._keyed = tuple(hmac.new(secret, digestmod=algorithm) for secret in self._secrets)
        self._signature_header = signature_header
        self._timestamp_header = timestamp_header
        self._format = payload_format
        self._uses = placeholders(payload_format)
        self._encoding = encoding
        self._prefix = prefix
        self._max_age = max_age
        self._clock = clock

    def _timestamp(self, headers: t.Mapping[str, str]) -> str:
        if self._timestamp_header is None:
            return ""
        sent = headers.get(self._timestamp_header)
        if sent is None:
            if "timestamp" in self._uses or self._max_age is not None:
                raise RequestVerificationFailed(messages.timestamp_missing(self._timestamp_header))
            return ""
        if self._max_age is not None:
            try:
                value = float(sent)
            except ValueError:
                raise RequestVerificationFailed(messages.timestamp_invalid(self._timestamp_header)) from None
            if value != value or value in (float("inf"), float("-inf")):
                raise RequestVerificationFailed(messages.timestamp_invalid(self._timestamp_header))
            # Seconds since 1970 pass 1e11 only in the year 5138: anything larger is milliseconds.
            seconds = value / 1000 if value > 1e11 else value
            age = abs(self._clock() - seconds)
            if age > self._max_age:
                raise RequestVerificationFailed(
                    messages.timestamp_stale(self._timestamp_header, age, self._max_age)
                )
        return sent

    def _decode(self, signature: str) -> bytes | None:
        if self._prefix and signature.startswith(self._prefix):
            signature = signature[len(self._prefix) :]
        signature = signature.strip()
        try:
            if self._encoding == "hex":
                return bytes.fromhex(signature)
            return base64.b64decode(signature, validate=True)
        except (ValueError, binascii.Error):
            return None

    def verify(self, request: RequestParts) -> None:
        signature = request.headers.get(self._signature_header)
        if not signature:
            raise RequestVerificationFailed(
                messages.signature_missing(self._signature_header), credential_sent=False
            )
        timestamp = self._timestamp(request.headers)
        sent = self._decode(signature)
        if sent is None:
            raise RequestVerificationFailed(messages.signature_mismatch(self._signature_header))
        if self._format == "{timestamp}.{body}":
            message = timestamp.encode() + b"." + request.body
        else:
            url = request.url if "url" in self._uses else ""
            message = self.signed_bytes(request.body, timestamp=timestamp, method=request.method, url=url)
        found = False
        for keyed in self._keyed:
            # Every secret is compared, so the time taken does not tell which one matched.
            mac = keyed.copy()
            mac.update(message)
            found |= hmac.compare_digest(sent, mac.digest())
        if not found:
            raise RequestVerificationFailed(messages.signature_mismatch(self._signature_header))

    def signed_bytes(self, body: bytes, *, timestamp: str, method: str = "POST", url: str = "") -> bytes:
        """The exact bytes that are signed: the payload format filled in, with the raw body."""
        if self._format == "{body}":
            return body
        if self._format == "{timestamp}.{body}":
            return timestamp.encode() + b"." + body
        # Split around {body} so the raw bytes are signed exactly, whatever their encoding.
        head, _, tail = self._format.partition("{body}")
        values = {"timestamp": timestamp, "method": method, "url": url, "body": ""}
        parts = [head.format(**values).encode()]
        if "{body}" in self._format:
            parts += [body, tail.format(**values).encode()]
        return b"".join(parts)


class AnyOf:
    """Accepts a request that any one of several verifiers accepts.

    Used when a platform is configured with more than one credential kind, for example a Vapi
    shared secret during a move to HMAC signatures.
    """

    def __init__(self, verifiers: t.Sequence[Verifier]) -> None:
        self._verifiers = tuple(verifiers)

    def verify(self, request: RequestParts) -> None:
        failures: list[RequestVerificationFailed] = []
        for verifier in self._verifiers:
            try:
                verifier.verify(request)
            except RequestVerificationFailed as exc:
                failures.append(exc)
            else:
                return
        # The log names the credential that was sent and failed, not one that was never sent.
        sent = [failure for failure in failures if failure.credential_sent]
        raise (sent or failures or [RequestVerificationFailed(messages.verification_failed())])[0]
