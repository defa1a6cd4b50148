"""The platform contract kit (flask_calltransfer.testing.PlatformContract) run against every
built-in adapter and envelope: the same checks a third-party adapter's author runs."""

from __future__ import annotations

import typing as t

from werkzeug.datastructures import Headers

from flask_calltransfer import testing

SECRET = "contract-secret-0123456789"


class _BuiltIn(testing.PlatformContract):
    """Signs and checks answers with the helpers the package ships for its own platforms."""

    def sign(self, body: bytes, headers: dict[str, str], url: str) -> dict[str, str]:
        return {**headers, **testing.signed_headers(self.config, self.platform, body, url=url)}

    def answer_problems(self, status: int, headers: Headers, body: bytes) -> list[str]:
        problems = testing.reply_problems(self.platform, status, body)
        if body and not headers.get("Content-Type", "").startswith("application/json"):
            problems.append("The answer is not sent as application/json.")
        return problems


class TestVapiContract(_BuiltIn):
    platform = "vapi"
    config: t.ClassVar[dict[str, t.Any]] = {"CALLTRANSFER_VAPI_SECRET": SECRET}
    signs_body = False

    def bad_bodies(self) -> dict[str, bytes]:
        return {
            **super().bad_bodies(),
            "a type that is a list": b'{"message": {"type": ["transfer-destination-request"]}}',
            "a message that is a number": b'{"message": 42}',
            "messages that are not a list": testing.dumps(
                testing.vapi_transfer_request(messages=None, artifact={"messages": "hello"})
            ),
        }

    def transfer_request(self, text: str) -> testing.WebhookRequest:
        body = testing.dumps(testing.vapi_transfer_request(text=text, caller=self.caller))
        return body, {"Content-Type": "application/json"}

    def other_event(self) -> testing.WebhookRequest:
        return testing.dumps(testing.vapi_event("status-update", status="in-progress")), {
            "Content-Type": "application/json"
        }


class TestVapiHmacContract(TestVapiContract):
    """Vapi with an HMAC credential: the signature covers the body, so one of another body fails."""

    config: t.ClassVar[dict[str, t.Any]] = {"CALLTRANSFER_VAPI_HMAC_SECRET": SECRET}
    signs_body = True


class TestVapiToolCallContract(TestVapiContract):
    """Vapi's transferCall-style tool: the destination goes to the call's control URL."""

    config: t.ClassVar[dict[str, t.Any]] = {
        "CALLTRANSFER_VAPI_SECRET": SECRET,
        "CALLTRANSFER_VAPI_TOOLS": ["transferToHuman"],
    }

    def transfer_request(self, text: str) -> testing.WebhookRequest:
        payload = testing.vapi_tool_calls(
            "transferToHuman",
            {"reason": text},
            caller=self.caller,
            control_url="https://phone-call-websocket.aws-us-west-2-backend-production2.vapi.ai/call/c/control",
        )
        return testing.dumps(payload), {"Content-Type": "application/json"}


class TestSipgateContract(_BuiltIn):
    platform = "sipgate"
    config: t.ClassVar[dict[str, t.Any]] = {"CALLTRANSFER_SIPGATE_TOKEN": SECRET}
    signs_body = False

    def transfer_request(self, text: str) -> testing.WebhookRequest:
        body = testing.dumps(testing.sipgate_event("user_speak", text=text, caller=self.caller))
        return body, {"Content-Type": "application/json"}

    def other_event(self) -> testing.WebhookRequest:
        return testing.dumps(testing.sipgate_event("session_end")), {"Content-Type": "application/json"}

    def bad_bodies(self) -> dict[str, bytes]:
        return {
            **super().bad_bodies(),
            "a type that is a list": b'{"type": ["user_speak"], "session": {"id": "s"}}',
            "no session": b'{"type": "user_speak", "text": "hi"}',
            "a session that is a string": b'{"type": "user_speak", "session": "s", "text": "hi"}',
        }


class TestVoiceDockContract(_BuiltIn):
    platform = "voicedock"
    config: t.ClassVar[dict[str, t.Any]] = {
        "CALLTRANSFER_VOICEDOCK_SECRET": SECRET,
        "CALLTRANSFER_VOICEDOCK_API_KEY": "vd-api-key-0123456789",
        "CALLTRANSFER_VOICEDOCK_TOOLS": ["transfer_call"],
    }

    def transfer_request(self, text: str) -> testing.WebhookRequest:
        payload = testing.voicedock_tool_calls("transfer_call", {"reason": text}, caller=self.caller)
        return testing.dumps(payload), {"Content-Type": "application/json"}

    def other_event(self) -> testing.WebhookRequest:
        return testing.dumps(testing.voicedock_event("status-update")), {"Content-Type": "application/json"}

    def bad_bodies(self) -> dict[str, bytes]:
        return {
            **super().bad_bodies(),
            "a type that is a list": b'{"message": {"type": ["tool-calls"]}}',
            "tool calls that are not a list": b'{"message": {"type": "tool-calls", "tool_call_list": 7}}',
        }
