"""A real HTTP server on a loopback port that records what it receives and answers as scripted.

It stands in for the VoiceDock API and Vapi's live control URLs in tests.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
import time
import typing as t

from flask import Flask
from flask import Response
from flask import request
from werkzeug.serving import make_server


@dataclasses.dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> t.Any:
        return json.loads(self.body) if self.body else None


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    body: t.Any = dataclasses.field(
        default_factory=lambda: {"success": True, "message": "Command sent successfully"}
    )
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


class Recorder:
    """Records requests; answers each path with the next scripted :class:`Reply`, else 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: dict[str, collections.deque[Reply]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()
        app = Flask("recorder")

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        @app.route("/<path:path>", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        def record(path: str) -> Response:
            with self._lock:
                self.received.append(
                    Received(request.method, request.path, dict(request.headers), request.get_data())
                )
                queue = self._script.get(request.path)
                reply = queue.popleft() if queue else Reply()
            if reply.delay:
                time.sleep(reply.delay)
            data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
            return Response(data, status=reply.status, headers=reply.headers, mimetype="application/json")

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._script[path].extend(replies)

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()
