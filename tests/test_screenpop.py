"""Screen-pop: a hand-off's context at a signed, expiring link under the extension's prefix, as JSON
and as a page; tampered links get 403, expired ones 410, and neither any data or a log line of it."""

from __future__ import annotations

import logging
import time
import typing as t
import urllib.parse

import itsdangerous
import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import Handoff
from flask_calltransfer import SipDestination
from flask_calltransfer import testing
from flask_calltransfer.screenpop import _SALT
from flask_calltransfer.store import MemoryStore

SECRET = "vapi-secret"
CALLER = "+31612345678"
HANDOFF = Handoff(
    "Disputes an invoice <script>",
    summary="Charged twice for March.",
    account="ACC-1042",
    ticket="T-77",
    fields={"Pin": "4321"},
    sensitive={"summary", "Pin"},
)
VALUES = ("Disputes an invoice", "Charged twice", "ACC-1042", "T-77", "4321")


class DownStore(MemoryStore):
    """A memory store whose reads fail as a dead server's do, once ``down`` is set."""

    down = False

    def get(self, key: str) -> str | None:
        if self.down:
            raise OSError("connection refused")
        return super().get(key)


def make(store: MemoryStore | None = None, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True, CALLTRANSFER_VAPI_SECRET=SECRET, CALLTRANSFER_HANDOFF_SECRET="handoff-signing-key-0123"
    )
    if store is None:
        app.config["CALLTRANSFER_STORE_URL"] = "memory://"
    app.config.update(config)
    transfers = CallTransfer(app, store=store)
    transfers.on_request(lambda call: SipDestination("sip:billing@pbx.example.com", handoff=HANDOFF))
    return app


def transfer(app: Flask) -> dict[str, str]:
    body = testing.dumps(testing.vapi_transfer_request(caller=CALLER))
    reply = app.test_client().post(
        "/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers(SECRET)
    )
    assert reply.status_code == 200
    return t.cast(dict[str, str], reply.get_json()["destination"]["sipHeaders"])


def path_of(headers: t.Mapping[str, str]) -> str:
    return urllib.parse.urlsplit(urllib.parse.unquote(headers["X-Handoff-Url"])).path


def test_the_link_serves_the_whole_context_as_json_and_as_a_page(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = make()
    headers = transfer(app)
    url = urllib.parse.unquote(headers["X-Handoff-Url"])
    assert url.startswith("http://localhost/calltransfer/handoff/")
    client = app.test_client()
    as_json = client.get(path_of(headers), headers={"Accept": "application/json"})
    assert as_json.status_code == 200 and as_json.headers["Cache-Control"] == "no-store"
    assert as_json.get_json() == {
        "id": headers["X-Handoff-Id"],
        "caller": CALLER,
        "reason": "Disputes an invoice <script>",
        # Sensitive values are kept from headers and summaries, and shown here.
        "summary": "Charged twice for March.",
        "account": "ACC-1042",
        "ticket": "T-77",
        "fields": {"Pin": "4321"},
    }
    assert client.get(path_of(headers) + "?format=json").get_json() == as_json.get_json()
    page = client.get(path_of(headers))
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "Charged twice for March." in text and CALLER in text
    # Escaped, and no script may run on it.
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for value in VALUES:
        assert value not in logged


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: itsdangerous.URLSafeTimedSerializer("another-key", salt=_SALT).dumps("0123456789"),
        lambda token: "not-a-token",
        lambda token: itsdangerous.URLSafeTimedSerializer("handoff-signing-key-0123", salt="other").dumps(
            "0123456789"
        ),
    ],
)
def test_a_tampered_link_gets_403_and_no_data(tamper: t.Callable[[str], str]) -> None:
    app = make()
    path = path_of(transfer(app))
    prefix, _, token = path.rpartition("/")
    for accept in ("application/json", "text/html"):
        reply = app.test_client().get(f"{prefix}/{tamper(token)}", headers={"Accept": accept})
        assert reply.status_code == 403
        for value in VALUES:
            assert value not in reply.get_data(as_text=True)


def test_an_expired_link_gets_410_and_no_data() -> None:
    app = make(CALLTRANSFER_HANDOFF_TTL=60)
    transfer(app)

    class Old(itsdangerous.URLSafeTimedSerializer):
        def get_timestamp(self) -> int:  # type: ignore[override]
            return int(time.time()) - 61

    # Signed with the app's key a minute and a second ago: the signature holds, the age does not.
    old = Old("handoff-signing-key-0123", salt=_SALT).dumps("0123456789")
    reply = app.test_client().get(f"/calltransfer/handoff/{old}?format=json")
    assert reply.status_code == 410 and reply.get_json()["message"].startswith(
        "This hand-off link has expired"
    )


def test_a_link_whose_context_expired_in_the_store_gets_410() -> None:
    app = make(CALLTRANSFER_HANDOFF_TTL=1)
    path = path_of(transfer(app))
    assert app.test_client().get(path).status_code == 200
    time.sleep(2.1)
    reply = app.test_client().get(path)
    assert reply.status_code == 410 and "ACC-1042" not in reply.get_data(as_text=True)


def test_a_store_outage_gets_503_not_500_and_the_transfer_still_went() -> None:
    store = DownStore()
    app = make(store)
    path = path_of(transfer(app))
    store.down = True
    reply = app.test_client().get(path, headers={"Accept": "application/json"})
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "5"


def test_a_context_the_store_could_not_keep_sends_no_link() -> None:
    class Full(MemoryStore):
        def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
            raise OSError("disk full")

    headers = transfer(make(Full()))
    assert "X-Handoff-Url" not in headers and headers["X-Handoff-Id"]


def test_links_are_off_without_their_own_key() -> None:
    # The app's SECRET_KEY does not turn them on: links are opt-in.
    app = make(CALLTRANSFER_HANDOFF_SECRET=None, SECRET_KEY="an-ordinary-flask-session-key")
    headers = transfer(app)
    assert "X-Handoff-Url" not in headers
    token = itsdangerous.URLSafeTimedSerializer("x", salt=_SALT).dumps(headers["X-Handoff-Id"])
    assert app.test_client().get(f"/calltransfer/handoff/{token}").status_code == 404


def test_a_public_url_and_rotated_keys() -> None:
    shared = MemoryStore()
    app = make(
        shared,
        CALLTRANSFER_HANDOFF_URL="https://calls.example.com/",
        CALLTRANSFER_HANDOFF_SECRET="old-key-0123456789ab",
    )
    headers = transfer(app)
    url = urllib.parse.unquote(headers["X-Handoff-Url"])
    assert url.startswith("https://calls.example.com/calltransfer/handoff/")
    # The key rotated (a new deployment on the same store): links signed with the old key still
    # open, new ones are signed with the new key.
    rotated = make(shared, CALLTRANSFER_HANDOFF_SECRET=["new-key-0123456789ab", "old-key-0123456789ab"])
    assert rotated.test_client().get(urllib.parse.urlsplit(url).path).status_code == 200
    fresh = transfer(rotated)
    newer = path_of(fresh).rpartition("/")[2]
    assert (
        itsdangerous.URLSafeTimedSerializer("new-key-0123456789ab", salt=_SALT).loads(newer)
        == fresh["X-Handoff-Id"]
    )
    with pytest.raises(itsdangerous.BadSignature):
        itsdangerous.URLSafeTimedSerializer("old-key-0123456789ab", salt=_SALT).loads(newer)


@pytest.mark.parametrize("value", ["calls.example.com", "https://calls.example.com/?a=1", 42])
def test_a_bad_public_url_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_HANDOFF_URL"):
        make(CALLTRANSFER_HANDOFF_URL=value)


@pytest.mark.parametrize("value", ["short", ["long-enough-key-0123", "short"]])
def test_a_short_signing_key_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        make(CALLTRANSFER_HANDOFF_SECRET=value)
