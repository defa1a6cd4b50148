"""The contract kit itself: a minimal adapter written only against the contract passes it, and an
adapter with one flaw fails exactly the check for that flaw (a kit that cannot fail proves nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import typing as t

import pytest
from flask import Response
from werkzeug.datastructures import Headers

from flask_calltransfer import InvalidPayload
from flask_calltransfer import PlatformEvent
from flask_calltransfer import RequestVerificationFailed
from flask_calltransfer import TransferRefused
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing
from flask_calltransfer.platforms.base import Platform
from flask_calltransfer.platforms.base import json_response
from flask_calltransfer.security import HmacVerifier

SECRET = "plain-secret-0123456789"


class PlainPlatform(Platform):
    """A JSON platform that signs bodies: ``{"event": "ask", "call": ..., "from": ..., "text": ...}``."""

    name = "plain"
    credential_keys = ("CALLTRANSFER_PLAIN_SECRET",)

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any], services: t.Any) -> Platform:
        verifier = HmacVerifier(
            [config["CALLTRANSFER_PLAIN_SECRET"]],
            signature_header="Plain-Signature",
            timestamp_header=None,
            payload_format="{body}",
        )
        return cls(services=services, verifier=verifier if services.settings.verify else None)

    def parse(self, payload: dict[str, t.Any], inbound: t.Any) -> TransferRequest | PlatformEvent:
        call = payload.get("call")
        if not isinstance(call, str) or not isinstance(payload.get("event"), str):
            raise InvalidPayload("A plain request names its event and call.", {"call": ["Missing."]})
        if payload["event"] != "ask":
            return PlatformEvent(self.name, payload["event"], call, payload)
        caller = payload.get("from")
        return TransferRequest(
            platform=self.name,
            event="ask",
            call_id=call,
            text=str(payload.get("text", "")),
            caller=caller if isinstance(caller, str) else None,
            raw=payload,
        )

    def render(self, call: TransferRequest, outcome: t.Any) -> Response:
        if isinstance(outcome, TransferRefused):
            return json_response({"say": outcome.reason})
        if not hasattr(outcome, "number"):
            raise self.unsupported(outcome.kind, kind=True)
        return json_response({"dial": outcome.number})

    def render_event(self, event: PlatformEvent, reply: dict[str, t.Any] | None) -> Response:
        return json_response(reply or {})


class PlainContract(testing.PlatformContract):
    platform = "plain"
    adapter: t.ClassVar[type[Platform]] = PlainPlatform
    config: t.ClassVar[dict[str, t.Any]] = {"CALLTRANSFER_PLAIN_SECRET": SECRET}

    def transfer_request(self, text: str) -> testing.WebhookRequest:
        body = json.dumps({"event": "ask", "call": "c-1", "from": self.caller, "text": text}).encode()
        return body, {"Content-Type": "application/json"}

    def other_event(self) -> testing.WebhookRequest:
        return b'{"event": "hangup", "call": "c-1"}', {"Content-Type": "application/json"}

    def bad_bodies(self) -> dict[str, bytes]:
        return {**super().bad_bodies(), "no call": b'{"event": "ask"}', "a list": b'{"event": ["ask"]}'}

    @staticmethod
    def signature(body: bytes) -> str:
        return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    def sign(self, body: bytes, headers: dict[str, str], url: str) -> dict[str, str]:
        return {**headers, "Plain-Signature": self.signature(body)}

    def answer_problems(self, status: int, headers: Headers, body: bytes) -> list[str]:
        if status != 200:
            return [f"Plain needs 200, not {status}."]
        reply = json.loads(body)
        if reply and not (isinstance(reply.get("dial"), str) or isinstance(reply.get("say"), str)):
            return ["A plain answer dials or says."]
        return []


class TestPlainContract(PlainContract):
    """An adapter written only against the contract passes every check."""


class LeaksNumbers(PlainPlatform):
    def render(self, call: TransferRequest, outcome: t.Any) -> Response:
        logging.getLogger("plain_platform").info("Answering %s", call.caller)
        return super().render(call, outcome)


class VerifiesNothing(PlainPlatform):
    def verify(self, inbound: t.Any) -> None:
        return None


class ParsesCarelessly(PlainPlatform):
    def parse(self, payload: dict[str, t.Any], inbound: t.Any) -> TransferRequest | PlatformEvent:
        return TransferRequest(platform=self.name, event=payload["event"], call_id=payload["call"])


class RefusesBadly(PlainPlatform):
    def render(self, call: TransferRequest, outcome: t.Any) -> Response:
        if isinstance(outcome, TransferRefused):
            return Response("closed", 503)
        return super().render(call, outcome)


class NoOpIsWrong(PlainPlatform):
    def render_event(self, event: PlatformEvent, reply: dict[str, t.Any] | None) -> Response:
        return json_response({"dial": 42})


class ChecksOnlyTheSignaturesShape(PlainPlatform):
    """Any signature of the right form passes, of whatever body it was made for."""

    def verify(self, inbound: t.Any) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", inbound.headers.get("Plain-Signature", "")):
            raise RequestVerificationFailed("No signature.")


class DecodesUnbounded(PlainPlatform):
    def decode(self, body: bytes, inbound: t.Any, max_values: int | None) -> dict[str, t.Any]:
        try:
            payload = json.loads(body)
        except ValueError:
            raise InvalidPayload("Not JSON.", {"_body": ["Not JSON."]}) from None
        if not isinstance(payload, dict):
            raise InvalidPayload("Not an object.", {"_body": ["Not an object."]})
        return payload


class CarriesEverything(PlainPlatform):
    def render(self, call: TransferRequest, outcome: t.Any) -> Response:
        # Renders a destination it cannot carry as an answer the platform cannot read.
        return json_response({"dial": getattr(outcome, "number", None)})


@pytest.mark.parametrize(
    ("adapter", "check"),
    [
        (LeaksNumbers, "test_logs_hold_no_number_or_secret"),
        (VerifiesNothing, "test_verification_comes_before_parsing"),
        (ParsesCarelessly, "test_bad_bodies_get_a_client_error"),
        (ParsesCarelessly, "test_caller_is_parsed"),
        (RefusesBadly, "test_refusal_is_answered"),
        (RefusesBadly, "test_every_failure_gets_a_valid_answer"),
        (NoOpIsWrong, "test_other_event_gets_the_no_op"),
        (CarriesEverything, "test_every_failure_gets_a_valid_answer"),
        (DecodesUnbounded, "test_too_many_values_are_refused_by_count"),
        (ChecksOnlyTheSignaturesShape, "test_verification_comes_before_parsing"),
    ],
)
def test_a_flawed_adapter_fails_its_check(adapter: type[Platform], check: str) -> None:
    kit = type("Kit", (PlainContract,), {"adapter": adapter})()
    with pytest.raises(AssertionError):
        getattr(kit, check)()
    # The same check passes for the sound adapter: the flaw is what failed it.
    getattr(PlainContract(), check)()
