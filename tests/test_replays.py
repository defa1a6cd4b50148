"""A verified request sent again inside the replay window gets the first answer from the store:
no routing, no signals, no pool movement, on any worker or machine sharing the store."""

from __future__ import annotations

import pathlib
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import DestinationPool
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing
from tests.conftest import TOKEN
from tests.conftest import capture
from tests.servers import redis_process

HMAC_SECRET = "replay-hmac-secret-0123456789"


def make(store_url: str, instance: pathlib.Path, **config: t.Any) -> tuple[Flask, list[TransferRequest]]:
    transfers = CallTransfer()
    pool = DestinationPool("desk", ["+31612345678", "+31687654321"])
    seen: list[TransferRequest] = []

    @transfers.on_request
    def route(call: TransferRequest) -> t.Any:
        seen.append(call)
        return pool.next()

    app = Flask(__name__, instance_path=str(instance))
    app.config.update(
        CALLTRANSFER_STORE_URL=store_url,
        CALLTRANSFER_VAPI_HMAC_SECRET=HMAC_SECRET,
        CALLTRANSFER_SIPGATE_TOKEN=TOKEN,
        CALLTRANSFER_LOG_TRANSFERS=True,
        **config,
    )
    transfers.init_app(app)
    return app, seen


def signed() -> tuple[bytes, dict[str, str]]:
    body = testing.dumps(testing.vapi_transfer_request(text="someone please"))
    return body, testing.vapi_hmac_headers(body, HMAC_SECRET)


def post(app: Flask, body: bytes, headers: dict[str, str]) -> t.Any:
    return app.test_client().post("/calltransfer/vapi", data=body, headers=headers)


def test_a_captured_request_replayed_is_answered_once(tmp_path: pathlib.Path) -> None:
    app, seen = make("memory://", tmp_path)
    body, headers = signed()
    with testing.record_signals(app) as heard:
        answers = [post(app, body, headers).get_data() for _ in range(6)]
    assert len(set(answers)) == 1
    assert len(seen) == 1
    assert heard.names() == ["transfer-requested", "transfer-resolved"]
    log = app.extensions["calltransfer"].transfer_log
    assert len(log.records()) == 1
    # The pool moved once: the next new request gets the other agent.
    other_body, other_headers = signed()
    assert post(app, other_body, other_headers).json["destination"]["number"] != answers[0]
    assert len(seen) == 2


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_replays_are_answered_on_another_worker_too(tmp_path: pathlib.Path, backend: str) -> None:
    def both(url: str) -> None:
        first, seen_first = make(url, tmp_path / "a")
        second, seen_second = make(url, tmp_path / "b")
        body, headers = signed()
        answer = post(first, body, headers).get_data()
        assert post(second, body, headers).get_data() == answer
        assert (len(seen_first), len(seen_second)) == (1, 0)

    if backend == "redis":
        with redis_process() as (url, _):
            both(url)
    else:
        both(f"sqlite:///{tmp_path / 'shared.sqlite3'}")


def test_new_bytes_are_a_new_request(tmp_path: pathlib.Path) -> None:
    app, seen = make("memory://", tmp_path)
    for _ in range(3):
        body, headers = signed()
        assert post(app, body, headers).status_code == 200
    assert len(seen) == 3


def test_sipgate_repeats_are_routed_again(tmp_path: pathlib.Path) -> None:
    # AI Flow events carry no timestamp: a caller saying the same thing twice is two utterances.
    app, seen = make("memory://", tmp_path)
    body = testing.dumps(testing.sipgate_event("user_speak", session_id="s-1", text="someone please"))
    for _ in range(2):
        app.test_client().post("/calltransfer/sipgate", data=body, headers=testing.sipgate_headers(TOKEN))
    assert len(seen) == 2


def test_the_window_can_be_switched_off(tmp_path: pathlib.Path) -> None:
    app, seen = make("memory://", tmp_path, CALLTRANSFER_REPLAY_WINDOW=None)
    body, headers = signed()
    for _ in range(2):
        post(app, body, headers)
    assert len(seen) == 2


def test_shared_secret_requests_are_not_kept(tmp_path: pathlib.Path) -> None:
    # A shared secret travels in the clear: whoever captured a request can send new ones, so
    # keeping answers would protect nothing and cost two store writes per request.
    transfers = CallTransfer()
    seen = capture(transfers, "+31612345678")
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(CALLTRANSFER_STORE_URL="memory://", CALLTRANSFER_VAPI_SECRET=TOKEN)
    transfers.init_app(app)
    body = testing.dumps(testing.vapi_transfer_request(text="someone please"))
    for _ in range(2):
        post(app, body, testing.vapi_secret_headers(TOKEN))
    assert len(seen) == 2
    assert not app.extensions["calltransfer"].services.store._data  # nothing kept
