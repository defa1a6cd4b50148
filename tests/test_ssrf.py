"""Live call control posts only to allowlisted hosts: a verified Vapi tool call cannot aim the
server, with its Vapi public key, at anything else it can reach."""

from __future__ import annotations

import socket
import threading
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import testing
from flask_calltransfer.clients.allowlist import HostAllowlist
from tests.conftest import MakeApp
from tests.conftest import Vapi


class Listener:
    """A loopback port that records every byte anyone sends it."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.connections = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with connection:
                connection.settimeout(0.5)
                try:
                    while chunk := connection.recv(65536):
                        self.received += chunk
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()


@pytest.fixture
def listener() -> t.Iterator[Listener]:
    server = Listener()
    yield server
    server.stop()


def attacks(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/control",
        f"https://127.0.0.1:{port}/control",
        f"http://localhost:{port}/control",
        f"http://user:pass@127.0.0.1:{port}/control",
        f"https://x.vapi.ai@127.0.0.1:{port}/control",
        f"http://2130706433:{port}/control",
        f"http://0x7f.0.0.1:{port}/control",
        f"http://[::ffff:127.0.0.1]:{port}/control",
        f"https://phone-call-websocket.vapi.ai:{port}/control",  # an allowed host, another port
        f"http://phone-call-websocket.vapi.ai:{port}/control",
        f"https://vapi.ai.127.0.0.1.nip.io:{port}/control",
        f"https://evilvapi.ai:{port}/control",
        "http://169.254.169.254/latest/meta-data/",
    ]


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31612345678")
    app, _ = make_app(
        transfers, CALLTRANSFER_VAPI_TOOLS=["transferToHuman"], CALLTRANSFER_VAPI_PUBLIC_KEY="pk-secret-1"
    )
    return app


def test_no_byte_reaches_a_listener_that_is_not_allowlisted(app: Flask, listener: Listener) -> None:
    vapi = Vapi(app.test_client())
    for number, url in enumerate(attacks(listener.port)):
        body = testing.vapi_tool_calls("transferToHuman", {}, tool_call_id=f"t{number}", control_url=url)
        response = vapi.post(body)
        assert response.status_code == 200, url
        (result,) = response.json["results"]
        assert result["toolCallId"] == f"t{number}"
        assert "error" in result and "result" not in result, url
    listener.stop()
    assert listener.connections == 0
    assert bytes(listener.received) == b""


def test_vapi_s_own_control_hosts_are_allowed() -> None:
    allowlist = HostAllowlist(["*.vapi.ai"])
    host = "phone-call-websocket.aws-us-west-2-backend-production2.vapi.ai"
    assert allowlist.refusal(f"https://{host}/019a9c95-32a0-7ccd-93e9-2655308be9ae/control") is None
    assert allowlist.refusal(f"https://{host.upper()}./x/control") is None
    assert allowlist.refusal(f"https://{host}:443/x/control") is None
    assert allowlist.refusal("https://vapi.ai.evil.com/control") is not None
    assert allowlist.refusal("https://evil.com/#@x.vapi.ai") is not None
    assert allowlist.refusal("ftp://x.vapi.ai/control") is not None


def test_an_exact_origin_allows_that_scheme_host_and_port_only() -> None:
    allowlist = HostAllowlist(["http://127.0.0.1:8099"])
    assert allowlist.refusal("http://127.0.0.1:8099/control") is None
    assert allowlist.refusal("http://127.0.0.1:8098/control") is not None
    assert allowlist.refusal("https://127.0.0.1:8099/control") is not None


@pytest.mark.parametrize("value", ["*.vapi.ai", [""], ["http://user@host"], ["a/b"], ["*"], [3]])
def test_invalid_allowlists_are_refused_at_init_app(make_app: MakeApp, value: t.Any) -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_VAPI_CONTROL_HOSTS|allowlist"):
        make_app(CALLTRANSFER_VAPI_CONTROL_HOSTS=value)


def test_direct_client_use_is_checked_too(app: Flask, listener: Listener) -> None:
    from flask_calltransfer.clients import ApiError

    with app.app_context():
        transfers = app.extensions["calltransfer"].extension
        with pytest.raises(ApiError, match="IP address"):
            transfers.vapi.say(f"http://127.0.0.1:{listener.port}/control", "hello")
    listener.stop()
    assert listener.connections == 0
