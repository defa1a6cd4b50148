"""Checks for two servers sharing one store, as two machines behind a load balancer: consecutive
requests of one call land on different servers."""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import typing as t
import uuid

from flask_calltransfer import testing
from tests.recorder import Recorder
from tests.servers import gunicorn

Address = tuple[str, int]


@contextlib.contextmanager
def serve(
    app: str, store_url: str, api: Recorder, *, token: str, secret: str, **env: str
) -> t.Iterator[tuple[Address, Address]]:
    """``app`` on two gunicorn servers of one worker each, sharing the store at ``store_url``,
    with sipgate and VoiceDock on (VoiceDock's API is ``api``); ``env`` adds variables."""
    env = {
        "CALLTRANSFER_SIPGATE_TOKEN": token,
        "CALLTRANSFER_VOICEDOCK_SECRET": secret,
        "CALLTRANSFER_VOICEDOCK_TOOLS": '["transfer_call"]',
        "CALLTRANSFER_VOICEDOCK_API_KEY": "e2e-api-key",
        "CALLTRANSFER_VOICEDOCK_API_URL": f"{api.url}/api/v1",
        "CALLTRANSFER_STORE_URL": store_url,
        **env,
    }
    with gunicorn(app, env=env, workers=1) as one, gunicorn(app, env=env, workers=1) as two:
        yield one, two


def post(server: Address, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, t.Any]:
    connection = http.client.HTTPConnection(*server, timeout=15)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        connection.close()


def sipgate(server: Address, token: str, event: str, session: str, **fields: t.Any) -> tuple[int, t.Any]:
    body = testing.dumps(testing.sipgate_event(event, session_id=session, **fields))
    return post(server, "/calltransfer/sipgate", body, testing.sipgate_headers(token))


def announce_on_one_transfer_on_the_other(servers: tuple[Address, Address], token: str, number: str) -> None:
    one, two = servers
    for first, second in ((one, two), (two, one)):
        session = str(uuid.uuid4())
        status, speak = sipgate(first, token, "user_speak", session, text="sales please")
        assert (status, speak["type"]) == (200, "speak")
        status, transfer = sipgate(second, token, "assistant_speech_ended", session)
        assert status == 200
        assert transfer["type"] == "transfer" and transfer["target_phone_number"] == number
        assert sipgate(first, token, "assistant_speech_ended", session)[0] == 204  # handed over once
        assert sipgate(second, token, "session_end", session)[0] == 204


def tool_call_to_both_is_sent_once(
    servers: tuple[Address, Address], api: Recorder, secret: str, number: str
) -> None:
    for _ in range(5):
        call_id = str(uuid.uuid4())
        body = testing.dumps(
            testing.voicedock_tool_calls("transfer_call", {"department": "sales"}, call_id=call_id)
        )
        headers = testing.voicedock_headers(body, secret)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(post, server, "/calltransfer/voicedock", body, headers)
                for server in (*servers, *servers)
            ]
            replies = [future.result() for future in futures]
        assert {status for status, _ in replies} == {200}
        assert len({json.dumps(reply) for _, reply in replies}) == 1
        assert replies[0][1]["results"][0]["result"] == {"status": "transferring"}
        sent = api.to(f"/api/v1/calls/{call_id}/control")
        assert len(sent) == 1 and sent[0].json["destination"] == number
