"""Outbound HTTP with deadlines and retries, shared by the platform API clients.

A transfer is on a live call's critical path, so every attempt has one total deadline (connect,
headers and body together) and a response size cap, redirects are failures, and a request is
retried only when it cannot have run: the connection was refused, or the API answered 429. A POST
answered 5xx may have been carried out, so it is not repeated unless
``CALLTRANSFER_HTTP_RETRY_SERVER_ERRORS`` says so; idempotent methods are. Retries stop at the
call's deadline: a retry that could not finish in time is not started.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import threading
import time
import typing as t
import zlib

import httpx

from .. import messages
from ..exceptions import CallTransferError
from ..logs import logger
from .network import attempt_deadline
from .network import transport as deadline_transport

#: Backoff before the first retry; doubled each time, up to :data:`MAX_BACKOFF`.
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 2.0


class ApiError(CallTransferError):
    """A platform API request failed: an error status, a timeout, or no connection.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: t.Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        #: The HTTP status, or ``None`` when no response arrived.
        self.status = status
        #: The platform's error code, such as ``"rate_limit_exceeded"``, when it sent one.
        self.code = code
        #: Further details the platform sent (a list of field errors, a parameter name, ...).
        self.details = details
        #: Seconds the platform asked to wait before retrying, for 429 answers.
        self.retry_after = retry_after


def retry_after(response: httpx.Response, now: float) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds: a number or an HTTP date."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def parse_error(response: httpx.Response, content: bytes | None = None) -> ApiError:
    """Turn an error response into :class:`ApiError`, reading both error-body shapes.

    ``{"error": {"code", "message", "param", "type"}}`` and ``{"error": "...", "message": ...,
    "details": [...]}``; anything else keeps the status and a short reason.

    :param content: the body, when the response was streamed; else ``response.content``.
    """
    code: str | None = None
    text: str | None = None
    details: t.Any = None
    try:
        body = json.loads(content if content is not None else response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), str) else None
            text = error.get("message") if isinstance(error.get("message"), str) else None
            details = {k: v for k, v in error.items() if k in ("param", "type") and v is not None} or None
        elif isinstance(error, str):
            code = error
            text = body.get("message") if isinstance(body.get("message"), str) else None
            details = body.get("details")
        elif isinstance(body.get("message"), str):
            text = body["message"]
    reason = text or code or response.reason_phrase or "no reason given"
    return ApiError(
        messages.api_error(
            response.request.method, url_path(response.request.url), response.status_code, reason
        ),
        status=response.status_code,
        code=code,
        details=details,
        retry_after=retry_after(response, time.time()),
    )


@dataclasses.dataclass(frozen=True)
class HttpSettings:
    """Timeouts and retries for outbound requests.

    :meta private:
    """

    #: Seconds one attempt may take.
    timeout: float = 5.0
    #: Retries after the first attempt.
    retries: int = 2
    #: Seconds a whole call (all attempts and waits) may take unless the caller gives a deadline.
    budget: float = 8.0
    #: Bytes of a response body read at the most; a longer answer is a failure.
    max_response_bytes: int = 1024 * 1024
    #: Repeat a non-idempotent request (POST, PATCH) after a 5xx, although it may have run.
    retry_server_errors: bool = False


#: Methods that may be repeated after a 5xx: sending them twice does what sending them once does.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class _TooLarge(Exception):
    pass


class _BadEncoding(Exception):
    pass


class HttpClient:
    """A small JSON-over-HTTP client with deadlines and retries, on one lazily made httpx client.

    The httpx client is made on first use in each process, so a gunicorn worker never shares a
    connection pool with the master it was forked from.
    """

    def __init__(
        self,
        settings: HttpSettings,
        *,
        sleep: t.Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _httpx(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    transport=self._transport or deadline_transport(), follow_redirects=False
                )
            return self._client

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: t.Any = None,
        headers: t.Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> t.Any:
        """Send a request and return its decoded JSON body (``None`` for an empty one).

        :param deadline: a :func:`time.monotonic` time by which everything must be done; defaults
            to now plus the configured budget.
        :raises ApiError: for an error status after the last retry, a timeout, or no connection.
        """
        deadline = deadline if deadline is not None else time.monotonic() + self.settings.budget
        path = url_path(url)
        backoff = FIRST_BACKOFF
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(messages.api_deadline(method, path))
            timeout = min(self.settings.timeout, remaining)
            try:
                response, content = self._attempt(method, url, json_body, headers, timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing was sent, so trying again cannot run a command twice.
                failure = ApiError(messages.api_unreachable(method, path, type(exc).__name__))
                wait = backoff
            except httpx.TimeoutException:
                raise ApiError(messages.api_timeout(method, path, timeout)) from None
            except _TooLarge:
                raise ApiError(
                    messages.api_too_large(method, path, self.settings.max_response_bytes)
                ) from None
            except _BadEncoding as exc:
                raise ApiError(messages.api_bad_encoding(method, path, str(exc))) from None
            except httpx.HTTPError as exc:
                raise ApiError(messages.api_unreachable(method, path, type(exc).__name__)) from None
            else:
                status = response.status_code
                if status < 300:
                    return _decode(response, content)
                if status < 400:
                    raise ApiError(messages.api_redirect(method, path, status), status=status)
                failure = parse_error(response, content)
                if status == 429:
                    # Turned away before it ran: repeating it is safe.
                    wait = failure.retry_after if failure.retry_after is not None else backoff
                elif status >= 500 and (method.upper() in IDEMPOTENT or self.settings.retry_server_errors):
                    wait = failure.retry_after if failure.retry_after is not None else backoff
                else:
                    raise failure
            attempt += 1
            if attempt > self.settings.retries:
                raise failure
            if time.monotonic() + wait >= deadline:
                logger.warning(messages.api_no_time_to_retry(method, path, wait))
                raise failure
            logger.info(messages.api_retrying(method, path, str(failure), wait))
            self._sleep(wait)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _attempt(
        self,
        method: str,
        url: str,
        json_body: t.Any,
        headers: t.Mapping[str, str] | None,
        timeout: float,
    ) -> tuple[httpx.Response, bytes]:
        """One request, whose connect, headers and body share ``timeout``; reads at most the cap."""
        cap = self.settings.max_response_bytes
        # Asked for uncompressed, and counted as sent: a small compressed body can unpack to
        # gigabytes, in C code no deadline reaches.
        headers = {**(headers or {}), "Accept-Encoding": "identity"}
        with attempt_deadline(time.monotonic() + timeout):
            with self._httpx().stream(
                method, url, json=json_body, headers=headers, timeout=timeout
            ) as response:
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > cap:
                    raise _TooLarge()
                chunks = []
                size = 0
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > cap:
                        raise _TooLarge()
                    chunks.append(chunk)
        return response, _unpack(b"".join(chunks), response.headers.get("Content-Encoding", ""), cap)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _unpack(raw: bytes, encoding: str, cap: int) -> bytes:
    """The body under one gzip or deflate layer, at most ``cap`` bytes of it; a server that
    compresses although asked not to gets one layer, never a stack."""
    layers = [
        name.strip().lower() for name in encoding.split(",") if name.strip().lower() not in ("", "identity")
    ]
    if not layers:
        return raw
    if len(layers) > 1 or layers[0] not in ("gzip", "x-gzip", "deflate"):
        raise _BadEncoding(encoding)
    unpacker = zlib.decompressobj(wbits=31 if layers[0] != "deflate" else 15)
    try:
        body = unpacker.decompress(raw, cap + 1)
    except zlib.error:
        raise _BadEncoding(encoding) from None
    if len(body) > cap or unpacker.unconsumed_tail:
        raise _TooLarge()
    return body


def url_path(url: str | httpx.URL) -> str:
    """The path of a URL: only the path reaches logs and messages, as query strings may carry tokens."""
    return httpx.URL(url).path


def _decode(response: httpx.Response, content: bytes) -> t.Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(
            messages.api_bad_body(
                response.request.method, url_path(response.request.url), response.status_code
            ),
            status=response.status_code,
        ) from None
