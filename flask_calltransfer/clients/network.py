"""A network layer for httpx whose every socket operation stops at one total deadline.

httpx's timeouts apply to each socket operation: a server that sends one byte a second never
trips a 5 s read timeout and holds the caller for as long as it likes. Here each connect, read
and write waits at most until the attempt's deadline (set with :func:`attempt_deadline`), so
connecting, the headers and the body together take no longer than the attempt's budget.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import time
import typing as t

import httpcore

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "calltransfer_http_deadline", default=None
)


@contextlib.contextmanager
def attempt_deadline(deadline: float) -> t.Iterator[None]:
    """Socket operations in this block stop at ``deadline`` (a :func:`time.monotonic` time)."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("The request's total deadline passed.")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(
            self._stream.start_tls(ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout))
        )

    def get_extra_info(self, info: str) -> t.Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own synchronous backend, with every operation clamped to the deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: t.Iterable[t.Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _clamp(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _Stream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: t.Iterable[t.Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _clamp(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def transport() -> t.Any:
    """An httpx transport on :class:`DeadlineBackend`."""
    import httpx

    http = httpx.HTTPTransport()
    # httpx builds its pool without a way to pass a backend; the pool is rebuilt with ours and
    # httpx's own defaults. tests/test_http_faults.py fails if an httpx release changes this.
    defaults = http._pool
    http._pool = httpcore.ConnectionPool(
        ssl_context=defaults._ssl_context,
        max_connections=defaults._max_connections,
        max_keepalive_connections=defaults._max_keepalive_connections,
        keepalive_expiry=defaults._keepalive_expiry,
        network_backend=DeadlineBackend(),
    )
    return http
