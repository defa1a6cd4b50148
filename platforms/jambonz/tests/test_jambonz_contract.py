"""The platform contract kit against the jambonz adapter, found through its entry point."""

from __future__ import annotations

import json
import typing as t

from jambonz_support import JSON_HEADERS
from jambonz_support import SECRET
from jambonz_support import encode
from jambonz_support import gather
from jambonz_support import signature
from jambonz_support import status
from jambonz_support import verb_problems
from werkzeug.datastructures import Headers

from flask_calltransfer import testing


class TestJambonzContract(testing.PlatformContract):
    platform = "jambonz"
    config: t.ClassVar[dict[str, t.Any]] = {"CALLTRANSFER_JAMBONZ_SECRET": SECRET}

    def transfer_request(self, text: str) -> testing.WebhookRequest:
        return encode(gather(text, **{"from": self.caller})), dict(JSON_HEADERS)

    def other_event(self) -> testing.WebhookRequest:
        return encode(status("in-progress")), dict(JSON_HEADERS)

    def sign(self, body: bytes, headers: dict[str, str], url: str) -> dict[str, str]:
        return {**headers, "Jambonz-Signature": signature(body)}

    def answer_problems(self, status: int, headers: Headers, body: bytes) -> list[str]:
        if status != 200:
            return [f"jambonz accepts 200, 202 or 204 and reads verbs from a 200 only, not {status}."]
        if not headers.get("Content-Type", "").startswith("application/json"):
            return ["jambonz reads the answer only when its Content-Type is application/json."]
        try:
            verbs = json.loads(body)
        except ValueError as exc:
            return [f"The answer is not JSON: {exc}."]
        return verb_problems(verbs)

    def bad_bodies(self) -> dict[str, bytes]:
        return {
            **super().bad_bodies(),
            "no call_sid": encode({**gather(), "call_sid": None}),
            "an empty call_sid": encode(gather(call_sid="")),
            "a call_sid that is a number": encode(gather(call_sid=42)),
            "a call_sid that is a list": encode(gather(call_sid=["a"])),
            "a from that is a list": encode(gather(**{"from": ["+31612345678"]})),
            "a to that is an object": encode(gather(to={"number": "+31207948400"})),
            "speech that is a string": encode(gather(speech="sales")),
            "alternatives that are an object": encode(gather(speech={"alternatives": {"transcript": "x"}})),
            "an alternative that is a string": encode(gather(speech={"alternatives": ["sales"]})),
            "a transcript that is a number": encode(gather(speech={"alternatives": [{"transcript": 7}]})),
            "digits that are a list": encode(gather(speech=None, digits=[1, 2], reason="dtmfDetected")),
            "a reason that is a list": encode(gather(reason=["speechDetected"])),
            "customerData that is a list": encode(gather(customerData=[1])),
            "an application_sid that is a number": encode(gather(application_sid=5)),
            "a sip that is a string": encode({**status("trying"), "sip": "INVITE"}),
            "a call_status that is a number": encode(status(call_status=180)),
            "no call_status": encode({"call_sid": "c1"}),
            "a dial_call_status that is a number": encode({**status(), "dial_call_status": 200}),
            "a refer_status that is a word": encode({**status(), "refer_status": "accepted"}),
            "a refer_status that is null": encode({**status(), "refer_status": None}),
            "a final_referred_call_status that is an object": encode(
                {**status(), "refer_status": 202, "final_referred_call_status": {"code": 200}}
            ),
            "a refer_status that is true": encode({**status(), "refer_status": True}),
            "an llm toolHook": encode({"tool_call_id": "t1", "name": "transfer", "args": {}}),
        }
