"""The example app on two gunicorn servers (two "machines", each with the shipped gevent
configuration) sharing one real PostgreSQL: consecutive requests of one call land on different
servers, as they do behind a load balancer."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import typing as t
import uuid

import pytest

from flask_calltransfer import testing
from flask_calltransfer.store.postgres import PostgresStore
from flask_calltransfer.store.postgres import create_tables
from tests.recorder import Recorder
from tests.servers import gunicorn
from tests.servers import postgres_server

TOKEN = "e2e-postgres-sipgate-token"
SECRET = "e2e-postgres-voicedock-secret"
SALES = "+31207948450"

Address = tuple[str, int]


@pytest.fixture(scope="module")
def servers(api: Recorder, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[tuple[Address, Address]]:
    with postgres_server() as url:
        store = PostgresStore.from_url(url)
        create_tables(store.engine)  # the migration step a deployment runs once
        store.close()
        env = {
            "CALLTRANSFER_SIPGATE_TOKEN": TOKEN,
            "CALLTRANSFER_VOICEDOCK_SECRET": SECRET,
            "CALLTRANSFER_VOICEDOCK_TOOLS": '["transfer_call"]',
            "CALLTRANSFER_VOICEDOCK_API_KEY": "e2e-api-key",
            "CALLTRANSFER_VOICEDOCK_API_URL": f"{api.url}/api/v1",
            "CALLTRANSFER_STORE_URL": url,
            "SUPPORT_LINE_LOG": str(tmp_path_factory.mktemp("log") / "transfers.jsonl"),
        }
        with gunicorn("example_app:create_app()", env=env, workers=1) as one:
            with gunicorn("example_app:create_app()", env=env, workers=1) as two:
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


def sipgate(server: Address, event: str, session: str, **fields: t.Any) -> tuple[int, t.Any]:
    body = testing.dumps(testing.sipgate_event(event, session_id=session, **fields))
    return post(server, "/calltransfer/sipgate", body, testing.sipgate_headers(TOKEN))


def test_announce_on_one_server_transfer_on_the_other(servers: tuple[Address, Address]) -> None:
    one, two = servers
    for first, second in ((one, two), (two, one)):
        session = str(uuid.uuid4())
        status, speak = sipgate(first, "user_speak", session, text="sales please")
        assert (status, speak) == (
            200,
            {"type": "speak", "session_id": session, "text": "Connecting you to sales."},
        )
        status, transfer = sipgate(second, "assistant_speech_ended", session)
        assert status == 200
        assert transfer["type"] == "transfer" and transfer["target_phone_number"] == SALES
        assert sipgate(first, "assistant_speech_ended", session)[0] == 204  # handed over once
        assert sipgate(second, "session_end", session)[0] == 204


def test_tool_call_delivered_to_both_servers_is_sent_once(
    servers: tuple[Address, Address], api: Recorder
) -> None:
    for _ in range(5):
        call_id = str(uuid.uuid4())
        body = testing.dumps(
            testing.voicedock_tool_calls("transfer_call", {"department": "sales"}, call_id=call_id)
        )
        headers = testing.voicedock_headers(body, SECRET)
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
        assert len(sent) == 1 and sent[0].json["destination"] == SALES
