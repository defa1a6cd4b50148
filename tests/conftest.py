from __future__ import annotations

import json
import logging
import pathlib
import re
import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_calltransfer import CallTransfer
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing
from tests.recorder import Recorder

PAYLOADS = pathlib.Path(__file__).parent / "payloads"
SECRET = "test-secret-0123456789"


def payload_bytes(name: str) -> bytes:
    """A recorded payload file's exact bytes."""
    return (PAYLOADS / name).read_bytes()


def payload(name: str) -> t.Any:
    return json.loads(payload_bytes(name))


def capture(transfers: CallTransfer, answer: t.Any = None) -> list[TransferRequest]:
    """Register a handler that records each request and answers ``answer``; returns the record."""
    seen: list[TransferRequest] = []

    @transfers.on_request
    def record(call: TransferRequest) -> t.Any:
        seen.append(call)
        return answer

    return seen


class MakeApp(t.Protocol):
    def __call__(
        self, transfers: CallTransfer | None = None, **config: t.Any
    ) -> tuple[Flask, CallTransfer]: ...


@pytest.fixture
def make_app(request: pytest.FixtureRequest) -> MakeApp:
    """Build an app with a fresh extension (or the given one) and only the config a test states."""

    def make(transfers: CallTransfer | None = None, **config: t.Any) -> tuple[Flask, CallTransfer]:
        app = Flask(request.module.__name__)
        app.config.update(TESTING=True, CALLTRANSFER_VAPI_SECRET=SECRET, CALLTRANSFER_STORE_URL="memory://")
        app.config.update(config)
        transfers = transfers if transfers is not None else CallTransfer()
        transfers.init_app(app)
        return app, transfers

    return make


@pytest.fixture
def transfers() -> CallTransfer:
    return CallTransfer()


@pytest.fixture
def app(make_app: MakeApp, transfers: CallTransfer) -> Flask:
    return make_app(transfers)[0]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Vapi:
    """Posts signed Vapi requests through a test client."""

    def __init__(self, client: FlaskClient, secret: str = SECRET) -> None:
        self.client = client
        self.secret = secret

    def post(self, body: bytes | dict[str, t.Any], headers: dict[str, str] | None = None) -> t.Any:
        data = body if isinstance(body, bytes) else testing.dumps(body)
        return self.client.post(
            "/calltransfer/vapi",
            data=data,
            headers=headers if headers is not None else testing.vapi_secret_headers(self.secret),
        )

    def ask(self, **fields: t.Any) -> t.Any:
        """Post a transfer-destination-request and return the response."""
        return self.post(testing.vapi_transfer_request(**fields))


@pytest.fixture
def vapi(client: FlaskClient) -> Vapi:
    return Vapi(client)


TOKEN = "sipgate-token-0123456789"


class Sipgate:
    """Posts sipgate AI Flow events with the shared token through a test client."""

    def __init__(self, client: FlaskClient, token: str = TOKEN) -> None:
        self.client = client
        self.token = token

    def post(self, body: bytes | dict[str, t.Any], headers: dict[str, str] | None = None) -> t.Any:
        data = body if isinstance(body, bytes) else testing.dumps(body)
        return self.client.post(
            "/calltransfer/sipgate",
            data=data,
            headers=headers if headers is not None else testing.sipgate_headers(self.token),
        )

    def event(self, event_type: str, **fields: t.Any) -> t.Any:
        return self.post(testing.sipgate_event(event_type, **fields))


@pytest.fixture
def sipgate_app(make_app: MakeApp, transfers: CallTransfer) -> Flask:
    return make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN)[0]


@pytest.fixture
def sipgate(sipgate_app: Flask) -> Sipgate:
    return Sipgate(sipgate_app.test_client())


@pytest.fixture
def recorder() -> t.Iterator[Recorder]:
    server = Recorder()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api() -> t.Iterator[Recorder]:
    """A recording stand-in for the platforms' APIs shared by a module's end-to-end tests."""
    server = Recorder()
    yield server
    server.stop()


# Privacy: every line the package logs during the whole run is scanned at the end -----------------

#: Secrets the tests configure; none may ever reach a log line.
KNOWN_SECRETS = (SECRET, TOKEN, "super-secret-value", "hmac-secret-abcdef", "voicedock-webhook-secret")
_UNMASKED_NUMBER = re.compile(r"(?<![\w*])\+\d{9,15}(?![\w*])")


class _LogScan(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


LOG_SCAN = _LogScan()


def log_violations(lines: t.Iterable[str]) -> list[str]:
    """Log lines that carry an unmasked phone number or a known secret."""
    return [
        line
        for line in lines
        if _UNMASKED_NUMBER.search(line) or any(secret in line for secret in KNOWN_SECRETS)
    ]


def pytest_sessionstart(session: pytest.Session) -> None:
    package_logger = logging.getLogger("flask_calltransfer")
    package_logger.addHandler(LOG_SCAN)
    package_logger.setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    violations = log_violations(LOG_SCAN.lines)
    if violations:
        print(f"\n{len(violations)} log lines of flask_calltransfer leak a phone number or a secret:")
        for line in violations[:20]:
            print("  " + line[:300])
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


pytest_plugins = ["pytester"]
