"""Two gunicorn servers on different ports sharing one real Redis: consecutive requests of one
call land on different servers, as they do behind a load balancer across machines."""

from __future__ import annotations

import typing as t
import uuid

import pytest

from tests import two_servers
from tests.recorder import Recorder
from tests.servers import redis_server

TOKEN = "e2e-redis-sipgate-token"
SECRET = "e2e-redis-voicedock-secret"

Address = two_servers.Address


@pytest.fixture(scope="module")
def servers(api: Recorder) -> t.Iterator[tuple[Address, Address]]:
    with (
        redis_server() as url,
        two_servers.serve("tests.e2e_app:create_app()", url, api, token=TOKEN, secret=SECRET) as both,
    ):
        yield both


def sipgate(server: Address, event: str, session: str, **fields: t.Any) -> tuple[int, t.Any]:
    return two_servers.sipgate(server, TOKEN, event, session, **fields)


def test_announce_on_one_server_transfer_on_the_other(servers: tuple[Address, Address]) -> None:
    two_servers.announce_on_one_transfer_on_the_other(servers, TOKEN, "+31207948450")


def test_session_end_on_one_server_clears_the_other(servers: tuple[Address, Address]) -> None:
    one, two = servers
    session = str(uuid.uuid4())
    sipgate(one, "user_speak", session, text="billing")
    sipgate(two, "session_end", session)
    assert sipgate(one, "assistant_speech_ended", session)[0] == 204


def test_tool_call_delivered_to_both_servers_is_sent_once(
    servers: tuple[Address, Address], api: Recorder
) -> None:
    two_servers.tool_call_to_both_is_sent_once(servers, api, SECRET, "+31207948450")
