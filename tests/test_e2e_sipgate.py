"""End to end over sipgate: whole calls under gunicorn with 2 workers and the SQLite store.

The announcement (``speak``) and the transfer it announces are answered by whichever worker gets
each request; the pending transfer must cross between them through the store.
"""

from __future__ import annotations

import http.client
import json
import pathlib
import typing as t
import uuid

import pytest

from flask_calltransfer import testing
from tests.servers import gunicorn

TOKEN = "e2e-sipgate-token"
CALLS = 40
MAX_CALLS = 400


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[tuple[str, int]]:
    database = pathlib.Path(tmp_path_factory.mktemp("store")) / "calltransfer.sqlite3"
    env = {
        "CALLTRANSFER_VAPI_SECRET": "unused-vapi-secret",
        "CALLTRANSFER_SIPGATE_TOKEN": TOKEN,
        "CALLTRANSFER_STORE_URL": f"sqlite:///{database}",
    }
    with gunicorn("tests.e2e_app:create_app()", env=env, workers=2) as address:
        yield address


def post(server: tuple[str, int], event: dict[str, t.Any]) -> tuple[int, t.Any, str]:
    connection = http.client.HTTPConnection(*server, timeout=10)
    try:
        connection.request(
            "POST", "/calltransfer/sipgate", body=testing.dumps(event), headers=testing.sipgate_headers(TOKEN)
        )
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None, response.headers["X-Served-By"]
    finally:
        connection.close()


def walk_call(server: tuple[str, int]) -> tuple[str, str]:
    """One whole call; returns the workers that answered the speak and the transfer."""
    session = str(uuid.uuid4())
    status, body, _ = post(server, testing.sipgate_event("session_start", session_id=session))
    assert (status, body) == (204, None)  # nothing said yet: no opinion
    status, body, spoke = post(
        server, testing.sipgate_event("user_speak", session_id=session, text="I need a quote, sales please")
    )
    assert status == 200
    assert body == {"type": "speak", "session_id": session, "text": "Connecting you to sales."}
    status, body, _ = post(
        server, testing.sipgate_event("assistant_speak", session_id=session, duration_ms=900)
    )
    assert status == 204
    status, body, transferred = post(
        server, testing.sipgate_event("assistant_speech_ended", session_id=session)
    )
    assert status == 200
    assert body == {
        "type": "transfer",
        "session_id": session,
        "target_phone_number": "+31207948450",
        "caller_id_name": "+4915799912345",
        "caller_id_number": "+4915799912345",
    }
    status, body, _ = post(server, testing.sipgate_event("assistant_speech_ended", session_id=session))
    assert status == 204  # handed over once only
    status, body, _ = post(server, testing.sipgate_event("session_end", session_id=session))
    assert (status, body) == (204, None)
    return spoke, transferred


def test_whole_calls_across_two_workers(server: tuple[str, int]) -> None:
    # Which worker takes a request is up to the kernel, so calls go on until several announced
    # transfers were handed over by the other worker (each call checks every reply on the way).
    pairs: list[tuple[str, str]] = []
    while len(pairs) < CALLS or sum(s != t for s, t in pairs) < 3:
        pairs.append(walk_call(server))
        assert len(pairs) <= MAX_CALLS, "no announced transfer crossed between the two workers"
    assert len({pid for pair in pairs for pid in pair}) == 2


def test_session_end_clears_a_pending_transfer(server: tuple[str, int]) -> None:
    session = str(uuid.uuid4())
    status, body, _ = post(server, testing.sipgate_event("user_speak", session_id=session, text="billing"))
    assert body["type"] == "speak"
    post(server, testing.sipgate_event("session_end", session_id=session))
    status, body, _ = post(server, testing.sipgate_event("assistant_speech_ended", session_id=session))
    assert status == 204


def test_refusal_and_bad_token(server: tuple[str, int]) -> None:
    session = str(uuid.uuid4())
    status, body, _ = post(
        server, testing.sipgate_event("user_speak", session_id=session, text="a complaint")
    )
    assert body["type"] == "speak" and body["text"].startswith("I'm sorry, complaints")
    connection = http.client.HTTPConnection(*server, timeout=10)
    connection.request(
        "POST",
        "/calltransfer/sipgate",
        body=testing.dumps(testing.sipgate_event("user_speak", text="sales")),
        headers=testing.sipgate_headers("wrong"),
    )
    assert connection.getresponse().status == 401
    connection.close()
