"""pytest fixtures for testing an app's call routing, loaded automatically once
Flask-CallTransfer is installed (entry point ``pytest11``).

They need an ``app`` fixture that returns your Flask app (with its ``CallTransfer`` registered).
Requests are signed with the credentials in the app's config, and tool-call deliveries are
recorded instead of being sent to the platforms. An app with ``TESTING = True`` and no
``CALLTRANSFER_STORE_URL`` gets an in-memory store, which is emptied before each test.

A test then reads ``calltransfer_vapi.transfer_request("I'd like a quote").json``; the
testing page of the docs shows whole test files.
"""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from . import state as app_state
from . import testing
from .models import Destination
from .models import TransferRequest
from .platforms.toolcalls import _local_claims
from .platforms.toolcalls import dry_run
from .state import State

if t.TYPE_CHECKING:
    from .store import MemoryStore


def _state(app: Flask) -> State:
    state = app_state.find(app)
    if state is None:
        raise RuntimeError(
            "The app fixture's app has no CallTransfer registered. Call transfers.init_app(app)"
            " (or CallTransfer(app)) in the app factory the fixture uses."
        )
    return state


class PlatformClient:
    """Posts correctly signed webhooks of one platform to the app, through its test client."""

    platform: t.ClassVar[str]

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()
        state = _state(app)
        if self.platform not in state.platforms:
            offered = state.offered.get(self.platform)
            keys = offered.credential_keys if offered is not None else ("its credentials",)
            raise RuntimeError(
                f"The {self.platform} platform is not enabled on this app, so there is no webhook to"
                f" post to. Set {' or '.join(keys)} in the app's test config (and list"
                f" {self.platform!r} in CALLTRANSFER_PLATFORMS if the app sets it)."
            )
        #: The webhook path, such as ``/calltransfer/vapi``.
        self.path = f"{state.settings.url_prefix}/{self.platform}"

    def post(
        self, payload: dict[str, t.Any] | bytes, *, headers: dict[str, str] | None = None
    ) -> TestResponse:
        """Post a payload (a dict, or exact bytes), signed unless ``headers`` are given."""
        body = payload if isinstance(payload, bytes) else testing.dumps(payload)
        if headers is None:
            headers = testing.signed_headers(
                self.app.config, self.platform, body, url=f"http://localhost{self.path}"
            )
        return self.client.post(self.path, data=body, headers=headers)


class VapiClient(PlatformClient):
    """Signed Vapi server messages."""

    platform = "vapi"

    def transfer_request(self, text: str = "", **fields: t.Any) -> TestResponse:
        """A ``transfer-destination-request``; ``fields`` as for :func:`.testing.vapi_transfer_request`."""
        return self.post(testing.vapi_transfer_request(text=text, **fields))

    def tool_call(
        self, name: str, arguments: dict[str, t.Any] | str | None = None, **fields: t.Any
    ) -> TestResponse:
        """A ``tool-calls`` message for one tool."""
        return self.post(testing.vapi_tool_calls(name, arguments, **fields))

    def event(self, event_type: str, **fields: t.Any) -> TestResponse:
        """Any other server message, such as ``status-update``."""
        return self.post(testing.vapi_event(event_type, **fields))


class SipgateClient(PlatformClient):
    """sipgate AI Flow events with the app's token."""

    platform = "sipgate"

    def user_speak(self, text: str, **fields: t.Any) -> TestResponse:
        """The caller said ``text``."""
        return self.post(testing.sipgate_event("user_speak", text=text, **fields))

    def event(self, event_type: str, **fields: t.Any) -> TestResponse:
        """Any event, such as ``session_start`` or ``assistant_speech_ended``."""
        return self.post(testing.sipgate_event(event_type, **fields))


class VoiceDockClient(PlatformClient):
    """Signed VoiceDock webhooks."""

    platform = "voicedock"

    def tool_call(
        self, name: str, arguments: dict[str, t.Any] | str | None = None, **fields: t.Any
    ) -> TestResponse:
        """A ``tool-calls`` webhook for one tool."""
        return self.post(testing.voicedock_tool_calls(name, arguments, **fields))

    def event(self, event_type: str, **fields: t.Any) -> TestResponse:
        """Any other event, such as ``status-update``."""
        return self.post(testing.voicedock_event(event_type, **fields))


@pytest.fixture
def calltransfer_app(request: pytest.FixtureRequest) -> Flask:
    """The app under test: your ``app`` fixture, with its test store emptied (see above)."""
    app = t.cast(Flask, request.getfixturevalue("app"))
    state = _state(app)
    if state.isolated_store:
        # The in-memory store TESTING chose: a MemoryStore, which can be emptied.
        t.cast("MemoryStore", state.services.store).clear()
        # Claims made while a store was down are this process's own memory: forgotten too.
        _local_claims.clear()
    return app


@pytest.fixture
def calltransfer_deliveries() -> t.Iterator[list[tuple[TransferRequest, Destination]]]:
    """Tool-call transfers the app would have sent to a platform's API, as (request, destination)."""
    with dry_run() as sent:
        yield sent


@pytest.fixture
def calltransfer_vapi(calltransfer_app: Flask, calltransfer_deliveries: t.Any) -> VapiClient:
    """Posts signed Vapi requests to the app."""
    return VapiClient(calltransfer_app)


@pytest.fixture
def calltransfer_sipgate(calltransfer_app: Flask) -> SipgateClient:
    """Posts sipgate AI Flow events with the app's token."""
    return SipgateClient(calltransfer_app)


@pytest.fixture
def calltransfer_voicedock(calltransfer_app: Flask, calltransfer_deliveries: t.Any) -> VoiceDockClient:
    """Posts signed VoiceDock webhooks to the app."""
    return VoiceDockClient(calltransfer_app)


@pytest.fixture
def calltransfer_signals(calltransfer_app: Flask) -> t.Iterator[testing.SignalRecorder]:
    """Every Flask-CallTransfer signal the app sends during the test."""
    with testing.record_signals(calltransfer_app) as heard:
        yield heard
