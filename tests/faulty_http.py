"""A raw HTTP server on a loopback port that misbehaves on purpose, for the outbound fault tests.

Each path is one behaviour; every request is counted, so a test can tell how often a command was
sent. Raw sockets, not a framework: the point is to send what no well-behaved server sends.
"""

from __future__ import annotations

import collections
import gzip
import socket
import struct
import threading
import time
import zlib

OK = b'{"success":true,"message":"Command sent successfully"}'


_BOMB: list[bytes] = []


def _gzip_bomb() -> bytes:
    """256 MiB of zeros, gzipped twice: a few kilobytes on the wire. Built in pieces, once."""
    if not _BOMB:
        inner = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = bytes(1024 * 1024)
        packed = b"".join(inner.compress(block) for _ in range(256)) + inner.flush()
        _BOMB.append(gzip.compress(packed))
    return _BOMB[0]


def _status(code: int, body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}"
    return head.encode() + b"Connection: close\r\n\r\n" + body


class FaultyServer:
    """Paths: ``/redirect``, ``/drip-headers``, ``/drip-body``, ``/huge``, ``/reset``, ``/error``,
    ``/busy`` (429 with Retry-After 0), ``/ok``."""

    def __init__(self, drip_interval: float = 0.2) -> None:
        self.drip_interval = drip_interval
        self.hits: collections.Counter[str] = collections.Counter()
        #: When set, a path whose behaviour every request gets, whatever its own path.
        self.mode: str | None = None
        self.sent_bytes: collections.Counter[str] = collections.Counter()
        _gzip_bomb()  # built before any test measures memory
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _read_request(self, connection: socket.socket) -> str:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return ""
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            rest += connection.recv(65536)
        return head.split(b" ")[1].decode()

    def _send(self, path: str, connection: socket.socket, data: bytes) -> None:
        connection.sendall(data)
        self.sent_bytes[path] += len(data)

    def _handle(self, connection: socket.socket) -> None:
        try:
            with connection:
                path = self._read_request(connection)
                self.hits[path] += 1
                self._answer(self.mode or path, connection)
        except OSError:
            pass  # the client gave up: that is what most of these tests want

    def _answer(self, path: str, connection: socket.socket) -> None:
        if path == "/redirect":
            self._send(path, connection, _status(307, b"", "Location: http://127.0.0.1:9/elsewhere\r\n"))
        elif path in ("/drip-headers", "/drip-body"):
            reply = _status(200, OK)
            split = reply.index(b"\r\n\r\n") + 4 if path == "/drip-body" else 0
            self._send(path, connection, reply[:split])
            for byte in reply[split:]:
                if self._stopped.wait(self.drip_interval):
                    return
                self._send(path, connection, bytes([byte]))
        elif path == "/huge":
            size = 512 * 1024 * 1024
            head = f"HTTP/1.1 500 X\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
            self._send(path, connection, head.encode())
            block = b"x" * 65536
            for _ in range(size // len(block)):
                self._send(path, connection, block)
        elif path == "/huge-chunked":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            self._send(path, connection, head)
            block = b"x" * 65536
            for _ in range(8192):
                self._send(path, connection, b"%x\r\n%s\r\n" % (len(block), block))
        elif path == "/gzip-bomb":
            extra = "Content-Encoding: gzip, gzip\r\n"
            self._send(path, connection, _status(200, _gzip_bomb(), extra))
        elif path == "/reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif path == "/error":
            self._send(path, connection, _status(500, b'{"error":"internal"}'))
        elif path == "/busy":
            self._send(
                path, connection, _status(429, b'{"error":"rate_limit_exceeded"}', "Retry-After: 0\r\n")
            )
        else:
            self._send(path, connection, _status(200, OK))

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        time.sleep(0.05)
