"""Payload builders, request signers, a signal recorder, and the contract kit platform adapters
pass, for testing apps that use Flask-CallTransfer, and adapters written for it.

.. code-block:: python

    from flask import Flask
    from flask_calltransfer import CallTransfer, testing

    app = Flask(__name__)
    app.config.update(TESTING=True, CALLTRANSFER_VAPI_SECRET="s3cret")
    transfers = CallTransfer(app)
    transfers.on_request(lambda call: "+31 6 12345678" if "sales" in call.text else None)

    body = testing.dumps(testing.vapi_transfer_request(text="I want sales"))
    response = app.test_client().post("/calltransfer/vapi", data=body,
                                      headers=testing.vapi_secret_headers("s3cret"))
    assert response.json["destination"]["number"] == "+31612345678"

:func:`record_signals` hears what the app broadcast meanwhile:

.. code-block:: python

    with testing.record_signals(app) as heard:
        app.test_client().post("/calltransfer/vapi", data=body,
                               headers=testing.vapi_secret_headers("s3cret"))
    assert heard.one("transfer-resolved")["destination"].number == "+31612345678"
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import typing as t

from flask import Flask

from .exceptions import refuse
from .extension import CallTransfer
from .models import AssistantDestination
from .models import TransferRequest
from .payloads import ALL_SIGNALS
from .payloads import SignalRecorder
from .payloads import dumps
from .payloads import hmac_signature
from .payloads import record_signals
from .payloads import reply_problems
from .payloads import signed_headers
from .payloads import sipgate_event
from .payloads import sipgate_headers
from .payloads import vapi_bearer_headers
from .payloads import vapi_event
from .payloads import vapi_hmac_headers
from .payloads import vapi_messages
from .payloads import vapi_secret_headers
from .payloads import vapi_tool_calls
from .payloads import vapi_transfer_request
from .payloads import voicedock_event
from .payloads import voicedock_headers
from .payloads import voicedock_tool_calls
from .platforms.base import Platform
from .platforms.toolcalls import dry_run

if t.TYPE_CHECKING:
    from werkzeug.datastructures import Headers
    from werkzeug.test import TestResponse

#: A webhook request as the contract kit sends it: the raw body and its headers (content type and
#: whatever else the platform sends), before signing.
WebhookRequest = tuple[bytes, dict[str, str]]

#: The signals of which every transfer request sends exactly one.
OUTCOME_SIGNALS: t.Final = ("transfer-resolved", "transfer-refused", "transfer-deferred")


class _Captured(logging.Handler):
    """Every log line written, formatted with its traceback, at every level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def _all_logs() -> t.Iterator[list[str]]:
    # Every logger, at every level: a line an app's DEBUG logging would write counts too.
    root = logging.getLogger()
    ours = logging.getLogger("flask_calltransfer")
    handler = _Captured()
    levels = root.level, ours.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    ours.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        ours.setLevel(levels[1])


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


class PlatformContract:
    """The checks every platform adapter passes, built-in or installed: subclass it in a test
    module, under a name pytest collects (``Test...``), and fill in the four methods below.

    .. code-block:: python

        from flask_calltransfer import testing

        class TestAcmeContract(testing.PlatformContract):
            platform = "acme"
            config = {"CALLTRANSFER_ACME_SECRET": "test-secret"}

            def transfer_request(self, text):
                return acme_payload(text=text, caller=self.caller), {"Content-Type": "application/json"}

            def other_event(self):
                return acme_payload(event="call-ended"), {"Content-Type": "application/json"}

            def sign(self, body, headers, url):
                return {**headers, "Acme-Signature": acme_sign(body, "test-secret")}

            def answer_problems(self, status, headers, body):
                return [] if status == 200 else [f"Acme needs 200, not {status}."]

    Each ``test_*`` method builds its own app (:meth:`make_app`) with the platform enabled,
    :attr:`config` applied and an in-memory store, and posts through Flask's test client. What
    they check, for the contract of :class:`~flask_calltransfer.Platform`:

    - a destination and a refusal are answered in the platform's format (:meth:`answer_problems`
      finds nothing wrong), the destination's number in the answer or in a delivery;
    - every failure (a handler that raises, answers something that is not a destination, names
      no destination, answers one the platform cannot carry, or runs past its deadline; an
      ``on_error`` handler that raises; signal receivers that raise) still gets a valid answer,
      and every transfer request ends in exactly one of :data:`OUTCOME_SIGNALS`;
    - no request gets a 5xx: empty, malformed, binary, huge, deeply nested bodies and bodies of
      the wrong shape are turned away with a 4xx, and too many fields or values with ``413``;
    - verification comes before parsing: an unsigned request, one signed for another body (or
      changed after signing, unless :attr:`signs_body` is false) or with other credentials gets
      ``401``, whatever its body, and reaches no handler and no signal but ``request-rejected``;
    - another event gets the platform's no-op answer and reaches no transfer handler;
    - no log line, at any level, holds the caller's full number or a configured secret.

    .. versionadded:: 0.1
    """

    #: The platform's name: its URL segment and entry point name.
    platform: t.ClassVar[str]
    #: Config of an app serving the platform: its credentials, and anything else it needs.
    config: t.ClassVar[t.Mapping[str, t.Any]] = {}
    #: The caller's number, in E.164, that :meth:`transfer_request` puts in its payloads.
    caller: t.ClassVar[str] = "+31612345678"
    #: The destination's number the checks answer with, in E.164.
    number: t.ClassVar[str] = "+31207948450"
    #: The adapter class, to check it before its distribution is installed; ``None`` (the default)
    #: finds :attr:`platform` among the installed platforms, as an app would.
    adapter: t.ClassVar[type[Platform] | None] = None
    #: Whether the platform's signature covers the body. ``False`` for a token sent in a header,
    #: which any body passes with; the checks of another body's signature are then left out.
    signs_body: t.ClassVar[bool] = True
    #: Config values the log check looks for, besides the caller's number (default: every
    #: string value in :attr:`config` whose key names a secret, token or key).
    secrets: t.ClassVar[tuple[str, ...] | None] = None

    # What an adapter's author fills in.

    def transfer_request(self, text: str) -> WebhookRequest:
        """A request that asks for a destination, with the caller's utterance ``text`` (where the
        platform carries one) and :attr:`caller` as the caller's number."""
        raise NotImplementedError

    def other_event(self) -> WebhookRequest:
        """A request of another kind, which the platform answers with its no-op."""
        raise NotImplementedError

    def sign(self, body: bytes, headers: dict[str, str], url: str) -> dict[str, str]:
        """``headers`` with what makes an app with :attr:`config` accept ``body`` posted to
        ``url`` (the full URL, as the platform would have signed it)."""
        raise NotImplementedError

    def answer_problems(self, status: int, headers: Headers, body: bytes) -> list[str]:
        """Why the platform would not accept this answer to a webhook; empty when it would."""
        raise NotImplementedError

    def bad_bodies(self) -> dict[str, bytes]:
        """Bodies that must get a 4xx, by what is wrong with them. Extend it with payloads of the
        platform's shape whose fields have the wrong type or are missing."""
        return {
            "an empty body": b"",
            "whitespace": b"  \n ",
            "binary": bytes(range(256)) * 4,
            "half a JSON object": b'{"message": {"type": ',
            "a JSON array": b"[1, 2, 3]",
            "a JSON string": b'"hello"',
            "deep nesting": b"[" * 40_000 + b"]" * 40_000,
            "too large": b"a=" + b"x" * 200_000,
        }

    # What the kit provides.

    @property
    def path(self) -> str:
        """The webhook's path, at the default URL prefix."""
        return f"/calltransfer/{self.platform}"

    def make_app(self, **config: t.Any) -> tuple[Flask, CallTransfer]:
        """An app serving only :attr:`platform`, with :attr:`config`, then ``config``, applied."""
        app = Flask(f"contract_{self.platform}")
        app.config.update(
            TESTING=True, CALLTRANSFER_PLATFORMS=[self.platform], CALLTRANSFER_STORE_URL="memory://"
        )
        app.config.update(self.config)
        app.config.update(config)
        return app, CallTransfer(app, platforms=None if self.adapter is None else [self.adapter])

    def post(self, app: Flask, request: WebhookRequest, *, signed: bool = True) -> TestResponse:
        """Post ``request`` to the platform's webhook, signed unless ``signed`` is false."""
        body, headers = request
        url = f"http://localhost{self.path}"
        sent = self.sign(body, dict(headers), url) if signed else dict(headers)
        return app.test_client().post(self.path, data=body, headers=sent)

    def assert_valid(self, response: TestResponse) -> None:
        """Fail unless the platform would accept ``response``."""
        problems = self.answer_problems(response.status_code, response.headers, response.get_data())
        assert not problems, f"{self.platform} would not accept {response.get_data()!r}: {problems}"

    def answer(self, app: Flask, request: WebhookRequest) -> tuple[TestResponse, SignalRecorder, list[t.Any]]:
        """Post ``request`` signed and check the answer is valid and the request had one outcome."""
        with record_signals(app) as heard, dry_run() as deliveries:
            response = self.post(app, request)
        assert response.status_code < 500, f"HTTP {response.status_code} from the {self.platform} webhook."
        self.assert_valid(response)
        outcomes = [name for name in heard.names() if name in OUTCOME_SIGNALS]
        assert len(outcomes) == 1, f"Expected one outcome signal, heard {heard.names()}."
        return response, heard, deliveries

    # The checks.

    def test_destination_is_answered(self) -> None:
        app, transfers = self.make_app()
        transfers.on_request(lambda call: self.number)
        response, heard, deliveries = self.answer(app, self.transfer_request("Sales, please."))
        assert heard.one("transfer-resolved")["destination"].number == self.number
        delivered = [destination.number for _, destination in deliveries]
        assert _digits(self.number) in _digits(response.get_data(as_text=True)) or delivered == [self.number]

    def test_caller_is_parsed(self) -> None:
        app, transfers = self.make_app()
        seen: list[TransferRequest] = []
        transfers.on_request(lambda call: seen.append(call))
        self.post(app, self.transfer_request("Sales, please."))
        assert [call.platform for call in seen] == [self.platform]
        assert seen[0].caller == self.caller

    def test_refusal_is_answered(self) -> None:
        app, transfers = self.make_app()

        @transfers.on_request
        def closed(call: TransferRequest) -> None:
            refuse("Sorry, we are closed today.")

        response, heard, _ = self.answer(app, self.transfer_request("Sales, please."))
        assert heard.one("transfer-refused")["reason"] == "Sorry, we are closed today."
        assert "Sorry, we are closed today." in response.get_data(as_text=True)

    def test_every_failure_gets_a_valid_answer(self) -> None:
        def raises(call: TransferRequest) -> t.Any:
            raise RuntimeError("the routing table is gone")

        def sleeps(call: TransferRequest) -> t.Any:
            time.sleep(5)
            return self.number

        failing: dict[str, t.Callable[[TransferRequest], t.Any]] = {
            "raises": raises,
            "answers a number": lambda call: 42,
            "names no destination": lambda call: "no-such-desk",
            "answers an invalid number": lambda call: "+1 000",
            "answers an assistant": lambda call: AssistantDestination("Sales bot"),
            "runs past its deadline": sleeps,
        }
        for what, handler in failing.items():
            app, transfers = self.make_app(CALLTRANSFER_HANDLER_TIMEOUT=0.3)
            transfers.on_request(handler)
            try:
                self.answer(app, self.transfer_request("Sales, please."))
            except AssertionError as exc:
                raise AssertionError(f"A handler that {what}: {exc}") from None

    def test_failing_error_handler_gets_a_valid_answer(self) -> None:
        app, transfers = self.make_app()

        @transfers.on_request
        def raises(call: TransferRequest) -> t.Any:
            raise RuntimeError("the routing table is gone")

        @transfers.on_error
        def also_raises(call: TransferRequest, exc: Exception) -> t.Any:
            raise RuntimeError("and so is the error handler")

        _, heard, _ = self.answer(app, self.transfer_request("Sales, please."))
        assert heard.named("transfer-failed"), "A failing handler must send transfer-failed."

    def test_failing_receivers_change_nothing(self) -> None:
        request = self.transfer_request("Sales, please.")
        answers = []
        for receivers_fail in (False, True):
            # A fresh app each time: the same request again would be a replay to the first.
            app, transfers = self.make_app()
            transfers.on_request(lambda call: self.number)
            with contextlib.ExitStack() as stack:
                if receivers_fail:
                    for signal in ALL_SIGNALS:
                        stack.enter_context(signal.connected_to(_broken_receiver, sender=app))
                response = self.post(app, request)
            answers.append((response.status_code, response.get_data()))
        assert answers[1] == answers[0], "Receivers that raise changed the answer."

    def test_bad_bodies_get_a_client_error(self) -> None:
        app, transfers = self.make_app(CALLTRANSFER_MAX_BODY_BYTES=100_000)
        called: list[TransferRequest] = []
        transfers.on_request(lambda call: called.append(call))
        _, headers = self.transfer_request("Sales, please.")
        bodies = self.bad_bodies()
        for what, body in bodies.items():
            response = self.post(app, (body, headers))
            assert 400 <= response.status_code < 500, f"{what}: HTTP {response.status_code}, expected a 4xx."
            assert response.status_code != 401, f"{what}: a signed request was refused as unverified."
        assert called == [], "A bad body reached a handler."

    def test_too_many_values_are_refused_by_count(self) -> None:
        # Well under the size limit: only counting what the body holds can refuse these.
        app, transfers = self.make_app(CALLTRANSFER_MAX_BODY_BYTES=100_000, CALLTRANSFER_MAX_JSON_VALUES=1000)
        called: list[TransferRequest] = []
        transfers.on_request(lambda call: called.append(call))
        _, headers = self.transfer_request("Sales, please.")
        fields = b"&".join(b"f%d=" % n for n in range(5000))
        values = b'{"v": [' + b",".join([b"0"] * 5000) + b"]}"
        statuses = [self.post(app, (body, headers)).status_code for body in (fields, values)]
        assert all(400 <= status < 500 and status != 401 for status in statuses), statuses
        assert 413 in statuses, f"Neither 5,000 form fields nor 5,000 JSON values got 413: {statuses}."
        assert called == []

    def test_verification_comes_before_parsing(self) -> None:
        app, transfers = self.make_app()
        called: list[TransferRequest] = []
        transfers.on_request(lambda call: called.append(call))
        body, headers = self.transfer_request("Sales, please.")
        other, _ = self.other_event()
        url = f"http://localhost{self.path}"
        cases = {
            "an unsigned request": (body, dict(headers)),
            "an unsigned malformed body": (b"{not json&=", dict(headers)),
        }
        if self.signs_body:
            own, forged = self.sign(body, dict(headers), url), self.sign(other, dict(headers), url)
            assert forged != own, (
                "sign() gives the same headers for two bodies: a signature that does not cover the"
                " body proves nothing. Set signs_body = False for a platform that sends a token."
            )
            cases["a signature of another body"] = (body, forged)
            cases["a body changed after signing"] = (body + b" ", own)
        for what, (data, sent) in cases.items():
            with record_signals(app) as heard:
                response = app.test_client().post(self.path, data=data, headers=sent)
            assert response.status_code == 401, f"{what}: HTTP {response.status_code}, expected 401."
            assert heard.names() == ["request-rejected"], f"{what}: heard {heard.names()}."
        assert called == [], "An unverified request reached a handler."

    def test_other_credentials_are_refused(self) -> None:
        # The same request, signed for this config, to an app whose secrets are all different.
        other = {
            key: f"{value}-other"
            for key, value in self.config.items()
            if isinstance(value, str) and any(word in key for word in ("SECRET", "TOKEN", "KEY"))
        }
        assert other, "config names no SECRET, TOKEN or KEY: the check would prove nothing."
        app, transfers = self.make_app(**other)
        called: list[TransferRequest] = []
        transfers.on_request(lambda call: called.append(call))
        response = self.post(app, self.transfer_request("Sales, please."))
        assert response.status_code == 401, f"HTTP {response.status_code} with other credentials."
        assert called == []

    def test_other_event_gets_the_no_op(self) -> None:
        app, transfers = self.make_app()
        called: list[TransferRequest] = []
        transfers.on_request(lambda call: called.append(call))
        with record_signals(app) as heard:
            response = self.post(app, self.other_event())
        self.assert_valid(response)
        assert heard.named("event-received"), f"Heard {heard.names()}, expected event-received."
        assert called == [], "Another event reached a transfer handler."

    def test_logs_hold_no_number_or_secret(self) -> None:
        def resolves(call: TransferRequest) -> t.Any:
            return self.number

        def raises(call: TransferRequest) -> t.Any:
            raise RuntimeError(f"No desk for {call.caller} (calling {call.called})")

        request = self.transfer_request("Sales, please.")
        with _all_logs() as lines:
            for handler, signed in ((resolves, True), (raises, True), (resolves, False)):
                app, transfers = self.make_app()
                transfers.on_request(handler)
                self.post(app, request, signed=signed)
        secrets = self.secrets
        if secrets is None:
            secrets = tuple(
                value
                for key, value in self.config.items()
                if isinstance(value, str) and any(word in key for word in ("SECRET", "TOKEN", "KEY"))
            )
        assert lines, "Nothing was logged: the check would prove nothing."
        for line in lines:
            # Digits joined across the separators people write numbers with.
            joined = _SEPARATORS.sub("", line)
            for number in (self.caller, self.number):
                assert _digits(number)[-9:] not in joined, f"{number} is in the log unmasked: {line}"
            for secret in secrets:
                assert secret not in line, f"A configured secret is in the log: {line[:40]}..."


def _broken_receiver(sender: t.Any, **kwargs: t.Any) -> None:
    raise RuntimeError("the analytics database is down")


_SEPARATORS = re.compile(r"(?<=\d)[ \-()/]+(?=\d)")


__all__ = [
    "OUTCOME_SIGNALS",
    "PlatformContract",
    "SignalRecorder",
    "WebhookRequest",
    "dumps",
    "hmac_signature",
    "record_signals",
    "reply_problems",
    "signed_headers",
    "sipgate_event",
    "sipgate_headers",
    "vapi_bearer_headers",
    "vapi_event",
    "vapi_hmac_headers",
    "vapi_messages",
    "vapi_secret_headers",
    "vapi_tool_calls",
    "vapi_transfer_request",
    "voicedock_event",
    "voicedock_headers",
    "voicedock_tool_calls",
]
