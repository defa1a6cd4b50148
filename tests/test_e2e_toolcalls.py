"""End to end: VoiceDock and Vapi tool calls under gunicorn with 2 workers and the SQLite store.

A tool call delivered several times, at once and one after another, must reach the call-control
stand-in exactly once, and every delivery must get the same reply.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import pathlib
import typing as t
import uuid

import pytest

from flask_calltransfer import testing
from tests.recorder import Recorder
from tests.servers import gunicorn

SECRET = "e2e-voicedock-secret"
VAPI_SECRET = "e2e-vapi-secret"


@pytest.fixture(scope="module")
def server(api: Recorder, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[tuple[str, int]]:
    database = pathlib.Path(tmp_path_factory.mktemp("store")) / "calltransfer.sqlite3"
    env = {
        "CALLTRANSFER_VAPI_SECRET": VAPI_SECRET,
        "CALLTRANSFER_VAPI_TOOLS": '["transferToHuman"]',
        "CALLTRANSFER_VAPI_CONTROL_HOSTS": json.dumps([api.url]),
        "CALLTRANSFER_VOICEDOCK_SECRET": SECRET,
        "CALLTRANSFER_VOICEDOCK_TOOLS": '["transfer_call"]',
        "CALLTRANSFER_VOICEDOCK_API_KEY": "e2e-api-key",
        "CALLTRANSFER_VOICEDOCK_API_URL": f"{api.url}/api/v1",
        "CALLTRANSFER_STORE_URL": f"sqlite:///{database}",
    }
    with gunicorn("tests.e2e_app:create_app()", env=env, workers=2) as address:
        yield address


def post(server: tuple[str, int], path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
    connection = http.client.HTTPConnection(*server, timeout=15)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), response.headers["X-Served-By"]
    finally:
        connection.close()


def test_voicedock_duplicates_across_workers_send_one_control_request(
    server: tuple[str, int], api: Recorder
) -> None:
    served: set[str] = set()
    calls = 0
    # Deliveries go on until both workers have answered some (which one answers is the kernel's
    # choice); every call checks exactly-once delivery on the way.
    while calls < 10 or len(served) < 2:
        calls += 1
        assert calls <= 100, "one gunicorn worker answered every delivery"
        call_id = str(uuid.uuid4())
        body = testing.dumps(
            testing.voicedock_tool_calls(
                "transfer_call",
                {"department": "sales"},
                call_id=call_id,
                tool_call_id=f"tool_{uuid.uuid4().hex}",
            )
        )
        headers = testing.voicedock_headers(body, SECRET)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            deliveries = [
                pool.submit(post, server, "/calltransfer/voicedock", body, headers) for _ in range(3)
            ]
            replies = [delivery.result() for delivery in deliveries]
        replies.append(post(server, "/calltransfer/voicedock", body, headers))
        assert {status for status, _, _ in replies} == {200}
        assert len({data for _, data, _ in replies}) == 1
        assert b'"status":"transferring"' in replies[0][1]
        served |= {worker for _, _, worker in replies}
        sent = api.to(f"/api/v1/calls/{call_id}/control")
        assert len(sent) == 1
        assert sent[0].json == {
            "type": "transfer",
            "destination": "+31207948450",
            "message": "Connecting you to sales.",
        }


def test_vapi_duplicate_tool_call_sends_one_control_request(server: tuple[str, int], api: Recorder) -> None:
    path = f"/{uuid.uuid4().hex}/control"
    body = testing.dumps(
        testing.vapi_tool_calls(
            "transferToHuman", '{"department": "billing"}', control_url=api.url + path, text="hi"
        )
    )
    headers = testing.vapi_secret_headers(VAPI_SECRET)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda _: post(server, "/calltransfer/vapi", body, headers), range(3)))
    assert len({data for _, data, _ in replies}) == 1
    (sent,) = api.to(path)
    assert sent.json["destination"]["number"] == "+31207948451"
    assert sent.json["content"] == "Connecting you to billing."


def test_unsigned_voicedock_request_sends_nothing(server: tuple[str, int], api: Recorder) -> None:
    call_id = str(uuid.uuid4())
    body = testing.dumps(
        testing.voicedock_tool_calls("transfer_call", {"department": "sales"}, call_id=call_id)
    )
    headers = testing.voicedock_headers(body, "wrong-secret")
    status, _, _ = post(server, "/calltransfer/voicedock", body, headers)
    assert status == 401
    assert api.to(f"/api/v1/calls/{call_id}/control") == []
