"""Outbound HTTP against a server that misbehaves: every failure is bounded in time and size, and
a command that may have run is never sent twice."""

from __future__ import annotations

import resource
import time
import typing as t

import pytest

from flask_calltransfer.clients import ApiError
from flask_calltransfer.clients import HttpClient
from flask_calltransfer.clients import HttpSettings
from tests.faulty_http import FaultyServer


@pytest.fixture
def faulty() -> t.Iterator[FaultyServer]:
    server = FaultyServer()
    yield server
    server.stop()


def post(server: FaultyServer, path: str, **settings: t.Any) -> t.Any:
    client = HttpClient(HttpSettings(**settings))
    try:
        return client.request("POST", server.url + path, json_body={"type": "transfer"})
    finally:
        client.close()


def test_a_redirect_is_a_failure_and_is_not_followed(faulty: FaultyServer) -> None:
    with pytest.raises(ApiError, match="307, a redirect, which is never followed") as info:
        post(faulty, "/redirect")
    assert info.value.status == 307
    assert faulty.hits["/redirect"] == 1


@pytest.mark.parametrize("path", ["/drip-headers", "/drip-body"])
def test_a_dripping_answer_is_cut_at_the_total_deadline(faulty: FaultyServer, path: str) -> None:
    # One byte every 0.2 s never trips a per-read timeout; the attempt's total deadline does.
    started = time.monotonic()
    with pytest.raises(ApiError, match="no answer within 1.0 s"):
        post(faulty, path, timeout=1.0)
    assert time.monotonic() - started < 1.5
    assert faulty.hits[path] == 1


@pytest.mark.parametrize("path", ["/huge", "/huge-chunked", "/gzip-bomb"])
def test_a_huge_answer_is_not_read(faulty: FaultyServer, path: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(ApiError, match="body over 1048576 bytes|content encoding that is not read"):
        post(faulty, path)
    assert time.monotonic() - started < 2
    # Peak memory grew by far less than the 512 MiB on offer (ru_maxrss is in KiB).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024
    assert faulty.hits[path] == 1


def test_a_reset_connection_is_not_retried(faulty: FaultyServer) -> None:
    # The request reached the server before the reset: it may have run.
    with pytest.raises(ApiError, match="could not reach the platform"):
        post(faulty, "/reset", retries=2)
    assert faulty.hits["/reset"] == 1


def test_a_post_answered_500_is_sent_once(faulty: FaultyServer) -> None:
    with pytest.raises(ApiError, match="500"):
        post(faulty, "/error", retries=2)
    assert faulty.hits["/error"] == 1


def test_429_is_retried_within_the_budget(faulty: FaultyServer) -> None:
    with pytest.raises(ApiError, match="429"):
        post(faulty, "/busy", retries=2)
    assert faulty.hits["/busy"] == 3


def test_a_well_behaved_answer_still_works(faulty: FaultyServer) -> None:
    assert post(faulty, "/ok") == {"success": True, "message": "Command sent successfully"}


@pytest.mark.parametrize("mode", ["/redirect", "/drip-body", "/huge", "/reset", "/error"])
def test_a_tool_call_against_a_failing_api_gets_its_own_answer_in_time(
    faulty: FaultyServer, mode: str, make_app: t.Any
) -> None:
    from flask_calltransfer import CallTransfer
    from flask_calltransfer import testing

    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31612345678")
    app, _ = make_app(
        transfers,
        CALLTRANSFER_VOICEDOCK_SECRET="voicedock-webhook-secret",
        CALLTRANSFER_VOICEDOCK_TOOLS=["transfer_call"],
        CALLTRANSFER_VOICEDOCK_API_KEY="vd-key",
        CALLTRANSFER_VOICEDOCK_API_URL=f"{faulty.url}/api/v1",
        CALLTRANSFER_HTTP_TIMEOUT=1.0,
    )
    faulty.mode = mode
    body = testing.dumps(
        testing.voicedock_tool_calls("transfer_call", {}, tool_call_id="tool_1", call_id="c-1")
    )
    started = time.monotonic()
    response = app.test_client().post(
        "/calltransfer/voicedock",
        data=body,
        headers=testing.voicedock_headers(body, "voicedock-webhook-secret"),
    )
    assert time.monotonic() - started < 10  # VoiceDock's own wait for a tool result
    assert response.status_code == 200
    (entry,) = response.json["results"]
    assert entry["tool_call_id"] == "tool_1"
    assert entry["result"]["status"] == "failed"
    assert faulty.hits["/api/v1/calls/c-1/control"] == 1
