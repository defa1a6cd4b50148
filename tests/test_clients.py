"""The API clients against a real local HTTP server: bodies, auth, errors, retries and deadlines."""

from __future__ import annotations

import time

import pytest

from flask_calltransfer.clients import ApiError
from flask_calltransfer.clients import HttpClient
from flask_calltransfer.clients import HttpSettings
from flask_calltransfer.clients import VapiControlClient
from flask_calltransfer.clients import VoiceDockClient
from flask_calltransfer.clients.allowlist import HostAllowlist
from tests.recorder import Recorder
from tests.recorder import Reply
from tests.servers import free_port

CONTROL = "/api/v1/calls/call-1/control"


def local(recorder: Recorder) -> HostAllowlist:
    return HostAllowlist([recorder.url])


def voicedock(recorder: Recorder, **settings: float | bool) -> VoiceDockClient:
    http = HttpClient(HttpSettings(**settings))  # type: ignore[arg-type]
    return VoiceDockClient(http, api_url=f"{recorder.url}/api/v1/", api_key="vd-key")


def test_transfer_request(recorder: Recorder) -> None:
    result = voicedock(recorder).transfer("call-1", "+31612345678", message="One moment.")
    assert result == {"success": True, "message": "Command sent successfully"}
    (sent,) = recorder.received
    assert (sent.method, sent.path) == ("POST", CONTROL)
    assert sent.headers["Authorization"] == "Bearer vd-key"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json == {"type": "transfer", "destination": "+31612345678", "message": "One moment."}


def test_every_voicedock_command(recorder: Recorder) -> None:
    client = voicedock(recorder)
    client.transfer("call-1", "sip:desk@pbx.example.com")
    client.say("call-1", "Hold on.", end_after=True)
    client.end_call("call-1", message="Goodbye.")
    client.end_call("call-1")
    client.create_sip_trunk(name="Office PBX", host="pbx.example.com", username="u", password="p")
    client.set_transfer_trunk("num-1", "trunk-1")
    assert [(r.method, r.path, r.json) for r in recorder.received] == [
        ("POST", CONTROL, {"type": "transfer", "destination": "sip:desk@pbx.example.com"}),
        ("POST", CONTROL, {"type": "say", "content": "Hold on.", "end_after": True}),
        ("POST", CONTROL, {"type": "end-call", "message": "Goodbye."}),
        ("POST", CONTROL, {"type": "end-call"}),
        (
            "POST",
            "/api/v1/sip-trunks",
            {"name": "Office PBX", "host": "pbx.example.com", "port": 5060, "username": "u", "password": "p"},
        ),
        ("PATCH", "/api/v1/numbers/num-1", {"transfer_trunk_id": "trunk-1"}),
    ]


def test_ids_cannot_change_the_path(recorder: Recorder) -> None:
    voicedock(recorder).transfer("../../numbers/x?y=1", "+31612345678")
    # The server decodes the one quoted segment; unquoted, the dots would have left /calls.
    (sent,) = recorder.received
    assert sent.path == "/api/v1/calls/../../numbers/x?y=1/control"


def test_update_assistant_tools_keeps_the_rest(recorder: Recorder) -> None:
    assistant = {
        "id": "a-1",
        "name": "Support",
        "llm_config": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be kind."}],
            "tools": [{"type": "end_call"}, {"type": "transfer_call", "destinations": []}],
        },
    }
    recorder.script("/api/v1/assistants/a-1", Reply(body=assistant))
    tool = {"type": "transfer_call", "destinations": [{"type": "number", "number": "+31612345678"}]}
    voicedock(recorder).update_assistant_tools("a-1", [tool])
    get, patch = recorder.received
    assert (get.method, patch.method) == ("GET", "PATCH")
    assert patch.json == {
        "llm_config": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be kind."}],
            "tools": [{"type": "end_call"}, tool],
        }
    }


@pytest.mark.parametrize(
    ("body", "code", "text", "details"),
    [
        (
            {
                "error": {
                    "code": "invalid_request",
                    "message": "Call is not active",
                    "param": "id",
                    "type": "x",
                }
            },
            "invalid_request",
            "Call is not active",
            {"param": "id", "type": "x"},
        ),
        (
            {
                "error": "Bad Request",
                "message": "destination is required",
                "details": [{"field": "destination"}],
            },
            "Bad Request",
            "destination is required",
            [{"field": "destination"}],
        ),
        ({"message": "nope"}, None, "nope", None),
        ("not an object", None, "BAD REQUEST", None),
    ],
)
def test_both_error_shapes(
    recorder: Recorder, body: object, code: str | None, text: str, details: object
) -> None:
    recorder.script(CONTROL, Reply(status=400, body=body))
    with pytest.raises(ApiError) as info:
        voicedock(recorder).transfer("call-1", "+31612345678")
    error = info.value
    assert (error.status, error.code, error.details) == (400, code, details)
    assert text in str(error)
    assert len(recorder.received) == 1  # 4xx is not retried


def test_404_is_not_retried(recorder: Recorder) -> None:
    recorder.script(
        CONTROL, Reply(status=404, body={"error": {"code": "not_found", "message": "Call not found"}})
    )
    with pytest.raises(ApiError, match="404: Call not found") as info:
        voicedock(recorder).transfer("call-1", "+31612345678")
    assert info.value.status == 404
    assert len(recorder.received) == 1


def test_429_honours_retry_after_then_succeeds(recorder: Recorder) -> None:
    recorder.script(
        CONTROL,
        Reply(
            status=429,
            body={"error": {"code": "rate_limit_exceeded", "message": "slow down"}},
            headers={"Retry-After": "1"},
        ),
    )
    started = time.monotonic()
    assert voicedock(recorder).transfer("call-1", "+31612345678")["success"] is True
    assert time.monotonic() - started >= 1.0
    assert len(recorder.received) == 2


def test_retry_after_past_the_deadline_fails_at_once(recorder: Recorder) -> None:
    recorder.script(
        CONTROL, Reply(status=429, body={"error": "rate_limit_exceeded"}, headers={"Retry-After": "30"})
    )
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        voicedock(recorder, budget=3.0).transfer("call-1", "+31612345678")
    assert time.monotonic() - started < 1.0
    assert (info.value.status, info.value.retry_after) == (429, 30.0)
    assert len(recorder.received) == 1


def test_a_post_answered_5xx_is_not_sent_again(recorder: Recorder) -> None:
    # The API may have carried out the transfer before failing: a second POST could run it twice.
    recorder.script(CONTROL, *[Reply(status=503, body={"error": "unavailable"})] * 5)
    with pytest.raises(ApiError, match="503") as info:
        voicedock(recorder, retries=2).transfer("call-1", "+31612345678")
    assert info.value.status == 503
    assert len(recorder.received) == 1


def test_5xx_retried_with_backoff_when_configured(recorder: Recorder) -> None:
    recorder.script(CONTROL, *[Reply(status=503, body={"error": "unavailable"})] * 5)
    with pytest.raises(ApiError, match="503"):
        voicedock(recorder, retries=2, retry_server_errors=True).transfer("call-1", "+31612345678")
    assert len(recorder.received) == 3


def test_5xx_then_success_when_configured(recorder: Recorder) -> None:
    recorder.script(CONTROL, Reply(status=502, raw=b"<html>bad gateway</html>"), Reply(status=500))
    client = voicedock(recorder, retry_server_errors=True)
    assert client.transfer("call-1", "+31612345678")["success"] is True
    assert len(recorder.received) == 3


def test_an_idempotent_request_is_retried_after_5xx(recorder: Recorder) -> None:
    recorder.script("/thing", Reply(status=502), Reply(body={"ok": True}))
    http = HttpClient(HttpSettings())
    assert http.request("GET", f"{recorder.url}/thing") == {"ok": True}
    assert len(recorder.to("/thing")) == 2


def test_slow_answer_times_out_and_is_not_retried(recorder: Recorder) -> None:
    recorder.script(CONTROL, Reply(delay=1.5))
    started = time.monotonic()
    with pytest.raises(ApiError, match="no answer within 0.5 s"):
        voicedock(recorder, timeout=0.5).transfer("call-1", "+31612345678")
    assert time.monotonic() - started < 1.4
    assert len(recorder.received) == 1  # a command that may have run is not sent again


def test_every_attempt_fits_in_the_deadline(recorder: Recorder) -> None:
    recorder.script(CONTROL, *[Reply(status=500, delay=0.4)] * 10)
    started = time.monotonic()
    with pytest.raises(ApiError):
        voicedock(recorder, timeout=5.0, retries=10, budget=1.5, retry_server_errors=True).transfer(
            "call-1", "+31612345678"
        )
    assert time.monotonic() - started < 2.0


def test_connection_refused() -> None:
    client = VoiceDockClient(
        HttpClient(HttpSettings(retries=1, budget=3.0)),
        api_url=f"http://127.0.0.1:{free_port()}",
        api_key="k",
    )
    with pytest.raises(ApiError, match="could not reach the platform") as info:
        client.transfer("call-1", "+31612345678")
    assert info.value.status is None


def test_malformed_success_body(recorder: Recorder) -> None:
    recorder.script(CONTROL, Reply(raw=b"{not json"))
    with pytest.raises(ApiError, match="not JSON"):
        voicedock(recorder).transfer("call-1", "+31612345678")


def test_empty_success_body_is_none(recorder: Recorder) -> None:
    recorder.script(CONTROL, Reply(status=204, raw=b""))
    assert voicedock(recorder).transfer("call-1", "+31612345678") is None


def test_errors_never_show_the_query_or_key(recorder: Recorder) -> None:
    recorder.script("/control", Reply(status=400, body={"error": "bad"}))
    client = VapiControlClient(HttpClient(HttpSettings()), public_key="pk-secret", allowlist=local(recorder))
    with pytest.raises(ApiError) as info:
        client.say(f"{recorder.url}/control?token=abc", "hi")
    assert "token=abc" not in str(info.value) and "pk-secret" not in str(info.value)


def test_vapi_control_client(recorder: Recorder) -> None:
    client = VapiControlClient(HttpClient(HttpSettings()), public_key="pk-1", allowlist=local(recorder))
    url = f"{recorder.url}/abc/control"
    client.transfer(url, {"type": "number", "number": "+31612345678"}, content="Transferring you now.")
    client.say(url, "Bye.", end_call_after=True)
    client.end_call(url)
    assert [r.json for r in recorder.received] == [
        {
            "type": "transfer",
            "destination": {"type": "number", "number": "+31612345678"},
            "content": "Transferring you now.",
        },
        {"type": "say", "content": "Bye.", "endCallAfterSpoken": True},
        {"type": "end-call"},
    ]
    assert {r.headers["Authorization"] for r in recorder.received} == {"Bearer pk-1"}


def test_vapi_control_without_key_sends_no_authorization(recorder: Recorder) -> None:
    VapiControlClient(HttpClient(HttpSettings()), allowlist=local(recorder)).end_call(
        f"{recorder.url}/abc/control"
    )
    assert "Authorization" not in recorder.received[0].headers
