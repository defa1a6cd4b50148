"""End to end: failover and availability under gunicorn with two workers sharing the SQLite
store, on the example app's accounts hunt group (the desk takes two calls at once, then a
colleague, then reception; anyone marked away is skipped)."""

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

VAPI_SECRET = "e2e-failover-vapi-secret"
VD_SECRET = "e2e-failover-voicedock-secret"
DESK, COLLEAGUE, RECEPTION = "+31207948460", "+31207948461", "+31207948400"


@pytest.fixture(scope="module")
def away(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("presence") / "away.txt"
    path.write_text("", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(
    api: Recorder, away: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> t.Iterator[tuple[str, int]]:
    database = pathlib.Path(tmp_path_factory.mktemp("store")) / "calltransfer.sqlite3"
    env = {
        "CALLTRANSFER_VAPI_SECRET": VAPI_SECRET,
        "CALLTRANSFER_VOICEDOCK_SECRET": VD_SECRET,
        "CALLTRANSFER_VOICEDOCK_TOOLS": '["transfer_call"]',
        "CALLTRANSFER_VOICEDOCK_API_KEY": "e2e-api-key",
        "CALLTRANSFER_VOICEDOCK_API_URL": f"{api.url}/api/v1",
        "CALLTRANSFER_STORE_URL": f"sqlite:///{database}",
        "SUPPORT_LINE_AWAY": str(away),
    }
    with gunicorn("tests.e2e_app:create_app()", env=env, workers=2) as address:
        yield address


def post(server: tuple[str, int], path: str, body: bytes, headers: dict[str, str]) -> tuple[int, t.Any, str]:
    connection = http.client.HTTPConnection(*server, timeout=15)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None, response.headers["X-Served-By"]
    finally:
        connection.close()


def vapi_ask(server: tuple[str, int], call_id: str) -> tuple[str, str]:
    """Ask for the accounts team on ``call_id``: the number answered, and the worker that did."""
    body = testing.dumps(testing.vapi_transfer_request(call_id=call_id, text="A question about my contract."))
    status, answer, worker = post(
        server, "/calltransfer/vapi", body, testing.vapi_secret_headers(VAPI_SECRET)
    )
    assert status == 200, answer
    return answer["destination"]["number"], worker


def vapi_ended(server: tuple[str, int], call_id: str, reason: str) -> None:
    event = testing.vapi_event("status-update", call_id=call_id, status="ended", endedReason=reason)
    status, _, _ = post(
        server, "/calltransfer/vapi", testing.dumps(event), testing.vapi_secret_headers(VAPI_SECRET)
    )
    assert status == 200


def test_vapi_a_failed_transfer_gets_the_next_destination_on_any_worker(server: tuple[str, int]) -> None:
    served: set[str] = set()
    calls = 0
    # Each call asks again until both workers have answered a second request: the attempt one
    # worker kept must steer the other.
    while calls < 4 or len(served) < 2:
        calls += 1
        assert calls <= 40, "one gunicorn worker answered every request"
        call_id = str(uuid.uuid4())
        first, _ = vapi_ask(server, call_id)
        second, worker = vapi_ask(server, call_id)
        assert (first, second) == (DESK, COLLEAGUE)
        served.add(worker)
        vapi_ended(server, call_id, "assistant-forwarded-call")


def test_a_third_concurrent_caller_skips_the_full_desk(server: tuple[str, int]) -> None:
    calls = [str(uuid.uuid4()) for _ in range(3)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = sorted(number for number, _ in pool.map(lambda call: vapi_ask(server, call), calls))
    assert answers == sorted([DESK, DESK, COLLEAGUE])
    # Transfers that did not connect give their places back: the desk takes calls again.
    for call_id in calls:
        vapi_ended(server, call_id, "call.forwarding.no-answer")
    again = str(uuid.uuid4())
    assert vapi_ask(server, again)[0] == DESK
    vapi_ended(server, again, "call.forwarding.no-answer")


def test_someone_away_is_skipped(server: tuple[str, int], away: pathlib.Path) -> None:
    away.write_text("accounts-desk\naccounts-2\n", encoding="utf-8")
    try:
        assert vapi_ask(server, str(uuid.uuid4()))[0] == RECEPTION
    finally:
        away.write_text("", encoding="utf-8")
    back = str(uuid.uuid4())
    assert vapi_ask(server, back)[0] == DESK
    vapi_ended(server, back, "call.forwarding.busy")


def test_voicedock_a_failed_status_sends_one_control_request_to_the_next(
    server: tuple[str, int], api: Recorder
) -> None:
    served: set[str] = set()
    calls = 0
    while calls < 4 or len(served) < 2:
        calls += 1
        assert calls <= 40, "one gunicorn worker answered every delivery"
        call_id = str(uuid.uuid4())
        tool = testing.dumps(
            testing.voicedock_tool_calls("transfer_call", {"department": "accounts"}, call_id=call_id)
        )
        status, _, _ = post(
            server, "/calltransfer/voicedock", tool, testing.voicedock_headers(tool, VD_SECRET)
        )
        assert status == 200
        failed = testing.dumps(testing.voicedock_event("status-update", call_id=call_id, status="failed"))
        headers = testing.voicedock_headers(failed, VD_SECRET)
        # The same status update delivered to both workers at once, and once more after.
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            deliveries = [
                pool.submit(post, server, "/calltransfer/voicedock", failed, headers) for _ in range(3)
            ]
            replies = [delivery.result() for delivery in deliveries]
        replies.append(post(server, "/calltransfer/voicedock", failed, headers))
        assert {status for status, _, _ in replies} == {200}
        served |= {worker for _, _, worker in replies}
        sent = [request.json["destination"] for request in api.to(f"/api/v1/calls/{call_id}/control")]
        assert sent == [DESK, COLLEAGUE]
        done = testing.dumps(testing.voicedock_event("status-update", call_id=call_id, status="transferred"))
        post(server, "/calltransfer/voicedock", done, testing.voicedock_headers(done, VD_SECRET))
