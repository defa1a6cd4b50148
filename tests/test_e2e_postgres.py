"""The example app on two gunicorn servers (two "machines", each with the shipped gevent
configuration) sharing one real PostgreSQL: consecutive requests of one call land on different
servers, as they do behind a load balancer."""

from __future__ import annotations

import typing as t

import pytest

from flask_calltransfer.store.postgres import PostgresStore
from flask_calltransfer.store.postgres import create_tables
from tests import two_servers
from tests.recorder import Recorder
from tests.servers import postgres_server

TOKEN = "e2e-postgres-sipgate-token"
SECRET = "e2e-postgres-voicedock-secret"
SALES = "+31207948450"

Address = two_servers.Address


@pytest.fixture(scope="module")
def servers(api: Recorder, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[tuple[Address, Address]]:
    with postgres_server() as url:
        store = PostgresStore.from_url(url)
        create_tables(store.engine)  # the migration step a deployment runs once
        store.close()
        log = str(tmp_path_factory.mktemp("log") / "transfers.jsonl")
        app = "example_app:create_app()"
        with two_servers.serve(app, url, api, token=TOKEN, secret=SECRET, SUPPORT_LINE_LOG=log) as both:
            yield both


def test_announce_on_one_server_transfer_on_the_other(servers: tuple[Address, Address]) -> None:
    two_servers.announce_on_one_transfer_on_the_other(servers, TOKEN, SALES)


def test_tool_call_delivered_to_both_servers_is_sent_once(
    servers: tuple[Address, Address], api: Recorder
) -> None:
    two_servers.tool_call_to_both_is_sent_once(servers, api, SECRET, SALES)
